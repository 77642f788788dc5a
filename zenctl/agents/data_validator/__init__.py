"""The Data Validation agent (configured; the agent arrives in a later release)."""

from zenctl.core.registry import AgentSpec

SPEC = AgentSpec(name="data_validator", title="Data Validation",
                 config="zenctl.agents.data_validator.config:DataValidatorConfig")
