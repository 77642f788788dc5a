"""Nagios plugin output read as the Monitoring Plugins development guidelines define it
(https://www.monitoring-plugins.org/doc/guidelines.html, "Plugin Output" and "Performance data"):

    TEXT OUTPUT | OPTIONAL PERFDATA
    LONG TEXT LINE 1
    LONG TEXT LINE N | PERFDATA LINE 2
    PERFDATA LINE 3

The first line's text before `|` is the message; the lines after it, up to the one holding a `|`, are long output;
everything after that `|` is more perfdata. Each perfdata item is `'label'=value[UOM];[warn];[crit];[min];[max]`,
items separated by spaces, the label quoted when it holds spaces (`''` for a quote), `U` for a value the plugin
could not determine, warn and crit in the range format (`10`, `10:`, `~:10`, `10:20`, `@10:20`).

A plugin is someone else's program: what parses is kept, what does not is counted and sampled, nothing raises.
All text is escaped (`untrusted.line`) here, so every consumer of the evidence gets printable text.
"""

import math
import re
from dataclasses import dataclass, field

from zenctl.agents.health.probes import Metric
from zenctl.core.untrusted import line

MESSAGE_CHARS = 500  # the first line, as zenctl has always kept it
LONG_OUTPUT_CHARS = 8192  # Nagios core keeps 8 KB of a plugin's output
MAX_METRICS = 100  # per check: the Prometheus textfile stays small whatever a plugin prints
MAX_LABEL_CHARS = 200
SAMPLES = 3  # malformed items quoted in the evidence
SAMPLE_CHARS = 80

_NUM = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(_NUM)
_VALUE = re.compile(rf"({_NUM}|U)([A-Za-z%°µ]{{0,8}})")  # the guidelines' UOMs, and the KiB or °C some plugins use
_RANGE = re.compile(rf"@?(?:(~|{_NUM})?:)?({_NUM})?")
_SIMPLE = re.compile(rf"(?:~:)?({_NUM})")  # alert above one number: `10`, `~:10`
_ITEM = re.compile(r"'((?:[^']|'')*)'=(\S*)|([^\s'=][^\s=]*)=(\S*)")
_BAD = re.compile(r"'(?:[^']|'')*'\S*|'.*|\S+")  # the rest of an item that did not parse; a stray quote: the line


@dataclass
class PluginMetric(Metric):
    """A plugin's perfdata item. `value` None: the plugin said `U`. `warning`/`critical` are numbers only where the
    range is one upper bound; `warning_range`/`critical_range` keep the plugin's text."""

    min: float | None = None
    max: float | None = None
    warning_range: str = ""
    critical_range: str = ""


@dataclass
class PluginOutput:
    message: str
    long_output: str = ""
    long_output_truncated: bool = False
    metrics: list[PluginMetric] = field(default_factory=list)
    malformed: int = 0
    samples: list[str] = field(default_factory=list)

    def bad(self, item: str, why: str) -> None:
        self.malformed += 1
        if len(self.samples) < SAMPLES:
            shown = item if len(item) <= SAMPLE_CHARS else item[:SAMPLE_CHARS] + "..."
            self.samples.append(line(f"{shown} ({why})"))

    def evidence(self) -> dict:
        """What goes into the finding's evidence beside `perfdata`: only what there is."""
        out: dict = {}
        if self.long_output:
            out["long_output"] = self.long_output
        if self.long_output_truncated:
            out["long_output_truncated"] = True
        if self.malformed:
            out["perfdata_malformed"] = {"count": self.malformed, "samples": self.samples}
        return out


def parse_output(text: str) -> PluginOutput:
    """Message, long output and perfdata of a plugin's output (see the module doc)."""
    lines = text.strip("\n").split("\n") if text.strip() else [""]
    first, _, perf = lines[0].partition("|")
    out = PluginOutput(line(first.strip())[:MESSAGE_CHARS])
    perf_lines, long_lines = [perf], []
    for index, rest in enumerate(lines[1:], 1):
        before, bar, after = rest.partition("|")
        long_lines.append(before)
        if bar:
            perf_lines += [after, *lines[index + 1:]]
            break
    long_output = "\n".join(line(x.rstrip()) for x in long_lines).strip("\n")
    out.long_output = long_output[:LONG_OUTPUT_CHARS]
    out.long_output_truncated = len(long_output) > LONG_OUTPUT_CHARS
    seen: set[str] = set()
    for perf_line in perf_lines:
        _parse_line(perf_line, out, seen)
    return out


def parse_perfdata(text: str) -> PluginOutput:
    """The perfdata of one line (what follows a `|`), with what did not parse counted."""
    out = PluginOutput("")
    _parse_line(text, out, set())
    return out


def _parse_line(text: str, out: PluginOutput, seen: set[str]) -> None:
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        match = _ITEM.match(text, pos)
        if match is None:
            bad = _BAD.match(text, pos)
            out.bad(bad.group(), "not 'label'=value")
            pos = bad.end()
            continue
        pos = match.end()
        quoted, unquoted = match.group(1), match.group(3)
        label = quoted.replace("''", "'") if quoted is not None else unquoted
        _add(match.group(), label, match.group(2) if quoted is not None else match.group(4), out, seen)


def _add(item: str, label: str, fields_text: str, out: PluginOutput, seen: set[str]) -> None:
    """One item into `out.metrics`: dropped (and sampled) when its label or value is wrong; a wrong threshold, min
    or max drops only that field."""
    fields = fields_text.split(";")
    value = _VALUE.fullmatch(fields[0])
    if not label.strip():
        return out.bad(item, "empty label")
    if len(label) > MAX_LABEL_CHARS:
        return out.bad(item, f"label longer than {MAX_LABEL_CHARS}")
    number = _number(value.group(1)) if value else None
    if value is None or (number is None and value.group(1) != "U"):
        return out.bad(item, "value is not a number or U")
    if label in seen:
        return out.bad(item, "label seen before")
    if len(out.metrics) >= MAX_METRICS:
        return out.bad(item, f"more than {MAX_METRICS} items")
    seen.add(label)
    metric = PluginMetric(line(label), number, value.group(2))
    fields += [""] * (5 - len(fields))
    if len(fields) > 5:
        out.bad(item, "more than 5 fields")
    for name, text in (("warning", fields[1]), ("critical", fields[2])):
        if text and _valid_range(text):
            setattr(metric, f"{name}_range", text)
            simple = _SIMPLE.fullmatch(text)
            setattr(metric, name, _number(simple.group(1)) if simple else None)
        elif text:
            out.bad(item, f"{name} is not a range")
    for name, text in (("min", fields[3]), ("max", fields[4])):
        if text and _number(text) is not None:
            setattr(metric, name, _number(text))
        elif text:
            out.bad(item, f"{name} is not a number")
    out.metrics.append(metric)


def _number(text: str) -> float | None:
    """The number `text` is, if a float holds it (`1e999` does not), else None."""
    if _NUMBER.fullmatch(text) is None or not math.isfinite(float(text)):
        return None
    return float(text)


def _valid_range(text: str) -> bool:
    """The guidelines' range: `[@]start:end`, start `~` for minus infinity, either end optional, start <= end."""
    match = _RANGE.fullmatch(text)
    if match is None or not re.search(r"\d", text):
        return False
    start, end = match.group(1), match.group(2)
    return start in (None, "~") or end is None or float(start) <= float(end)
