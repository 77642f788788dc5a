"""The Dependency Management agent (configured; the agent arrives in a later release). Its policy comes from the
seed's keys: security_updates, minor_updates and major_updates are the modes of its kinds."""

from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(
    name="dependency_manager",
    title="Dependency Management",
    config="zenctl.agents.dependency_manager.config:DependencyManagerConfig",
    config_modes="zenctl.agents.dependency_manager.policy:policy_modes",
)
