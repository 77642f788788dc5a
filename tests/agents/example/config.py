"""The example agent's settings (`agents.example`)."""

from pydantic import Field

from zenctl.core.config import AgentConfig


class ExampleConfig(AgentConfig):
    """A file that must hold a line (the example agent of the tests)."""

    path: str | None = Field(None, description="File that must hold the line.")
    line: str = Field("zenctl was here", description="The line.")
