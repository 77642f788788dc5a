"""The System Health agent: host metrics against thresholds, and the paths it keeps in shape."""

from zenctl.agents.health import decide, metrics, paths, pressure, services, suggest
from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, BaseAgent, Finding, RunContext

SAMPLE_NAMES = ["cpu.busy_seconds", "cpu.total_seconds", "host.boot_time", "memory.percent"]
KEEP_SAMPLES_SECONDS = 7 * 86400


class SystemHealthAgent(BaseAgent):
    name = "system_health"
    title = "System Health"

    def assess(self, ctx: RunContext) -> Assessment:
        cfg = ctx.config
        proposals: list[Proposal] = []
        lookback = max(2 * cfg.cpu_window, 2 * cfg.memory_window, 2 * (cfg.interval or 0), 3600)
        history = load_history(ctx.samples(SAMPLE_NAMES, ctx.now - lookback))
        previous = next((s.cpu for s in reversed(history) if s.cpu), None)
        facts = metrics.collect(previous, cfg.ignore_mounts, cfg.statvfs_timeout)
        findings = decide.evaluate(facts, history, cfg)
        if cfg.disk_housekeeping:
            proposals += pressure.plan(findings, cfg, ctx.state, ctx.now)
        if cfg.suggestions:
            findings += suggest.suggestions(facts, findings, cfg)
        for spec in cfg.paths:
            finding, planned = paths.judge(spec, paths.observe(spec))
            findings.append(finding)
            proposals += planned
        service_samples = []
        for checked in services.check_all(cfg.services, service_history(ctx, cfg.services), ctx.now):
            findings += [checked.finding, *checked.extra]
            proposals += checked.proposals
            service_samples += checked.samples
        findings += schedule_findings(ctx)
        ctx.record_samples(samples_of(facts) + service_samples, KEEP_SAMPLES_SECONDS)
        return Assessment(findings, proposals)


def schedule_findings(ctx: RunContext) -> list[Finding]:
    """Missed runs: one finding per other agent that has run or was scheduled, CRITICAL when it is stale."""
    from zenctl.core.status import schedule_status

    findings = []
    for name, entry in schedule_status(ctx.state, ctx.loaded.config, ctx.now).items():
        if name == ctx.agent or not entry["judged"]:
            continue
        if entry["stale"]:
            findings.append(Finding(f"schedule:{name}", "critical", f"{name} is stale: {entry['stale']}",
                                    evidence={"schedule": entry["schedule"]}))
        else:
            findings.append(Finding(f"schedule:{name}", "ok", f"{name} runs on time ({entry['schedule']}; next due "
                                                              f"{entry['next_due']})"))
    return findings


def service_history(ctx: RunContext, configured: list) -> dict[str, list[tuple[float, float]]]:
    """Stored resident-memory samples of the process checks that judge memory, by service name."""
    watched = {s.name: s.leak_window for s in configured if s.type == "process" and (s.rss_limit_mb or
                                                                                    s.leak_mb_per_hour)}
    if not watched:
        return {}
    history: dict[str, list[tuple[float, float]]] = {}
    for _run, ts, _name, target, value in ctx.samples(services.SAMPLE_NAMES, ctx.now - max(watched.values())):
        if target in watched and value is not None:
            history.setdefault(target, []).append((ts, value))
    return history


def load_history(rows) -> list[decide.Sample]:
    """Group stored sample rows by run into one Sample each, oldest first."""
    by_run: dict[str, dict] = {}
    for run_id, ts, name, _target, value in rows:
        entry = by_run.setdefault(run_id, {"ts": ts})
        entry[name] = value
    history = []
    for entry in by_run.values():
        cpu = None
        if {"cpu.busy_seconds", "cpu.total_seconds", "host.boot_time"} <= entry.keys():
            cpu = metrics.CpuCounters(entry["cpu.busy_seconds"], entry["cpu.total_seconds"], entry["host.boot_time"])
        history.append(decide.Sample(entry["ts"], cpu, entry.get("memory.percent")))
    return sorted(history, key=lambda s: s.ts)


def samples_of(facts: metrics.HostFacts) -> list[tuple[str, str, float | None]]:
    """What this run stores for later runs' windows (and for graphs)."""
    rows = [
        ("cpu.busy_seconds", "", facts.cpu.busy), ("cpu.total_seconds", "", facts.cpu.total),
        ("host.boot_time", "", facts.cpu.boot_time), ("memory.percent", "", facts.memory_percent),
        ("swap.percent", "", facts.swap_percent), ("load.5", "", facts.load[1]),
    ]
    for mount in facts.mounts:
        rows += [("disk.percent", mount.mountpoint, mount.disk_percent),
                 ("inode.percent", mount.mountpoint, mount.inode_percent)]
    return rows
