"""The Data Validation agent: datasets (files, SQLite and PostgreSQL tables) validated against Frictionless Table
Schemas, quality checks over time, safe repairs with undo, and database schema changes only with approval."""

from zenctl.core.registry import AgentSpec

_KINDS = "zenctl.agents.data_validator.kinds"

SPEC = AgentSpec(
    name="data_validator",
    title="Data Validation",
    config="zenctl.agents.data_validator.config:DataValidatorConfig",
    agent="zenctl.agents.data_validator.agent:DataValidatorAgent",
    kinds={
        "data.normalize_encoding": f"{_KINDS}.repair",
        "data.trim": f"{_KINDS}.repair",
        "data.missing_values": f"{_KINDS}.repair",
        "data.dedupe": f"{_KINDS}.repair",
        "data.dates": f"{_KINDS}.repair",
        "data.numbers": f"{_KINDS}.repair",
        "data.quarantine": f"{_KINDS}.repair",
        "data.restore_rows": f"{_KINDS}.repair",
        "schema.migrate": f"{_KINDS}.migrate",
        "schema.revert": f"{_KINDS}.migrate",
    },
    modes=(
        ("data.quarantine", "approve", "rows that still fail moved to a quarantine file (removes rows)"),
        ("data.*", "auto", "safe data repairs: encoding, whitespace, NA tokens, exact duplicates, dates, numbers"),
        ("schema.migrate", "approve", "database schema changes (DDL) to match the declared schema"),
        ("schema.revert", "approve", "the inverse DDL of a schema change (rollback runs it)"),
    ),
    cli="zenctl.agents.data_validator.cli:commands",
)
