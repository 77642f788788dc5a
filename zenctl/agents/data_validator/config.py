"""Data Validation's settings (`agents.data_validator`)."""

from pydantic import Field

from zenctl.core.config import AgentConfig


class DataValidatorConfig(AgentConfig):
    """Schema and quality checks with safe repairs (arrives in a later release)."""

    interval: int | None = Field(3600, ge=1, description="Seconds between runs when scheduled by interval.")
