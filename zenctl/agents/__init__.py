"""The agents zenctl can run, by config name."""

from zenctl.core.agent import BaseAgent

AVAILABLE = ("system_health",)  # the others are configured already; their agents arrive in later releases


def get_agent(name: str) -> BaseAgent:
    """A fresh agent instance for one run."""
    if name == "system_health":
        from zenctl.agents.health.agent import SystemHealthAgent

        return SystemHealthAgent()
    raise KeyError(f"agent {name!r} is not available in this release")
