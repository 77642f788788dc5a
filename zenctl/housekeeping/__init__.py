"""Housekeeping every agent may use (the seed's log rotation, temp-file cleanup, cache management): the walks,
the rotation with its generations, the disk-space arithmetic, and their action kinds.

An agent that runs housekeeping lists `KINDS` and `MODES` in its spec (`zenctl.core.registry.AgentSpec`).
"""

KINDS = {
    "tmp.clean": "zenctl.housekeeping.actions",
    "cache.prune": "zenctl.housekeeping.actions",
    "logs.rotate": "zenctl.housekeeping.log_actions",
    "logs.unrotate": "zenctl.housekeeping.log_actions",
}
MODES = (
    ("logs.*", "auto", "log rotation"),
    ("tmp.*", "auto", "temporary file cleanup"),
    ("cache.*", "auto", "cache management"),
)
