"""The modes of the dependency kinds, from the seed's keys (one source of truth). Apart from the config model, so
that a policy decision on the cron path reads the config's view without importing pydantic (core.configcache)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zenctl.agents.dependency_manager.config import DependencyManagerConfig


def policy_modes(section: DependencyManagerConfig) -> dict[str, tuple[str, str]]:
    """The seed's keys are the modes of the dependency kinds (one source of truth): kind -> (mode, key)."""
    return {
        "deps.upgrade_security": (section.security_updates, "agents.dependency_manager.security_updates"),
        "deps.upgrade_minor": (section.minor_updates, "agents.dependency_manager.minor_updates"),
        "deps.upgrade_patch": (section.minor_updates, "agents.dependency_manager.minor_updates"),
        "deps.upgrade_major": (section.major_updates, "agents.dependency_manager.major_updates"),
        "deps.apt_upgrade": (section.security_updates, "agents.dependency_manager.security_updates"),
    }
