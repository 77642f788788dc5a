"""Dependency Management's settings (`agents.dependency_manager`)."""

import shlex
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from zenctl.core.confbase import CronExpression, Duration, Mode, Model
from zenctl.core.config import AgentConfig

Severity = Literal["low", "medium", "high", "critical"]


class TestCommand(Model):
    """The command that proves an upgrade in the throwaway copy (argv; a string is split like a shell would, but
    never run by one)."""

    command: list[str] = Field(description='The test command, e.g. "pytest -q" or ["python", "-m", "pytest"].')
    cwd: str | None = Field(None, description="Directory to run it in (default: the target's directory).")
    timeout: Duration = Field(600, gt=0, description="Seconds before the test is killed and the proof fails.")

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value):
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split the command: {exc}") from None
        if not value:
            raise ValueError("must name a command")
        return value


class PythonTarget(Model):
    """A virtualenv or interpreter whose installed distributions are watched."""

    type: Literal["python"] = "python"
    python: str | None = Field(None, description="The interpreter (e.g. /srv/app/.venv/bin/python).")
    venv: str | None = Field(None, description="The virtualenv directory (its bin/python is the interpreter).")
    requirements: list[str] = Field(default_factory=list,
                                    description="Requirements files the target must keep satisfying (direct deps).")
    constraints: list[str] = Field(default_factory=list, description="Constraints files upgrades must respect.")
    test: TestCommand | None = Field(None, description="Command that proves an upgrade in the isolated copy.")
    index_url: str | None = Field(None, description="Index to use instead of pip's (PIP_INDEX_URL, pip.conf).")
    extra_index_urls: list[str] = Field(default_factory=list, description="More indexes, as pip's --extra-index-url.")

    @model_validator(mode="after")
    def _one_interpreter(self):
        if bool(self.python) == bool(self.venv):
            raise ValueError("a python target needs exactly one of `python: PATH` or `venv: DIR`")
        return self



def interpreter(target) -> str:
    """A python target's interpreter (a function, not a property: agents read their config as a view)."""
    return target.python or f"{target.venv.rstrip('/')}/bin/python"


class OriginRule(Model):
    """One Origins-Pattern-like rule (unattended-upgrades): every key given must match (globs), case-sensitive."""

    origin: str | None = Field(None, description="Release file's Origin (o=), e.g. Debian.")
    label: str | None = Field(None, description="Label (l=), e.g. Debian-Security.")
    archive: str | None = Field(None, description="Archive or suite (a=), e.g. bookworm-security.")
    codename: str | None = Field(None, description="Codename (n=), e.g. bookworm.")
    component: str | None = Field(None, description="Component (c=), e.g. main.")
    site: str | None = Field(None, description="Host the archive comes from (site=).")


def _default_security_origins() -> list[OriginRule]:
    return [OriginRule(origin="Debian", label="Debian-Security"), OriginRule(archive="*-security")]


class AptTarget(Model):
    """The host's Debian packages, as unattended-upgrades sees them."""

    type: Literal["apt"]
    security_origins: list[OriginRule] = Field(
        default_factory=_default_security_origins,
        description="Origins whose upgrades are security updates (like Unattended-Upgrade::Origins-Pattern).")
    packages: list[str] = Field(["*"], description="Package globs to watch.")
    exclude: list[str] = Field(default_factory=list, description="Package globs never upgraded (besides holds).")


Target = Annotated[PythonTarget | AptTarget, Field(discriminator="type")]


class DependencyManagerConfig(AgentConfig):
    """Outdated and vulnerable packages: Python environments and the host's Debian packages."""

    schedule: CronExpression | None = Field(
        "0 3 * * *", description="Cron expression for scheduled runs (daily at 3 AM).")
    security_updates: Mode = Field("auto", description="Policy mode for updates that fix a known vulnerability.")
    minor_updates: Mode = Field("notify", description="Policy mode for minor and patch updates.")
    major_updates: Mode = Field("disabled", description="Policy mode for major version upgrades.")
    targets: dict[str, Target] = Field(
        default_factory=dict,
        description="What to watch, by name (type python or apt); none: the interpreter zenctl runs in.")
    min_release_age: Duration = Field(
        0, description="Cool-down: a release younger than this is not proposed, unless it fixes a vulnerability.")
    security_min_severity: Severity = Field(
        "low", description="Advisories below this severity are not security updates (unknown severity counts).")
    outdated_status: Literal["ok", "warning"] = Field("ok", description="Status of a finding for an outdated package.")
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Upgrade groups: name -> package globs; one action per group and kind.")
    advisories: str | None = Field(
        None, description="Offline OSV advisory directory (pypa advisory-database layout, YAML or JSON).")
    advisory_service: Literal["auto", "osv", "pypi", "off"] = Field(
        "auto", description="pip-audit's online service: auto uses osv unless `advisories` is set.")
    osv_url: str | None = Field(None, description="OSV API query endpoint for advisory_service osv (a mirror); "
                                                  "default https://api.osv.dev/v1/query.")
    cache_ttl: Duration = Field(3600, description="How long index answers are reused from the state.")
    index_timeout: Duration = Field(15, gt=0, description="Seconds to wait for one index answer.")
    index_workers: int = Field(16, ge=1, le=64, description="Concurrent index requests (uv makes up to 50).")

    @field_validator("targets", mode="before")
    @classmethod
    def _python_by_default(cls, value):
        """`type` may be left out for a python target (it has `python:` or `venv:`)."""
        if isinstance(value, dict):
            return {name: {"type": "python", **t} if isinstance(t, dict) and "type" not in t else t
                    for name, t in value.items()}
        return value

    @field_validator("advisory_service", mode="before")
    @classmethod
    def _yaml_off(cls, value):
        """YAML reads a bare `off` as false."""
        return "off" if value is False else value

    @field_validator("groups")
    @classmethod
    def _groups_named(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, globs in value.items():
            if not globs:
                raise ValueError(f"group {name!r} names no packages")
        return value

    @field_validator("major_updates")
    @classmethod
    def _major_needs_a_person(cls, value: str) -> str:
        if value == "auto":
            raise ValueError("a major upgrade always needs a person: use approve, notify or disabled")
        return value
