"""Service probes: one function per check `type`, each reading one service and saying how it stands.

A probe gets its service config and a monotonic deadline, and returns an `Outcome`; it never changes anything.
`probe` runs the right one, retries temporary DNS failures with a short backoff until the deadline (a resolver
hiccup at 3 a.m. is not an outage), and turns any exception into a CRITICAL outcome naming the cause.
"""

import socket
import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

_MODULES = {"command": "command", "process": "process", "tcp": "network", "http": "network", "tls": "network",
            "postgres": "databases", "redis": "databases"}
DNS_BACKOFF = (0.1, 0.25, 0.5, 1.0)  # waits between attempts when the resolver says "try again"


@dataclass
class Metric:
    """One number of a check, for Nagios perfdata and Prometheus: label, value, unit, thresholds."""

    label: str
    value: float | None  # None: a plugin said `U` (could not determine it)
    unit: str = ""
    warning: float | None = None
    critical: float | None = None


@dataclass
class Outcome:
    """How one service stands. `down` means it is not serving at all (a restart applies); a slow or nearly
    full service is not down."""

    status: str
    message: str
    down: bool = False
    metrics: list[Metric] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def remaining(deadline: float) -> float:
    """Seconds left before `deadline` (monotonic), never below a small positive floor for socket timeouts."""
    return max(0.05, deadline - time.monotonic())


def is_temporary_dns(exc: BaseException) -> bool:
    """True for a resolver's 'try again' (EAI_AGAIN), however a client library wrapped it."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN:
            return True
        if "Temporary failure in name resolution" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def with_dns_retry(attempt, deadline: float, sleep=time.sleep):
    """Call `attempt()`; while it fails with a temporary DNS error and time is left, wait and call it again.
    The attempt count is added to what the probe returns."""
    tries = 0
    while True:
        tries += 1
        try:
            outcome = attempt()
        except Exception as exc:
            wait = DNS_BACKOFF[min(tries - 1, len(DNS_BACKOFF) - 1)]
            if is_temporary_dns(exc) and time.monotonic() + wait < deadline:
                sleep(wait)
                continue
            if is_temporary_dns(exc):
                raise DnsFailure(f"name resolution failed {tries} times (temporary failure): {exc}") from exc
            raise
        if tries > 1:
            outcome.evidence["dns_attempts"] = tries
        return outcome


class DnsFailure(Exception):
    """Temporary DNS failures until the deadline: reported as CRITICAL with the attempt count."""


def probe(service, deadline: float) -> Outcome:
    """The outcome of one service's check; exceptions become CRITICAL (down) with their cause."""
    module = import_module(f"zenctl.agents.health.probes.{_MODULES[service.type]}")
    check = getattr(module, f"probe_{service.type}")
    try:
        return with_dns_retry(lambda: check(service, deadline), deadline)
    except Exception as exc:
        from zenctl.core.audit import scrub

        message = describe(exc)
        if isinstance(exc, socket.gaierror):
            message = f"cannot resolve {_host_of(service)}: {message}"
        return Outcome("critical", scrub(message), down=True, evidence={"error": type(exc).__name__})


def _host_of(service) -> str:
    from urllib.parse import urlsplit

    return getattr(service, "host", None) or urlsplit(getattr(service, "url", "") or "").hostname or "the host"


def describe(exc: BaseException) -> str:
    """One line for an exception: the OS error text where there is one."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

