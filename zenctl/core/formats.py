"""Machine formats of a run for other monitoring systems: a Nagios plugin line (so zenctl is itself a check in
Nagios, Icinga or Sensu) and the Prometheus exposition format for node_exporter's textfile collector."""

import os
import re
from datetime import datetime
from decimal import Decimal

from zenctl.core.agent import EXIT_CODES
from zenctl.core.runtime import RunResult
from zenctl.core.untrusted import line

_NAGIOS_UNITS = {"", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"}


def _number(value) -> str:
    """Up to 15 significant digits (a disk's bytes stay exact) and never an exponent: perfdata values are
    [-0-9.] by the plugin guidelines, and Prometheus reads the same text."""
    if not isinstance(value, float):
        return str(value)
    text = f"{value:.15g}"
    return format(Decimal(text), "f") if "e" in text else text


def _perf_label(label: str) -> str:
    """Quoted when it holds a space, `=` or a quote (a quote doubled), as the guidelines say; one line."""
    label = line(label)
    return "'" + label.replace("'", "''") + "'" if re.search(r"[\s='\"|]", label) else label


def _level(number, text: str = "") -> str:
    """A threshold as perfdata: a plugin's own range text where it gave one, else the number."""
    return text or ("" if number is None else _number(number))


def _perf(label: str, value, unit: str, *levels: str) -> str:
    unit = unit if unit in _NAGIOS_UNITS else ""
    shown = "U" if value is None else _number(value)
    return f"{_perf_label(label)}={shown}{unit};{';'.join(levels)}".rstrip(";")


def perfdata(result: RunResult) -> list[str]:
    """Every number of the run: judged gauges with their thresholds, then each service's own metrics (a plugin's
    perfdata with its ranges, min and max)."""
    out = []
    for finding in result.findings:
        if isinstance(finding.value, int | float) and not isinstance(finding.value, bool) and \
                not finding.evidence.get("perfdata"):
            out.append(_perf(finding.check, finding.value, finding.unit, _level(finding.evidence.get("warning")),
                             _level(finding.threshold)))
        for metric in finding.evidence.get("perfdata", []):
            out.append(_perf(f"{finding.check}.{metric['label']}", metric["value"], metric["unit"],
                             _level(metric["warning"], metric.get("warning_range", "")),
                             _level(metric["critical"], metric.get("critical_range", "")),
                             _level(metric.get("min")), _level(metric.get("max"))))
    return out


def nagios_line(result: RunResult) -> str:
    """`AGENT STATUS - summary | perfdata`: the problems (worst first) or how many checks are OK."""
    order = {"critical": 0, "unknown": 1, "warning": 2}
    problems = sorted((f for f in result.findings if f.status != "ok"), key=lambda f: order[f.status])
    if result.error:
        summary = result.error
    elif problems:
        summary = "; ".join(f"{f.status.upper()} {f.message}" for f in problems)
    else:
        summary = f"{len(result.findings)} checks OK"
    changed = [a for a in result.actions if a.status in ("applied", "failed")]
    if changed:
        summary += "; actions: " + ", ".join(f"{a.kind} {a.target} {a.status}" for a in changed)
    summary = line(summary.replace("|", "/").replace("\n", " "))
    head = f"{result.agent.upper()} {result.status.upper()} - {summary}"
    data = perfdata(result)
    return f"{head} | {' '.join(data)}" if data else head


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    """Label values as the exposition format wants them; control characters escaped first (`untrusted.line`)."""
    return "{" + ",".join(f'{key}="{_escape(line(str(value)))}"' for key, value in labels.items()) + "}"


_HELP = {
    "zenctl_check_status": "Check status as a Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    "zenctl_check_value": "The value a check judged, in its unit.",
    "zenctl_check_threshold": "The critical threshold a check's value was judged against.",
    "zenctl_service_metric": "A number a service check measured (latency, connections, days left, a plugin's "
                             "perfdata...).",
    "zenctl_service_metric_warning": "The warning level of a service metric, where it is one upper bound.",
    "zenctl_service_metric_critical": "The critical level of a service metric, where it is one upper bound.",
    "zenctl_service_metric_min": "The least value a service metric can take, as its plugin says.",
    "zenctl_service_metric_max": "The greatest value a service metric can take, as its plugin says.",
    "zenctl_run_status": "The run's overall status as a Nagios code.",
    "zenctl_run_timestamp_seconds": "When the run ended (Unix time).",
    "zenctl_run_duration_seconds": "How long the run took.",
    "zenctl_run_actions": "Actions of the run by status.",
}


_METRIC_FAMILIES = [("zenctl_service_metric", "value"), ("zenctl_service_metric_warning", "warning"),
                    ("zenctl_service_metric_critical", "critical"), ("zenctl_service_metric_min", "min"),
                    ("zenctl_service_metric_max", "max")]


def prometheus_text(result: RunResult) -> str:
    """Every check status and number of the run in the text exposition format, one HELP/TYPE per family."""
    families: dict[str, list[str]] = {name: [] for name in _HELP}
    seen: set[str] = set()
    agent = result.agent
    for finding in result.findings:
        families["zenctl_check_status"].append(
            f"zenctl_check_status{_labels(agent=agent, check=finding.check)} {EXIT_CODES[finding.status]}")
        if isinstance(finding.value, int | float) and not isinstance(finding.value, bool):
            families["zenctl_check_value"].append(
                f"zenctl_check_value{_labels(agent=agent, check=finding.check, unit=finding.unit)} "
                f"{_number(finding.value)}")
        if finding.threshold is not None:
            families["zenctl_check_threshold"].append(
                f"zenctl_check_threshold{_labels(agent=agent, check=finding.check, unit=finding.unit)} "
                f"{_number(finding.threshold)}")
        for metric in finding.evidence.get("perfdata", []):
            labels = _labels(agent=agent, check=finding.check, metric=metric["label"], unit=metric["unit"])
            for name, key in _METRIC_FAMILIES:
                sample = f"{name}{labels}"
                if metric.get(key) is not None and sample not in seen:  # `U`: no sample; a label once per check
                    seen.add(sample)
                    families[name].append(f"{sample} {_number(metric[key])}")
    started, ended = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (result.started, result.ended))
    families["zenctl_run_status"].append(f"zenctl_run_status{_labels(agent=agent)} {EXIT_CODES[result.status]}")
    families["zenctl_run_timestamp_seconds"].append(
        f"zenctl_run_timestamp_seconds{_labels(agent=agent)} {ended.timestamp():.3f}")
    families["zenctl_run_duration_seconds"].append(
        f"zenctl_run_duration_seconds{_labels(agent=agent)} {(ended - started).total_seconds():.3f}")
    for status in sorted({a.status for a in result.actions}):
        count = sum(a.status == status for a in result.actions)
        families["zenctl_run_actions"].append(f"zenctl_run_actions{_labels(agent=agent, status=status)} {count}")
    lines = []
    for name, samples in families.items():
        if samples:
            lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} gauge", *samples]
    return "\n".join(lines) + "\n"


def check_writable_target(path: str) -> str | None:
    """Why `path` cannot be written atomically (its directory is missing or not writable), or None."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"{path}: directory {directory} does not exist"
    if not os.access(directory, os.W_OK):
        return f"{path}: directory {directory} is not writable"
    if os.path.isdir(path):
        return f"{path} is a directory"
    return None

