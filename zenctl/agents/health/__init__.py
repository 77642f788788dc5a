"""The System Health agent: metrics against thresholds, service checks and repairs, paths kept in shape, and the
housekeeping that keeps disks from filling."""

from zenctl import housekeeping
from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(
    name="system_health",
    title="System Health",
    config="zenctl.agents.health.config:SystemHealthConfig",
    agent="zenctl.agents.health.agent:SystemHealthAgent",
    kinds={
        **housekeeping.KINDS,
        "db.reset_connections": "zenctl.agents.health.kinds.db",
        "service.restart": "zenctl.agents.health.kinds.service",
        "service.memory_leak": "zenctl.agents.health.kinds.service",
        "tls.renew": "zenctl.agents.health.kinds.service",
        "fs.mkdir": "zenctl.actions.fs",
        "fs.touch": "zenctl.actions.fs",
        "fs.chmod": "zenctl.actions.fs",
        "fs.chown": "zenctl.actions.fs",
    },
    modes=(
        *housekeeping.MODES,
        ("db.reset_connections", "auto", "database connection management"),
        ("service.restart", "auto", "restarts with backoff"),
        ("service.memory_leak", "approve", "restart of a process whose memory leaks"),
        ("tls.renew", "auto", "certificate renewal with the configured command (certbot renew)"),
        ("fs.*", "auto", "file-system repairs: missing paths, modes, owners"),
    ),
    cli="zenctl.agents.health.cli:commands",
)
