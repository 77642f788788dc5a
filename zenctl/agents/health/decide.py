"""Judging host facts against thresholds: pure functions from facts, stored samples and config to findings.

A threshold is crossed when the value is above it. A window ("CPU > 80 % for 5 minutes") is judged from the
samples earlier runs stored: the CPU average is exact from the cumulative counters at the window's start; memory
is the mean of the samples inside the window. A window counts as covered when the samples reach back at least
90 % of it (cron jitter) and there is no gap longer than the window; until then the check is not judged and
reports OK with the current value and how much of the window is covered, the way an alert with a `for:`
duration stays pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenctl.agents.health.metrics import (
    FIRST_RUN_SAMPLE_SECONDS,
    CpuCounters,
    HostFacts,
    MountFacts,
    busy_percent,
)
from zenctl.core.agent import Finding
from zenctl.core.units import human_bytes

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.agents.health.config import SystemHealthConfig

COVERAGE = 0.9  # share of a window the samples must span


@dataclass(frozen=True)
class Gauge:
    """A judged metric, declared as data: used by the checks, the renderers and the README table."""

    check: str
    label: str
    unit: str
    key: str  # config prefix: <key>_warning, <key>_threshold, optional <key>_window


GAUGES = {
    "cpu": Gauge("cpu", "CPU", "%", "cpu"),
    "load": Gauge("load", "Load (5 min, per CPU)", "", "load"),
    "memory": Gauge("memory", "Memory", "%", "memory"),
    "swap": Gauge("swap", "Swap", "%", "swap"),
    "disk": Gauge("disk", "Disk", "%", "disk"),
    "inode": Gauge("inode", "Inodes", "%", "inode"),
}


@dataclass
class Sample:
    """What one earlier run stored."""

    ts: float
    cpu: CpuCounters | None = None
    memory_percent: float | None = None


def level(value: float, warning: float | None, critical: float | None) -> str:
    """ok / warning / critical for a value that is bad when high: above a level crosses it; None is no level."""
    if critical is not None and value > critical:
        return "critical"
    return "warning" if warning is not None and value > warning else "ok"


def _judged(gauge: Gauge, cfg: SystemHealthConfig, value: float, what: str, target: str = "",
            **evidence) -> Finding:
    warning, critical = getattr(cfg, f"{gauge.key}_warning"), getattr(cfg, f"{gauge.key}_threshold")
    status = level(value, warning, critical)
    bound = {"critical": f" > {critical:g}", "warning": f" > {warning:g}", "ok": f" <= {warning:g}"}[status]
    check = f"{gauge.check}:{target}" if target else gauge.check
    message = f"{gauge.label}{' ' + target if target else ''} {value:z.1f}{gauge.unit}{bound}{gauge.unit} {what}"
    return Finding(check, status, message.rstrip(), round(value, 2), critical, gauge.unit,
                   {"warning": warning, **evidence})


def _pending(gauge: Gauge, cfg: SystemHealthConfig, value: float, window: int, covered: float,
             **evidence) -> Finding:
    critical = getattr(cfg, f"{gauge.key}_threshold")
    above = f", above {critical:g}{gauge.unit} but" if value > critical else ";"
    return Finding(
        gauge.check, "ok",
        f"{gauge.label} {value:z.1f}{gauge.unit} now{above} not judged until samples cover the {window} s window "
        f"({covered:.0f} s so far)",
        round(value, 2), critical, gauge.unit,
        {"judged": False, "window_seconds": window, "covered_seconds": round(covered, 1), **evidence},
    )


def cpu_finding(facts: HostFacts, history: list[Sample], cfg: SystemHealthConfig) -> Finding:
    gauge = GAUGES["cpu"]
    ours = [s for s in history if s.cpu and s.cpu.boot_time == facts.cpu.boot_time and s.ts < facts.ts
            and s.cpu.total < facts.cpu.total]
    if facts.short_sample_percent is not None or not ours:
        current, span = facts.short_sample_percent or 0.0, FIRST_RUN_SAMPLE_SECONDS
    else:
        current, span = busy_percent(ours[-1].cpu, facts.cpu), facts.ts - ours[-1].ts
    evidence = {"current_percent": round(current, 2), "current_span_seconds": round(span, 2)}
    window = cfg.cpu_window
    if window == 0:
        return _judged(gauge, cfg, current, f"over the last {span:.0f} s", **evidence)
    recent = [s for s in ours if facts.ts - s.ts <= 2 * window]  # older: a gap in the history
    baseline = next((s for s in reversed(recent) if facts.ts - s.ts >= COVERAGE * window), None)
    if baseline is not None:
        covered = facts.ts - baseline.ts
        return _judged(gauge, cfg, busy_percent(baseline.cpu, facts.cpu),
                       f"on average over the last {covered:.0f} s (window {window} s)",
                       judged=True, window_seconds=window, covered_seconds=round(covered, 1), **evidence)
    covered = facts.ts - recent[0].ts if recent else span
    return _pending(gauge, cfg, current, window, covered, **evidence)


def memory_finding(facts: HostFacts, history: list[Sample], cfg: SystemHealthConfig) -> Finding:
    gauge, window = GAUGES["memory"], cfg.memory_window
    if window == 0:
        return _judged(gauge, cfg, facts.memory_percent, "in use")
    inside = [s for s in history if s.memory_percent is not None and 0 < facts.ts - s.ts <= 2 * window]
    recent = [s for s in inside if facts.ts - s.ts <= window]
    oldest = max((facts.ts - s.ts for s in inside), default=0.0)
    gaps = [b.ts - a.ts for a, b in zip(inside, [*inside[1:], Sample(facts.ts)])]
    if oldest < COVERAGE * window or any(gap > window for gap in gaps):
        return _pending(gauge, cfg, facts.memory_percent, window, oldest)
    values = [s.memory_percent for s in recent] + [facts.memory_percent]
    return _judged(gauge, cfg, sum(values) / len(values),
                   f"in use on average over {len(values)} samples in the last {window} s",
                   judged=True, window_seconds=window, current_percent=facts.memory_percent)


def load_finding(facts: HostFacts, cfg: SystemHealthConfig) -> Finding:
    one, five, fifteen = facts.load
    per_cpu = five / facts.cpu_count
    return _judged(GAUGES["load"], cfg, per_cpu,
                   f"(load {one:.2f} {five:.2f} {fifteen:.2f} on {facts.cpu_count} CPUs)",
                   load1=one, load5=five, load15=fifteen, cpus=facts.cpu_count)


def swap_finding(facts: HostFacts, cfg: SystemHealthConfig) -> Finding:
    if facts.swap_percent is None:
        return Finding("swap", "ok", "no swap configured", None, cfg.swap_threshold, "%")
    return _judged(GAUGES["swap"], cfg, facts.swap_percent, "in use")


def mount_findings(mount: MountFacts, cfg: SystemHealthConfig) -> list[Finding]:
    where = {"mountpoint": mount.mountpoint, "device": mount.device, "fstype": mount.fstype}
    if mount.error or mount.disk_percent is None:
        return [Finding(f"disk:{mount.mountpoint}", "unknown", f"Disk {mount.mountpoint}: {mount.error}",
                        None, cfg.disk_threshold, "%", where)]
    free = human_bytes(mount.disk_free_bytes)
    findings = [_judged(GAUGES["disk"], cfg, mount.disk_percent, f"used ({free} free)", mount.mountpoint,
                        free_bytes=mount.disk_free_bytes, total_bytes=mount.disk_total_bytes, **where)]
    if mount.inode_percent is not None:
        findings.append(_judged(GAUGES["inode"], cfg, mount.inode_percent, "used", mount.mountpoint, **where))
    return findings


def evaluate(facts: HostFacts, history: list[Sample], cfg: SystemHealthConfig) -> list[Finding]:
    """Every host finding of one run."""
    findings = [cpu_finding(facts, history, cfg), load_finding(facts, cfg),
                memory_finding(facts, history, cfg), swap_finding(facts, cfg)]
    for mount in facts.mounts:
        findings += mount_findings(mount, cfg)
    return findings
