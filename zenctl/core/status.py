"""What `zenctl status` reports: the stop flag and safe mode, pending approvals, open circuits, problems by
escalation level, alerts not yet delivered, and each agent's last run and its cost."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from zenctl.core import registry
from zenctl.core.state import State
from zenctl.core.timeutil import ago, epoch, iso

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.core.configmodels import Config

_COLUMNS = ("id", "agent", "pid", "started", "ended", "status", "dry_run", "wall_seconds", "cpu_user_seconds",
            "cpu_system_seconds", "peak_rss_bytes", "message")


def agent_status(state: State | None, config: Config) -> list[dict]:
    """One row per agent: enabled, and its last run (an overlapping run that was skipped does not count)."""
    rows = []
    for name in registry.names():
        run = None
        if state is not None:
            found = state.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE agent = ? AND status != 'overlap' "
                "ORDER BY started DESC LIMIT 1", (name,)).fetchone()
            run = dict(zip(_COLUMNS, found)) if found else None
            if run:
                run["dry_run"] = bool(run["dry_run"])
        age = time.time() - epoch(run["started"]) if run else None
        rows.append({"agent": name, "enabled": config.agent(name).enabled, "last_run": run,
                     "ago": ago(age) if age is not None else None})
    timings = schedule_status(state, config, time.time())
    for row in rows:
        row.update(timings[row["agent"]])
    return rows


def schedule_status(state: State | None, config: Config, now: float) -> dict[str, dict]:
    """Per agent: its timing, run_as, when it is next due, and why it is stale (None when it is not). An agent is
    judged only when enabled, not stopped, and it has run or `zenctl schedule install` scheduled it."""
    available = registry.available()
    from zenctl.core import control, due, schedule

    installed = schedule.installed_at(state) if state is not None else {}
    out = {}
    for name in registry.names():
        agent = config.agent(name)
        timing = due.timing_of(agent)
        entry = {"schedule": timing.describe(), "run_as": agent.run_as, "next_due": None, "judged": False,
                 "stale": None}
        out[name] = entry
        if state is None or not agent.enabled or control.stopped(state, name):
            continue
        last = due.last_run(state, name)
        reference = last if last is not None else installed.get(name)
        known = due.remembered_fires(state, name, timing.schedule, now) if timing.schedule else None
        if name in available or reference is not None:
            upcoming = due.next_due(timing, last, now, known=known)
            entry["next_due"] = iso(upcoming) if upcoming is not None else None
        entry["judged"] = reference is not None
        entry["stale"] = due.stale_reason(timing, reference, now, known=known)
    return out


def host_status(state: State | None, config: Config) -> dict:
    """Everything `zenctl status` shows, as its --json object."""
    from zenctl.core import alerts, approvals, control, escalation

    out = {"stopped": [], "safe_mode": None, "approvals": [], "circuits": [], "problems": [],
           "undelivered_alerts": [], "agents": agent_status(state, config)}
    if state is None:
        return out
    out["stopped"] = [vars(s) for name in registry.names() if (s := control.stopped(state, name))]
    out["safe_mode"] = control.safe_mode(state)
    out["notify_only_runs"] = {name: n for name in registry.names() if (n := control.notify_only_runs(state, name))}
    out["approvals"] = [{k: a[k] for k in ("id", "agent", "kind", "target", "status", "preview", "expires")}
                        for a in approvals.listing(state, False)]
    out["circuits"] = escalation.open_circuits(state, config)
    out["problems"] = escalation.open_problems(state)
    out["undelivered_alerts"] = [{k: a[k] for k in ("id", "channel", "event", "status", "summary", "last_error",
                                                    "held_by", "attempts")} for a in alerts.listing(state, False)]
    return out
