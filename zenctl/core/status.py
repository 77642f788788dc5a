"""What `zenctl status` reports: each agent's last run and its cost."""

import time
from datetime import datetime

from zenctl.core.config import AGENT_NAMES, Config
from zenctl.core.state import State
from zenctl.core.timeutil import ago

_COLUMNS = ("id", "agent", "pid", "started", "ended", "status", "dry_run", "wall_seconds", "cpu_user_seconds",
            "cpu_system_seconds", "peak_rss_bytes", "message")


def agent_status(state: State | None, config: Config) -> list[dict]:
    """One row per agent: enabled, and its last run (an overlapping run that was skipped does not count)."""
    rows = []
    for name in AGENT_NAMES:
        run = None
        if state is not None:
            found = state.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE agent = ? AND status != 'overlap' "
                "ORDER BY started DESC LIMIT 1", (name,)).fetchone()
            run = dict(zip(_COLUMNS, found)) if found else None
            if run:
                run["dry_run"] = bool(run["dry_run"])
        age = time.time() - datetime.fromisoformat(run["started"].replace("Z", "+00:00")).timestamp() if run else None
        rows.append({"agent": name, "enabled": getattr(config.agents, name).enabled, "last_run": run,
                     "ago": ago(age) if age is not None else None})
    return rows
