"""Dependency Management's settings (`agents.dependency_manager`)."""

from pydantic import Field, field_validator

from zenctl.core.confbase import CronExpression, Mode
from zenctl.core.config import AgentConfig


class DependencyManagerConfig(AgentConfig):
    """Outdated and vulnerable Python packages (the agent arrives in a later release)."""

    schedule: CronExpression | None = Field(
        "0 3 * * *", description="Cron expression for scheduled runs (daily at 3 AM).")
    security_updates: Mode = Field("auto", description="Policy mode for updates that fix a known vulnerability.")
    minor_updates: Mode = Field("notify", description="Policy mode for minor and patch updates.")
    major_updates: Mode = Field("disabled", description="Policy mode for major version upgrades.")

    @field_validator("major_updates")
    @classmethod
    def _major_needs_a_person(cls, value: str) -> str:
        if value == "auto":
            raise ValueError("a major upgrade always needs a person: use approve, notify or disabled")
        return value

