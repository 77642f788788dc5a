"""The agents zenctl knows, as the entry point installs them (`zenctl.agents.AGENTS`).

Core and the CLI read this registry and never name an agent: an agent package declares here its name, title,
config model, action kinds with their default policy modes, and CLI commands. Everything is named by import path
(`module:attribute`) and loaded only when used, so a run pays only for the agent it runs.
"""

import importlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

# Kinds no agent may make automatic by its defaults: the seed's "human approval required". A user's config may
# still do so, explicitly (`config show` says so), except deps.upgrade_major, which always needs a person.
GUARDED = ("schema.*", "config.*", "security.*", "deps.upgrade_major")


@dataclass(frozen=True)
class AgentSpec:
    """What an agent package declares about itself."""

    name: str  # its config section under `agents:` and its name in runs, locks and the audit log
    title: str
    config: str  # "module:Class" of its config model, a subclass of core.config.AgentConfig
    agent: str | None = None  # "module:Class" of its BaseAgent; None: configured, the agent arrives in a later release
    kinds: dict[str, str] = field(default_factory=dict)  # action kind name -> module that registers it
    modes: tuple[tuple[str, str, str], ...] = ()  # default policy modes: (kind or family, mode, what it covers)
    config_modes: str | None = None  # "module:function": its config section -> {kind: (mode, key that set it)}
    cli: str | None = None  # "module:function" returning its commands [(name, typer app or function)], main first

    @property
    def available(self) -> bool:
        return self.agent is not None


_SPECS: dict[str, AgentSpec] = {}


def install(specs: list[AgentSpec]) -> None:
    """Called once by the entry point. ValueError for a spec that would make a guarded kind automatic."""
    for spec in specs:
        for pattern, mode, _ in spec.modes:
            if mode == "auto" and any(fnmatchcase(pattern, g) or fnmatchcase(g, pattern) for g in GUARDED):
                raise ValueError(f"agent {spec.name}: {pattern} may not default to auto (guarded: needs a person)")
    _SPECS.clear()
    _SPECS.update((spec.name, spec) for spec in specs)


def specs() -> list[AgentSpec]:
    if not _SPECS:
        raise RuntimeError("no agents installed: import zenctl.agents (the entry point does) before using core")
    return list(_SPECS.values())


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in specs())


def available() -> tuple[str, ...]:
    """The agents this release can run (the others are configured already and arrive later)."""
    return tuple(spec.name for spec in specs() if spec.available)


def get(name: str) -> AgentSpec:
    """The spec of agent `name`; KeyError when zenctl has none by that name."""
    specs()
    return _SPECS[name]


def owner(kind: str) -> AgentSpec | None:
    """The agent that declares action kind `kind`."""
    return next((spec for spec in specs() if kind in spec.kinds), None)


def load(ref: str) -> Any:
    """The object a `module:attribute` reference names (importing the module)."""
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)
