"""The Log Analysis agent (configured; the agent arrives in a later release)."""

from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(name="log_analyzer", title="Log Analysis", config="zenctl.agents.log_analyzer.config:LogAnalyzerConfig")
