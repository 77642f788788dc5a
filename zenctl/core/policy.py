"""Policy modes: may an action kind run on its own (auto), only after a person approves (approve), only be
reported (notify), or not at all (disabled)?

The defaults are the seed's: routine housekeeping and repairs are automatic; schema, config, major-upgrade and
security changes need a person. A kind that no rule names needs approval: when unsure, ask.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase

from zenctl.core.config import AgentConfig, Config

# (pattern, mode, what it covers) — first match wins; documented in README from this table.
DEFAULT_MODES: list[tuple[str, str, str]] = [
    ("logs.*", "auto", "log rotation"),
    ("tmp.*", "auto", "temporary file cleanup"),
    ("cache.*", "auto", "cache management"),
    ("db.reset_connections", "auto", "database connection management"),
    ("service.restart", "auto", "restarts with backoff"),
    ("service.memory_leak", "approve", "restart of a process whose memory leaks"),
    ("tls.renew", "auto", "certificate renewal with the configured command (certbot renew)"),
    ("fs.*", "auto", "file-system repairs: missing paths, modes, owners"),
    ("schema.*", "approve", "database schema changes"),
    ("config.*", "approve", "configuration changes"),
    ("deps.upgrade_major", "approve", "major dependency upgrades"),
    ("security.*", "approve", "security-related changes"),
    ("*", "approve", "anything else"),
]


@dataclass(frozen=True)
class Decision:
    """The mode an action gets and the rule that gave it, for the audit log."""

    mode: str
    rule: str


def mode_for(kind: str, config: Config, agent: AgentConfig) -> Decision:
    """Resolve a kind's mode: policy.modes (exact, then family) over the defaults; auto_mitigate: false
    turns auto into notify for that agent."""
    family = kind.split(".", 1)[0] + ".*"
    if kind in config.policy.modes:
        decision = Decision(config.policy.modes[kind], f"policy.modes.{kind}")
    elif family in config.policy.modes:
        decision = Decision(config.policy.modes[family], f"policy.modes.{family}")
    else:
        pattern, mode, _ = next(rule for rule in DEFAULT_MODES if fnmatchcase(kind, rule[0]))
        decision = Decision(mode, f"default for {pattern}")
    if decision.mode == "auto" and not agent.auto_mitigate:
        return Decision("notify", f"{decision.rule}, auto_mitigate: false")
    return decision
