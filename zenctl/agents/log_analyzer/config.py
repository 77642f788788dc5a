"""Log Analysis's settings (`agents.log_analyzer`)."""

from pydantic import Field

from zenctl.core.config import AgentConfig


class LogAnalyzerConfig(AgentConfig):
    """Error patterns, bottlenecks and security incidents in logs (arrives in a later release)."""

    interval: int | None = Field(300, ge=1, description="Seconds between runs when scheduled by interval.")
