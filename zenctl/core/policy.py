"""Policy modes: may an action kind run on its own (auto), only after a person approves (approve), only be
reported (notify), or not at all (disabled)?

The defaults are the seed's: routine housekeeping and repairs are automatic; schema, config, major-upgrade and
security changes need a person. Each agent declares the defaults of its kinds (`registry.AgentSpec.modes`), or
derives them from its config (the dependency agent's seed keys); core adds the guarded families and asks for
approval of anything no rule names: when unsure, ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from zenctl.core import registry

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.core.configmodels import AgentConfig, Config

# (pattern, mode, what it covers) — core's own rules, after every agent's (first match wins); documented in README.
CORE_MODES: list[tuple[str, str, str]] = [
    ("schema.*", "approve", "database schema changes"),
    ("config.*", "approve", "configuration changes"),
    ("deps.upgrade_major", "approve", "major dependency upgrades"),
    ("security.*", "approve", "security-related changes"),
    ("*", "approve", "anything else"),
]


def default_modes() -> list[tuple[str, str, str]]:
    """Every agent's default modes (registry order, the first declaration of a pattern wins), then core's."""
    rules, seen = [], set()
    for spec in registry.specs():
        for rule in spec.modes:
            if rule[0] not in seen:
                seen.add(rule[0])
                rules.append(rule)
    return rules + CORE_MODES


@dataclass(frozen=True)
class Decision:
    """The mode an action gets and the rule that gave it, for the audit log."""

    mode: str
    rule: str


def mode_for(kind: str, config: Config, agent: AgentConfig) -> Decision:
    """Resolve a kind's mode: policy.modes (exact, then family) over the defaults; auto_mitigate: false
    turns auto into notify for that agent."""
    family = kind.split(".", 1)[0] + ".*"
    derived = _from_owner_config(kind, config)
    if kind in config.policy.modes:
        decision = Decision(config.policy.modes[kind], f"policy.modes.{kind}")
    elif family in config.policy.modes:
        decision = Decision(config.policy.modes[family], f"policy.modes.{family}")
    elif derived:
        decision = Decision(*derived)
    else:
        pattern, mode, _ = next(rule for rule in default_modes() if fnmatchcase(kind, rule[0]))
        decision = Decision(mode, f"default for {pattern}")
    if decision.mode == "auto" and not agent.auto_mitigate:
        return Decision("notify", f"{decision.rule}, auto_mitigate: false")
    return decision


def _from_owner_config(kind: str, config: Config) -> tuple[str, str] | None:
    """(mode, key) when the agent that owns `kind` derives its mode from its own config (the seed's
    `security_updates`, `minor_updates`, `major_updates`)."""
    for spec in registry.specs():
        if spec.config_modes:
            found = registry.load(spec.config_modes)(config.agent(spec.name)).get(kind)
            if found:
                return found
    return None


def guarded_automatic(config: Config) -> list[str]:
    """The guarded kinds (schema.*, config.*, security.*) a user's config made automatic, explicitly."""
    return sorted(key for key, mode in config.policy.modes.items() if mode == "auto"
                  and any(fnmatchcase(key, g) or fnmatchcase(g, key) for g in registry.GUARDED))
