"""The registry's one list: every agent zenctl has, in the order help, status and the config show them.
Adding an agent is its package (with a `SPEC`) and one line here."""

from zenctl.agents import data_validator, dependency_manager, health, log_analyzer
from zenctl.core import registry

AGENTS = [
    health.SPEC,
    dependency_manager.SPEC,
    log_analyzer.SPEC,
    data_validator.SPEC,
]

registry.install(AGENTS)
