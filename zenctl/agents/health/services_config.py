"""Config of the System Health agent's service checks (`agents.system_health.services`), one model per `type`.

An entry without `type` is a `command` check, as before types existed. Keys of another type are errors, so a
typo (`url` on a tcp check) is caught at load time, not at 3 a.m.
"""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator

from zenctl.core.confbase import Duration, Model, Percent

SERVICE_TYPES = ("command", "process", "tcp", "http", "tls", "postgres", "redis")


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str | None, AfterValidator(_regex)]


class ServiceBase(Model):
    """Keys every service check has."""

    type: str = Field(description="What kind of check: " + ", ".join(SERVICE_TYPES) + ".")
    name: str = Field(description="Short name; the problem is called service:NAME.", examples=["web"],
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    timeout: Duration = Field(5, gt=0, description="Seconds before the check gives up and reports CRITICAL.")
    severity: Literal["warning", "critical"] = Field(
        "critical", description="Status reported when the service is down (warning: it matters less).")
    restart: str | None = Field(None, description="Command that restarts the service (run by /bin/sh).",
                                examples=["systemctl restart web"])
    restart_timeout: Duration = Field(60, gt=0, description="Seconds before the restart command is killed.")
    restart_wait: Duration = Field(10, description="Seconds a restarted service has to pass its check again.")


class CommandService(ServiceBase):
    """Any Nagios plugin: exit 0/1/2/3 = OK/WARNING/CRITICAL/UNKNOWN, first output line = message."""

    type: Literal["command"] = Field("command", description="command: a Nagios-style check command.")
    command: str = Field(description="Check command (run by /bin/sh); its first output line is the message.",
                         examples=["/usr/lib/nagios/plugins/check_http -H 127.0.0.1"])


class ProcessService(ServiceBase):
    """Running processes matched by a regex over name and command line, or by a pid file."""

    type: Literal["process"]
    pattern: Regex = Field(
        None, description="Regex searched in each process's name and command line.", examples=["nginx: master"])
    pidfile: str | None = Field(None, description="Pid file of the process (instead of pattern), such as "
                                                  "/run/nginx.pid.")
    min: int = Field(1, ge=0, description="Fewest matching processes that is healthy.")
    max: int | None = Field(None, ge=0, description="Most matching processes that is healthy; unset: no limit.")
    rss_limit_mb: float | None = Field(None, gt=0, description="Restart (service.memory_leak) when the matching "
                                                               "processes use more memory than this (MB).")
    leak_mb_per_hour: float | None = Field(
        None, gt=0, description="Restart (service.memory_leak) when memory grows steadily faster than this "
                                "(MB per hour, least-squares slope over leak_window).")
    leak_window: Duration = Field(3600, gt=0, description="Seconds of stored samples the growth is judged over.")

    @model_validator(mode="after")
    def _one_selector(self) -> "ProcessService":
        if (self.pattern is None) == (self.pidfile is None):
            raise ValueError("a process check needs pattern or pidfile (one of them)")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class TcpService(ServiceBase):
    """A TCP port that accepts connections."""

    type: Literal["tcp"]
    host: str = Field(description="Host name or address.", examples=["127.0.0.1"])
    port: int = Field(ge=1, le=65535, description="TCP port.", examples=[5432])


class HttpService(ServiceBase):
    """An HTTP(S) URL: status, optional body regex, latency thresholds; https verifies the certificate."""

    type: Literal["http"]
    url: str = Field(description="http:// or https:// URL (redirects are not followed).",
                     examples=["https://127.0.0.1/healthz"])
    status: list[int] = Field(default_factory=lambda: [200], description="Expected status codes.")
    body: Regex = Field(None, description="Regex the response body must contain.", examples=["\"ok\""])
    latency_warning_ms: float | None = Field(None, gt=0, description="Response time that is a warning (ms).")
    latency_critical_ms: float | None = Field(None, gt=0, description="Response time that is critical (ms).")
    verify: bool = Field(True, description="Verify the https certificate and host name.")
    ca_file: str | None = Field(None, description="CA bundle (PEM) to verify against instead of the system's.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def _latency_order(self) -> "HttpService":
        if self.latency_warning_ms and self.latency_critical_ms and self.latency_warning_ms > \
                self.latency_critical_ms:
            raise ValueError("latency_warning_ms is above latency_critical_ms")
        return self


class TlsService(ServiceBase):
    """Certificate expiry of a TLS endpoint or a PEM file; optionally renewed (tls.renew)."""

    type: Literal["tls"]
    host: str | None = Field(None, description="Host to connect to (instead of file).", examples=["127.0.0.1"])
    port: int = Field(443, ge=1, le=65535, description="TLS port.")
    server_name: str | None = Field(None, description="SNI name to ask for; default: host.")
    file: str | None = Field(None, description="PEM certificate file (instead of host), such as "
                                               "/etc/letsencrypt/live/example.com/cert.pem.")
    warning_days: float = Field(21, ge=0, description="Days before expiry that are a warning.")
    critical_days: float = Field(7, ge=0, description="Days before expiry that are critical.")
    renew: str | None = Field(None, description="Command that renews the certificate (tls.renew).",
                              examples=["certbot renew --cert-name example.com"])
    renew_days: float = Field(30, ge=0, description="Run renew when this few days are left.")
    renew_timeout: Duration = Field(300, gt=0, description="Seconds before the renew command is killed.")

    @model_validator(mode="after")
    def _one_source(self) -> "TlsService":
        if (self.host is None) == (self.file is None):
            raise ValueError("a tls check needs host or file (one of them)")
        if self.critical_days > self.warning_days:
            raise ValueError("critical_days is above warning_days")
        return self


class PostgresService(ServiceBase):
    """PostgreSQL: connect and SELECT 1, connections in use, oldest session idle in transaction."""

    type: Literal["postgres"]
    dsn: str = Field(description="libpq connection string or URL.", examples=["postgresql://monitor@127.0.0.1/app"])
    connections_warning: Percent = Field(80, description="Connections in use (% of max_connections): warning.")
    connections_critical: Percent = Field(90, description="Connections in use (% of max_connections): critical.")
    idle_in_transaction_warning: Duration = Field(
        300, description="A session idle in transaction longer than this is a warning.")
    reset_idle_after: Duration | None = Field(
        None, description="Terminate sessions idle in transaction longer than this (db.reset_connections); "
                          "unset: never.", examples=["10m"])
    reset_database: str | None = Field(None, description="Database whose sessions may be terminated; default: "
                                                         "the DSN's database.")
    reset_roles: list[str] = Field(default_factory=list, description="Roles whose sessions may be terminated "
                                                                     "(required with reset_idle_after).",
                                   examples=[["app"]])

    @model_validator(mode="after")
    def _reset_needs_roles(self) -> "PostgresService":
        if self.reset_idle_after is not None and not self.reset_roles:
            raise ValueError("reset_idle_after needs reset_roles: the roles whose sessions may be terminated")
        if self.connections_warning > self.connections_critical:
            raise ValueError("connections_warning is above connections_critical")
        return self


class RedisService(ServiceBase):
    """Redis: PING, and used memory against maxmemory."""

    type: Literal["redis"]
    url: str = Field(description="redis:// or rediss:// URL.", examples=["redis://127.0.0.1:6379/0"])
    memory_warning: Percent = Field(80, description="Used memory (% of maxmemory) that is a warning.")
    memory_critical: Percent = Field(90, description="Used memory (% of maxmemory) that is critical.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


def _type_of(value: Any) -> str:
    """The tag of an entry: its `type`, `command` when absent (entries written before types existed)."""
    if isinstance(value, dict):
        return value.get("type", "command")
    return getattr(value, "type", "command")


MODELS = {"command": CommandService, "process": ProcessService, "tcp": TcpService, "http": HttpService,
          "tls": TlsService, "postgres": PostgresService, "redis": RedisService}

ServiceConfig = Annotated[
    Annotated[CommandService, Tag("command")] | Annotated[ProcessService, Tag("process")]
    | Annotated[TcpService, Tag("tcp")] | Annotated[HttpService, Tag("http")] | Annotated[TlsService, Tag("tls")]
    | Annotated[PostgresService, Tag("postgres")] | Annotated[RedisService, Tag("redis")],
    Discriminator(_type_of, custom_error_type="service_type",
                  custom_error_message=f"type must be one of {', '.join(SERVICE_TYPES)}"),
]
