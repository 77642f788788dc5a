"""Data Validation's settings (`agents.data_validator`): the datasets, each a source, a Table Schema, quality
checks, the repairs the agent may propose, and whether rows that still fail go to quarantine."""

import re
import warnings
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from zenctl.core.confbase import Duration, Model
from zenctl.core.config import AgentConfig, unique

REPAIRS = ("normalize_encoding", "trim", "missing_values", "dedupe", "dates", "numbers")
TABLE_REPAIRS = ("trim", "missing_values", "dedupe", "dates", "numbers")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


class Range(Model):
    """Bounds a field's values must stay within."""

    min: float | None = Field(None, description="Smallest value allowed (inclusive).")
    max: float | None = Field(None, description="Largest value allowed (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class Freshness(Model):
    """How old the newest data may be."""

    field: str | None = Field(None, description="Timestamp field whose newest value counts; none: the file's "
                                                "modification time (files only).")
    max_age: Duration = Field(description="Largest age allowed, such as 1d or 6h.", examples=["1d"])


class Drift(Model):
    """Drift against the dataset's own history (kept in the agent's state, one entry per run)."""

    enabled: bool = Field(True, description="Compare each run with the band learned from earlier runs.")
    history: int = Field(30, ge=3, le=1000, description="Runs kept per dataset to learn the band from.")
    min_runs: int = Field(5, ge=2, description="Earlier runs needed before drift is judged.")
    sigmas: float = Field(4.0, gt=0, description="Band half-width in robust standard deviations (1.4826 x MAD).")
    row_change: float = Field(0.5, gt=0, description="Largest relative row-count change from the previous "
                                                     "run's count (0.5: 50%) before a warning.")

    @model_validator(mode="after")
    def _enough_history(self) -> "Drift":
        if self.min_runs > self.history:
            raise ValueError(f"min_runs ({self.min_runs}) is more than the history kept ({self.history}): the band "
                             "would never be judged")
        return self


class Checks(Model):
    """Quality checks beyond the schema; each a WARNING when it fails."""

    null_rate: dict[str, float] = Field(default_factory=dict, description="Field -> largest fraction of empty "
                                        "cells (0..1).", examples=[{"email": 0.05}])
    ranges: dict[str, Range] = Field(default_factory=dict, description="Field -> min and max of its values.")
    distinct: dict[str, Range] = Field(default_factory=dict, description="Field -> min and max count of "
                                       "distinct values.")
    unique_keys: list[list[str]] = Field(default_factory=list, description="Field lists that must identify a "
                                         "row (duplicates by key are reported).", examples=[[["id"]]])
    freshness: Freshness | None = Field(None, description="How old the newest row (or the file) may be.")
    drift: Drift = Field(default_factory=Drift, description="Row count, mean and spread against history.")

    @field_validator("null_rate")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for name, rate in value.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"{name}: {rate} is not a fraction between 0 and 1")
        return value


with warnings.catch_warnings():  # `schema` is the key users write; BaseModel's deprecated method of that name
    warnings.simplefilter("ignore")

    class Dataset(Model):
        """One dataset: a source (path, sqlite or postgres), its Table Schema, checks and repairs."""

        name: str = Field(description="Its name in findings (data:NAME) and --dataset.", examples=["orders"])
        path: str | None = Field(None, description="A data file, or a glob of files (CSV, TSV, JSON Lines, JSON).",
                                 examples=["/srv/exports/orders-*.csv"])
        format: Literal["csv", "tsv", "jsonl", "json"] | None = Field(
            None, description="File format; none: from the file name's suffix (csv otherwise).")
        delimiter: str | None = Field(None, description="CSV delimiter; none: sniffed.")
        quote: str | None = Field(None, description="CSV quote character; none: sniffed (\").")
        header_rows: int = Field(1, ge=0, le=100, description="Header rows of a CSV (0: none).")
        encoding: str | None = Field(None, description="Text encoding; none: detected (UTF-8 with or without BOM, "
                                                       "UTF-16 by its BOM, else Latin-1, said in the finding).")
        sqlite: str | None = Field(None, description="SQLite database file (with table or query).")
        postgres: str | None = Field(None, description="PostgreSQL DSN (with table); a password is better kept in "
                                                       "~/.pgpass, which rollback can use too.")
        table: str | None = Field(None, description="Table (schema.table for PostgreSQL) of a database source.")
        query: str | None = Field(None, description="Read-only SELECT of a SQLite source, instead of table.")
        schema: str | dict[str, Any] = Field(description="Table Schema: a JSON or YAML file, or inline.",
                                             examples=["/etc/zenctl/schemas/orders.json"])
        checks: Checks = Field(default_factory=Checks, description="Quality checks.", examples=[
            {"null_rate": {"email": 0.05}, "unique_keys": [["id"]],
             "freshness": {"field": "updated", "max_age": "1d"}}])
        repairs: list[Literal[REPAIRS]] = Field(  # type: ignore[valid-type]
            default_factory=list, description=f"Repairs to propose: {', '.join(REPAIRS)}.",
            examples=[["trim", "missing_values"]])
        quarantine: bool = Field(False, description="Move rows that still fail to <file>.quarantine<suffix> beside "
                                                    "the dataset (files; policy data.quarantine, approve).")
        migrate: bool = Field(True, description="Propose schema.migrate when a table differs from its schema.")
        allow_data_loss: bool = Field(False, description="Let schema.migrate drop columns (their data is kept in "
                                                         "the action's record for rollback).")
        max_errors: int = Field(20, ge=1, le=10000, description="Errors listed as evidence (counts stay exact).")
        batch_rows: int = Field(10000, ge=100, le=1_000_000, description="Rows read from a database per batch.")

        @field_validator("name")
        @classmethod
        def _name(cls, value: str) -> str:
            if not _NAME.match(value):
                raise ValueError("must be letters, digits, '_', '.' or '-'")
            return value

        @field_validator("table")
        @classmethod
        def _table(cls, value: str | None) -> str | None:
            if value is not None and not _IDENT.match(value):
                raise ValueError("must be a table name, or schema.table (letters, digits, '_')")
            return value

        @field_validator("delimiter", "quote")
        @classmethod
        def _one_char(cls, value: str | None) -> str | None:
            if value is not None and len(value) != 1:
                raise ValueError("must be one character")
            return value

        @field_validator("encoding")
        @classmethod
        def _codec(cls, value: str | None) -> str | None:
            if value is not None:
                import codecs

                try:
                    codecs.lookup(value)
                except LookupError:
                    raise ValueError(f"unknown encoding {value!r}") from None
            return value

        @field_validator("query")
        @classmethod
        def _select(cls, value: str | None) -> str | None:
            if value is not None and not re.match(r"^\s*(select|with)\b", value, re.I):
                raise ValueError("must be a SELECT (or WITH ... SELECT) query")
            return value

        @model_validator(mode="after")
        def _one_source(self) -> "Dataset":
            sources = [key for key in ("path", "sqlite", "postgres") if getattr(self, key)]
            if len(sources) != 1:
                raise ValueError("give exactly one source: path, sqlite or postgres"
                                 + (f" (found {', '.join(sources)})" if sources else ""))
            if self.sqlite and not (self.table or self.query) or self.sqlite and self.table and self.query:
                raise ValueError("a sqlite source needs table or query (one of them)")
            if self.postgres and (not self.table or self.query):
                raise ValueError("a postgres source needs table (query is for sqlite)")
            if self.path and (self.table or self.query):
                raise ValueError("table and query belong to a database source, not a path")
            if self.query and self.repairs:
                raise ValueError("repairs need a table, not a query")
            if not self.path:
                bad = [r for r in self.repairs if r not in TABLE_REPAIRS]
                if bad:
                    raise ValueError(f"repairs: {bad[0]} is for files, not tables")
                for key in ("format", "delimiter", "quote", "encoding"):
                    if getattr(self, key) is not None:
                        raise ValueError(f"{key} belongs to a file source (path), not a database")
            if self.quarantine and not self.path:
                raise ValueError("quarantine: rows are moved to a file beside the dataset; give a path source")
            return self


def source_kind(ds) -> str:
    """A dataset's source: "file", "sqlite" or "postgres" (a function, not a property: agents read their config as a
    view, core.configcache)."""
    return "sqlite" if ds.sqlite else "postgres" if ds.postgres else "file"


class DataValidatorConfig(AgentConfig):
    """Schema validation (Frictionless Table Schema), quality checks over time, safe repairs with undo, and
    database schema changes with approval."""

    interval: int | None = Field(3600, ge=1, description="Seconds between runs when scheduled by interval.")
    datasets: list[Dataset] = Field(default_factory=list, description="The datasets to check.")

    @field_validator("datasets")
    @classmethod
    def _unique(cls, value: list[Dataset]) -> list[Dataset]:
        unique([d.name for d in value], "dataset name {!r} is used twice")
        return value
