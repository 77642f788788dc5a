"""Service checks (`agents.system_health.services`): every probe at once, each in its own thread with its own
deadline, so 50 checks with 10 hanging cost the longest timeout, not the sum. From each outcome: a finding
`service:NAME`, and the repairs it calls for (restart, memory-leak restart, certificate renewal, terminating
sessions idle in transaction), which the runtime gates like any other action."""

import threading
import time
from dataclasses import asdict, dataclass, field

from zenctl.agents.health.probes import Outcome, probe
from zenctl.agents.health.probes.process import slope_mb_per_hour
from zenctl.core.actions import Proposal
from zenctl.core.agent import Finding

JOIN_GRACE = 0.2  # seconds past a check's timeout before its thread is given up on
LEAK_MIN_SAMPLES = 4  # stored samples (this run's included) before a growth rate is believed
LEAK_MIN_COVERAGE = 0.5  # share of leak_window those samples must span
LEAK_STEADY_R2 = 0.8  # how well a straight line must fit: growth that comes and goes is not a leak
SAMPLE_NAMES = ["service.rss_bytes"]


@dataclass
class Checked:
    """What one service check gives the agent."""

    finding: Finding
    proposals: list[Proposal] = field(default_factory=list)
    samples: list[tuple[str, str, float | None]] = field(default_factory=list)
    extra: list[Finding] = field(default_factory=list)


class _Slot:
    def __init__(self, service, start: float):
        self.service, self.deadline = service, start + service.timeout
        self.outcome: Outcome | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"check-{service.name}")

    def _run(self) -> None:
        self.outcome = probe(self.service, self.deadline)


def run_probes(services: list) -> list[tuple[object, Outcome, float]]:
    """(service, outcome, seconds) for each, all at once; a check still running at its deadline (plus a short
    grace) is reported CRITICAL and left behind (its thread is a daemon, and commands kill themselves)."""
    start = time.monotonic()
    slots = [_Slot(service, start) for service in services]
    for slot in slots:
        slot.thread.start()
    out = []
    for slot in slots:
        slot.thread.join(max(0.0, slot.deadline + JOIN_GRACE - time.monotonic()))
        outcome = slot.outcome
        if outcome is None:
            outcome = Outcome("critical", f"no answer within {slot.service.timeout:g} s", down=True,
                              evidence={"timed_out": True})
        out.append((slot.service, outcome, time.monotonic() - start))
    return out


def check_all(services: list, history: dict[str, list[tuple[float, float]]], now: float) -> list[Checked]:
    """Every service's finding and proposals. `history` maps a process service's name to its stored
    (ts, rss_bytes) samples."""
    if not services:
        return []
    return [judge(service, outcome, seconds, history.get(service.name, []), now)
            for service, outcome, seconds in run_probes(services)]


def judge(service, outcome: Outcome, seconds: float, history: list[tuple[float, float]], now: float) -> Checked:
    check = f"service:{service.name}"
    status = outcome.status
    if status == "critical" and service.severity == "warning":
        status = "warning"
    value, unit = (outcome.metrics[0].value, outcome.metrics[0].unit) if outcome.metrics else (None, "")
    evidence = {"type": service.type, "down": outcome.down, "seconds": round(seconds, 3), **outcome.evidence,
                "perfdata": [asdict(m) for m in outcome.metrics]}
    checked = Checked(Finding(check, status, f"{service.name}: {outcome.message}", value, None, unit, evidence))
    reason = f"{service.name}: {outcome.message} ({status.upper()})"
    if outcome.down and service.restart:
        checked.proposals.append(restart_proposal(service, "service.restart", check, reason))
    if service.type == "process":
        leak_judgement(service, outcome, history, now, checked)
    elif service.type == "tls":
        renew_proposal(service, outcome, check, checked)
    elif service.type == "postgres":
        reset_proposal(service, outcome, check, checked)
    return checked


def restart_proposal(service, kind: str, check: str, reason: str) -> Proposal:
    params = {"service": service.name, "command": service.restart, "timeout": service.restart_timeout,
              "wait": service.restart_wait}
    return Proposal(kind, service.name, params, reason, check, context={"service": service})


def leak_judgement(service, outcome: Outcome, history: list[tuple[float, float]], now: float,
                   checked: Checked) -> None:
    """Store this run's resident memory; judge the limit and the growth since the process started."""
    rss, started = outcome.evidence.get("rss_bytes"), outcome.evidence.get("started")
    if not outcome.evidence.get("count"):
        return
    checked.samples.append(("service.rss_bytes", service.name, rss))
    if service.rss_limit_mb is None and service.leak_mb_per_hour is None:
        return
    check = f"memory:{service.name}"
    points = [(ts, value) for ts, value in history if started is None or ts >= started] + [(now, rss)]
    points = [p for p in points if 0 <= now - p[0] <= service.leak_window]  # none from a clock that was ahead
    mb = rss / 1e6
    problem = None
    if service.rss_limit_mb is not None and mb > service.rss_limit_mb:
        problem = f"{mb:.0f} MB resident, above rss_limit_mb {service.rss_limit_mb:g}"
    slope, r2 = (slope_mb_per_hour(points) if len(points) >= 2 else (0.0, 0.0))
    span = points[-1][0] - points[0][0] if points else 0.0
    judged = len(points) >= LEAK_MIN_SAMPLES and span >= LEAK_MIN_COVERAGE * service.leak_window
    evidence = {"rss_bytes": rss, "slope_mb_per_hour": round(slope, 2), "r2": round(r2, 3), "samples": len(points),
                "span_seconds": round(span, 1), "judged": judged}
    if problem is None and service.leak_mb_per_hour is not None and judged and slope >= service.leak_mb_per_hour \
            and r2 >= LEAK_STEADY_R2:
        problem = (f"memory grows {slope:.1f} MB/h steadily (R² {r2:.2f}) over {span / 60:.0f} min, above "
                   f"leak_mb_per_hour {service.leak_mb_per_hour:g}")
    if problem is None:
        growth = f"growing {slope:.1f} MB/h over {len(points)} samples" if judged else \
            f"growth not judged until {LEAK_MIN_SAMPLES} samples cover half of leak_window"
        checked.extra.append(Finding(check, "ok", f"{service.name}: {mb:.0f} MB resident, {growth}",
                                     round(mb, 1), service.rss_limit_mb, "MB", evidence))
        return
    checked.extra.append(Finding(check, "warning", f"{service.name}: {problem}", round(mb, 1),
                                 service.rss_limit_mb, "MB", evidence))
    if service.restart:
        proposal = restart_proposal(service, "service.memory_leak", check, f"{service.name}: {problem}")
        proposal.params["pids"] = outcome.evidence.get("pids", [])
        checked.proposals.append(proposal)


def renew_proposal(service, outcome: Outcome, check: str, checked: Checked) -> None:
    days = outcome.evidence.get("days_left")
    if service.renew is None or days is None or days > service.renew_days:
        return
    params = {"service": service.name, "command": service.renew, "timeout": service.renew_timeout,
              "renew_days": service.renew_days}
    checked.proposals.append(Proposal("tls.renew", service.name, params,
                                      f"{service.name}: certificate expires in {days:.1f} days "
                                      f"(renew_days {service.renew_days:g})", check, context={"service": service}))


def reset_proposal(service, outcome: Outcome, check: str, checked: Checked) -> None:
    sessions = outcome.evidence.get("reset_candidates") or []
    if not sessions:
        return
    params = {"service": service.name, "database": outcome.evidence.get("reset_database"),
              "roles": service.reset_roles, "idle_after": service.reset_idle_after,
              "sessions": sessions}
    checked.proposals.append(Proposal(
        "db.reset_connections", service.name, params,
        f"{service.name}: {len(sessions)} session(s) idle in transaction longer than {service.reset_idle_after:g} s",
        check, context={"dsn": service.dsn}))
