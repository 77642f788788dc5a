"""The Dependency Management agent: outdated and vulnerable packages of Python environments and of the host's
Debian packages, upgrades proposed by update type. Its policy comes from the seed's keys: security_updates,
minor_updates and major_updates are the modes of its kinds (deps.apt_upgrade follows security_updates)."""

from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(
    name="dependency_manager",
    title="Dependency Management",
    config="zenctl.agents.dependency_manager.config:DependencyManagerConfig",
    config_modes="zenctl.agents.dependency_manager.policy:policy_modes",
    agent="zenctl.agents.dependency_manager.agent:DependencyManagerAgent",
    cli="zenctl.agents.dependency_manager.cli:commands",
    kinds={
        "deps.upgrade_security": "zenctl.agents.dependency_manager.kinds.upgrade",
        "deps.upgrade_patch": "zenctl.agents.dependency_manager.kinds.upgrade",
        "deps.upgrade_minor": "zenctl.agents.dependency_manager.kinds.upgrade",
        "deps.upgrade_major": "zenctl.agents.dependency_manager.kinds.upgrade",
        "deps.restore": "zenctl.agents.dependency_manager.kinds.upgrade",
        "deps.apt_upgrade": "zenctl.agents.dependency_manager.kinds.apt",
        "deps.apt_restore": "zenctl.agents.dependency_manager.kinds.apt",
    },
    modes=(
        ("deps.upgrade_security", "auto", "upgrades that fix a known vulnerability (security_updates)"),
        ("deps.upgrade_patch", "notify", "patch upgrades (minor_updates)"),
        ("deps.upgrade_minor", "notify", "minor upgrades (minor_updates)"),
        ("deps.upgrade_major", "disabled", "major upgrades, always by a person (major_updates)"),
        ("deps.apt_upgrade", "auto", "Debian packages from a security origin (security_updates)"),
    ),
)
