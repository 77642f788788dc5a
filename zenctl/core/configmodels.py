"""The configuration's pydantic models: the single source of the schema, the example and the error messages.

Imported only when a config must be validated (or documented): a cron tick whose config did not change reads the
validated copy from the state instead (core.configcache) and never imports pydantic.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from zenctl.core.confbase import (  # noqa: F401  (re-exported)
    CronExpression,
    Duration,
    Mode,
    Model,
    Percent,
)

_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$")


_ACCOUNT = r"^[a-z_][a-z0-9_.-]*[$]?$"


def _run_as(value: str | None) -> str | None:
    """`USER` or `USER:GROUP`, each a name that could be an account (checked against the system at run time)."""
    if value is None:
        return None
    parts = value.split(":")
    if len(parts) > 2 or not all(re.match(_ACCOUNT, part) for part in parts):
        raise ValueError('must be an account name, or USER:GROUP, such as "zenctl-health"')
    return value


class AgentConfig(Model):
    """Settings every agent has."""

    enabled: bool = Field(True, description="Run this agent (env AGENT_<NAME>_ENABLED overrides).")
    interval: int | None = Field(None, ge=1, description="Seconds between runs when scheduled by interval.")
    schedule: CronExpression | None = Field(None, description='Cron expression for scheduled runs, e.g. "0 3 * * *".')
    grace: Duration = Field(
        900, description="How late a scheduled run may be before the agent is reported stale (with `schedule`; "
                         "with `interval` it is stale after twice the interval).")
    run_as: Annotated[str | None, AfterValidator(_run_as)] = Field(
        None, description="Service account (USER or USER:GROUP) the agent runs as when zenctl starts as root; "
                          "supplementary groups are cleared.", examples=["zenctl-health"])
    auto_mitigate: bool = Field(
        True, description="Apply actions whose policy mode is auto; false turns them into notifications."
    )

    @model_validator(mode="after")
    def _one_timing(self) -> "AgentConfig":
        """`interval` or `schedule`: setting one replaces the other's default; setting both is an error."""
        if {"interval", "schedule"} <= self.model_fields_set and self.interval and self.schedule:
            raise ValueError("set interval or schedule, not both")
        if "schedule" in self.model_fields_set and self.schedule and self.interval:
            object.__setattr__(self, "interval", None)
        elif "interval" in self.model_fields_set and self.interval and self.schedule:
            object.__setattr__(self, "schedule", None)
        return self


def unique(names: list[str], message: str) -> None:
    """ValueError naming the first name that occurs twice (for lists whose items need their own names)."""
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise ValueError(message.format(duplicate))


def _known_kind(key: str) -> str:
    from zenctl.core.actions import known_kinds

    if not _KIND_PATTERN.match(key):
        raise ValueError(f"{key!r} is not an action kind name such as fs.chmod or fs.*")
    from fnmatch import fnmatchcase

    from zenctl.core.registry import GUARDED

    known = known_kinds()
    family = key[:-1] if key.endswith(".*") else None
    guarded = any(fnmatchcase(key, g) or fnmatchcase(g, key) for g in GUARDED)  # kinds agents to come will have
    if not guarded and not any(k == key or (family and k.startswith(family)) for k in known):
        raise ValueError(f"unknown action kind {key!r} (known: {', '.join(sorted(known))})")
    return key


ActionKindName = Annotated[str, AfterValidator(_known_kind)]


class PolicyConfig(Model):
    """What agents may do on their own."""

    max_auto_repairs_per_hour: int = Field(
        5, ge=0, description="Automatic repairs allowed per hour on this host (env MAX_AUTO_REPAIRS_PER_HOUR)."
    )
    modes: dict[ActionKindName, Mode] = Field(
        default_factory=dict,
        description="Policy mode by action kind (fs.chmod) or family (fs.*): auto, approve, notify or disabled.",
        examples=[{"fs.chown": "approve"}],
    )
    approvers: list[str] = Field(
        default_factory=list,
        description="OS users who may approve or reject; empty: anyone who can write the state.",
        examples=[["alice", "bob"]])
    approval_expiry: Duration = Field(86400, gt=0, description="How long an approval request stays open.")
    circuit_failures: int = Field(3, ge=1, description="Consecutive failures of one action kind on one target "
                                                        "that open its circuit breaker.")
    circuit_cooldown: Duration = Field(1800, description="How long an open circuit waits before one trial (half-open).")

    @field_validator("modes")
    @classmethod
    def _major_upgrades_need_a_person(cls, value: dict[str, str]) -> dict[str, str]:
        for key, mode in value.items():
            if mode == "auto" and key in ("deps.upgrade_major", "deps.*"):
                raise ValueError(f"{key}: auto would apply major upgrades without a person; use approve, notify or "
                                 "disabled")
        return value


class SafeModeConfig(Model):
    """Level 4: when the whole host stops applying actions until `zenctl resume`."""

    failed_repairs_per_hour: int | None = Field(
        3, ge=0, description="Enter safe mode when more automatic repairs than this fail within an hour; "
                             "null: never for this reason.")
    on_security_event: bool = Field(False, description="Enter safe mode on any security-related finding.")


class EscalationConfig(Model):
    """The ladder per problem: repair at once, retry with backoff, alert, safe mode."""

    max_retries: int = Field(3, ge=0, description="Retries after the first failed repair before alerting.")
    backoff_base: Duration = Field(60, description="Wait before the first retry.")
    backoff_factor: float = Field(2.0, ge=1, description="Each further retry waits this many times longer.")
    flap_hold: Duration = Field(
        300, description="A problem must stay clear this long to resolve; if it returns sooner its alert continues.")
    alert_statuses: list[Literal["warning", "critical", "unknown"]] = Field(
        default_factory=lambda: ["critical"],
        description="Finding statuses that alert at once when no automatic repair fixed them.")
    safe_mode: SafeModeConfig = Field(default_factory=SafeModeConfig)


class EmailConfig(Model):
    """Alert email over SMTP."""

    to: list[str] = Field(default_factory=list, description="Alert recipients (env ALERT_EMAIL, comma-separated).",
                          examples=[["ops@example.com"]])
    sender: str = Field("zenctl@localhost", description="From address.")
    host: str = Field("localhost", description="SMTP server.")
    port: int = Field(25, ge=1, le=65535, description="SMTP port (465 with tls: ssl, 587 with tls: starttls).")
    tls: Literal["none", "starttls", "ssl"] = Field("none", description="Transport security.")
    username: str | None = Field(None, description="SMTP login, if the server wants one.")
    password_env: str = Field("ZENCTL_SMTP_PASSWORD", description="Environment variable holding the SMTP password.")
    timeout: Duration = Field(10, gt=0, description="Seconds to wait for the server.")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return value


class PagerDutyConfig(Model):
    """PagerDuty Events API v2: trigger and resolve with a stable dedup key per problem."""

    enabled: bool = Field(False, description="Send alerts to PagerDuty (env ALERT_PAGERDUTY_ENABLED).")
    routing_key: str | None = Field(None, description="Integration key; prefer routing_key_env.")
    routing_key_env: str = Field("PAGERDUTY_ROUTING_KEY", description="Environment variable holding the key.")
    url: str = Field("https://events.pagerduty.com/v2/enqueue", description="Events API v2 endpoint.")
    timeout: Duration = Field(10, gt=0, description="Seconds to wait for the API.")


class WebhookConfig(Model):
    """A generic JSON webhook: one POST per trigger or resolve."""

    url: str | None = Field(None, description="Where to POST alerts; unset: no webhook.",
                            examples=["https://chat.example.com/hooks/ops"])
    timeout: Duration = Field(10, gt=0, description="Seconds to wait for the receiver.")


class MaintenanceWindow(Model):
    """A recurring window during which matching alerts are held (recorded and shown, not sent)."""

    schedule: CronExpression = Field(description="When the window opens (cron).", examples=["0 2 * * 0"])
    duration: Duration = Field(gt=0, description="How long it stays open.", examples=["2h"])
    match: str = Field("*", description="Problems it covers (glob over agent:check).", examples=["system_health:*"])
    reason: str = Field("maintenance window", description="Shown with held alerts.")


class AlertsConfig(Model):
    """Where alerts go, and how often."""

    stderr: bool = Field(True, description="Print alerts on stderr (cron mails them).")
    repeat_interval: Duration = Field(14400, gt=0, description="Re-send a still-open problem's alert after this.")
    delivery_deadline: Duration = Field(
        30, gt=0, le=3600, description="Seconds a run may spend delivering alerts, all channels together (in "
                                       "parallel); what is not sent by then stays pending for the next run.")
    email: EmailConfig = Field(default_factory=EmailConfig)
    pagerduty: PagerDutyConfig = Field(default_factory=PagerDutyConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, description="Recurring maintenance windows.")


_MODELS: dict[str, type] = {}


def _models() -> dict[str, type]:
    """`Config` and `AgentsConfig`, built once from the agents the registry holds (each agent's config model is
    its own; core names none)."""
    if not _MODELS:
        from pydantic import create_model

        from zenctl.core import registry

        sections = {spec.name: registry.load(spec.config) for spec in registry.specs()}
        agents_model = create_model(
            "AgentsConfig", __base__=Model,
            __doc__="The four agents, each enabled by default and run by `zenctl <agent> ...` or cron.",
            **{name: (model, Field(default_factory=model)) for name, model in sections.items()})

        class Config(Model):
            """The whole zenctl configuration."""

            model_config = ConfigDict(extra="forbid", validate_assignment=True, title="zenctl configuration")

            agents: agents_model = Field(default_factory=agents_model)
            policy: PolicyConfig = Field(default_factory=PolicyConfig)
            escalation: EscalationConfig = Field(default_factory=EscalationConfig)
            alerts: AlertsConfig = Field(default_factory=AlertsConfig)

            def agent(self, name: str) -> AgentConfig:
                """The config section of agent `name`."""
                return getattr(self.agents, name)

        _MODELS.update(Config=Config, AgentsConfig=agents_model)
    return _MODELS


def __getattr__(name: str):
    if name in ("Config", "AgentsConfig"):
        return _models()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
