"""Log Analysis's settings (`agents.log_analyzer`): the sources it reads, the thresholds of its bottleneck
findings, how a template's spike is judged, and the security jails."""

import os
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from zenctl.core.confbase import Duration, Model, Percent
from zenctl.agents.log_analyzer.jails import JailConfig, complete as complete_jails
from zenctl.core.config import AgentConfig, unique

FORMAT_NAMES = ("auto", "syslog", "rfc5424", "nginx", "apache", "json", "python", "postgres", "regex")


class LogSource(Model):
    """A log to read incrementally: every file the glob matches, with its rotated generations."""

    name: str = Field(description="Name of the source: in finding ids (logs:NAME:...) and --source.",
                      examples=["nginx"])
    path: str = Field(description="Absolute path or shell glob of the live log file(s); rotated generations "
                                  "beside them (.1, .2.gz, -20250101) are found by themselves.",
                      examples=["/var/log/nginx/*access.log"])
    format: Literal["auto", "syslog", "rfc5424", "nginx", "apache", "json", "python", "postgres", "regex"] = Field(
        "auto", description="auto (detected from the first lines), syslog (RFC 3164), rfc5424, nginx/apache "
                            "(combined, optional request time last), json (one object a line), python (logging, "
                            "tracebacks), postgres (with duration: lines), regex (pattern with named groups).")
    pattern: str | None = Field(None, description="For format regex: a Python regular expression with named "
                                                  "groups; the group `message` is the text mined (also time, "
                                                  "level, host, program).",
                                examples=[r"^(?P<time>\S+) (?P<level>\w+) (?P<message>.*)$"])
    timezone: str | None = Field(None, description="IANA zone of times written without one (default: the "
                                                   "host's).", examples=["Europe/Berlin"])
    max_lines_per_run: int = Field(500_000, ge=1, description="Lines read from this source per run at most; the "
                                                             "rest waits for the next run (said in a finding).")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-' (it names finding ids)")
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path or glob")
        return os.path.normpath(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC or Europe/Berlin)") from None
        return value

    @model_validator(mode="after")
    def _pattern(self) -> "LogSource":
        if self.format == "regex":
            if not self.pattern:
                raise ValueError("format regex needs a pattern with a named group 'message'")
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
            if "message" not in compiled.groupindex:
                raise ValueError("pattern needs a named group 'message' (?P<message>...)")
        elif self.pattern is not None:
            raise ValueError("pattern is only for format regex")
        return self


class RouteThresholds(Model):
    """When a route of an access log is slow or failing (per run, from the lines read)."""

    p95_warning: Duration = Field(1.0, description="95th-percentile request time that is a warning (seconds).")
    p95_critical: Duration = Field(3.0, description="95th-percentile request time that is critical (seconds).")
    min_requests: int = Field(20, ge=1, description="Requests a route needs in a run before it is judged.")
    error_rate_warning: Percent = Field(5, description="Share of 5xx answers (%) of a source that is a warning.")
    error_rate_critical: Percent = Field(20, description="Share of 5xx answers (%) of a source that is critical.")
    top: int = Field(10, ge=1, le=1000, description="Slowest routes listed in the evidence and the report.")

    @model_validator(mode="after")
    def _order(self) -> "RouteThresholds":
        if self.p95_warning > self.p95_critical:
            raise ValueError("p95_warning must not exceed p95_critical")
        if self.error_rate_warning > self.error_rate_critical:
            raise ValueError("error_rate_warning must not exceed error_rate_critical")
        return self


class SqlThresholds(Model):
    """When a normalized SQL statement of a PostgreSQL log is slow (per run, from its `duration:` lines)."""

    mean_warning: Duration = Field(0.5, description="Mean time of a statement that is a warning (seconds).")
    mean_critical: Duration = Field(2.0, description="Mean time of a statement that is critical (seconds).")
    total_warning: Duration = Field(60, description="Total time of one statement in a run that is a warning "
                                                    "(seconds), however fast each call.")
    min_calls: int = Field(1, ge=1, description="Calls a statement needs in a run before it is judged.")
    top: int = Field(10, ge=1, le=1000, description="Statements listed in the evidence and the report.")

    @model_validator(mode="after")
    def _order(self) -> "SqlThresholds":
        if self.mean_warning > self.mean_critical:
            raise ValueError("mean_warning must not exceed mean_critical")
        return self


class SpikeSettings(Model):
    """When a template's rate this run is a spike against its own baseline (an exponentially weighted mean and
    variance of its rate per hour over earlier runs)."""

    factor: float = Field(3.0, ge=1, description="The rate must exceed the baseline mean times this.")
    sigma: float = Field(3.0, ge=0, description="... and the mean plus this many standard deviations.")
    min_count: int = Field(10, ge=1, description="... and the template must occur this often in the run.")
    min_runs: int = Field(5, ge=1, description="Runs of baseline a source needs before spikes are judged.")
    alpha: float = Field(0.1, gt=0, le=1, description="Weight of each run in the baseline (EWMA smoothing).")
    min_level: Literal["debug", "info", "notice", "warning", "error", "critical"] = Field(
        "warning", description="Templates below this level are not judged for spikes.")


def _default_sources() -> list[LogSource]:
    return [
        LogSource(name="auth", path="/var/log/auth.log", format="syslog"),
        LogSource(name="syslog", path="/var/log/syslog", format="syslog"),
        LogSource(name="nginx", path="/var/log/nginx/access.log", format="nginx"),
        LogSource(name="nginx-error", path="/var/log/nginx/error.log", format="nginx"),
        LogSource(name="apache", path="/var/log/apache2/access.log", format="apache"),
        LogSource(name="postgresql", path="/var/log/postgresql/postgresql-*.log", format="postgres"),
    ]


class LogAnalyzerConfig(AgentConfig):
    """Error patterns, performance bottlenecks and security incidents in logs, read incrementally."""

    interval: int | None = Field(300, ge=1, description="Seconds between runs when scheduled by interval.")
    sources: list[LogSource] = Field(
        default_factory=_default_sources,
        description="Logs to read. The defaults read auth.log, syslog, nginx, apache and PostgreSQL logs where "
                    "they exist (a glob that matches nothing is fine).")
    max_line_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024,
                                description="Longer lines are cut to this many bytes (and counted).")
    new_templates: bool = Field(True, description="Report templates first seen at error level or above (not on "
                                                  "a source's first run, which learns).")
    top_errors: int = Field(10, ge=0, le=1000, description="Error templates listed per source and in the report.")
    routes: RouteThresholds = Field(default_factory=RouteThresholds, description="Slow and failing routes.")
    slow_sql: SqlThresholds = Field(default_factory=SqlThresholds, description="Slow PostgreSQL statements.")
    spike: SpikeSettings = Field(default_factory=SpikeSettings, description="Template rate spikes.")
    report_keep: Duration = Field(8 * 86400, description="How long each run's digest is kept for `logs report`.")
    jails: dict[str, JailConfig] = Field(
        default_factory=dict,
        description="Security jails as fail2ban's: sshd, sudo, apache-auth, nginx-http-auth, web-4xx, web-scan, "
                    "web-attack (all on, with their defaults). A jail named here keeps its own defaults under what "
                    "it sets; keys: enabled, mode, findtime, maxretry, bantime, ban, bantime_increment, "
                    "bantime_factor, bantime_maxtime, ignoreip, subnet_min.",
        examples=[{"sshd": {"mode": "aggressive", "maxretry": 3, "bantime": "1h", "ignoreip": ["192.0.2.0/24"]},
                   "web-4xx": {"enabled": False}}])

    @field_validator("jails", mode="before")
    @classmethod
    def _complete_jails(cls, value):
        return complete_jails(value)

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, value: list[LogSource]) -> list[LogSource]:
        unique([s.name for s in value], "source name {!r} is used twice")
        return value
