"""Probe plumbing without a network: temporary DNS failures retried until the deadline, leak slopes, service
config errors with file:line."""

import socket
import time

import pytest

from zenctl.agents.health.probes import DnsFailure, Outcome, is_temporary_dns, with_dns_retry
from zenctl.agents.health.probes.process import slope_mb_per_hour
from zenctl.core.config import load_config
from zenctl.errors import ConfigError


def flaky(failures: int, errno: int = socket.EAI_AGAIN):
    calls = {"n": 0}

    def attempt():
        calls["n"] += 1
        if calls["n"] <= failures:
            raise socket.gaierror(errno, "Temporary failure in name resolution" if errno == socket.EAI_AGAIN
                                  else "Name or service not known")
        return Outcome("ok", "up")

    return attempt, calls


def test_temporary_dns_failures_are_retried_with_backoff():
    attempt, calls = flaky(2)
    waits = []
    outcome = with_dns_retry(attempt, time.monotonic() + 5, sleep=waits.append)
    assert outcome.status == "ok" and outcome.evidence["dns_attempts"] == 3
    assert waits == [0.1, 0.25]


def test_dns_retries_stop_at_the_deadline():
    attempt, calls = flaky(100)
    with pytest.raises(DnsFailure, match="name resolution failed 1 times"):
        with_dns_retry(attempt, time.monotonic() + 0.05, sleep=lambda s: None)


def test_a_permanent_dns_failure_is_not_retried():
    attempt, calls = flaky(1, socket.EAI_NONAME)
    with pytest.raises(socket.gaierror):
        with_dns_retry(attempt, time.monotonic() + 5, sleep=lambda s: None)
    assert calls["n"] == 1


def test_wrapped_temporary_dns_errors_are_recognised():
    try:
        try:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        except socket.gaierror as inner:
            raise ConnectionError("Error connecting to redis") from inner
    except ConnectionError as outer:
        assert is_temporary_dns(outer)
    assert not is_temporary_dns(ConnectionRefusedError(111, "Connection refused"))


def test_slope_is_mb_per_hour_and_r2_says_how_steady():
    steady = [(t * 60.0, 100e6 + t * 1e6) for t in range(10)]  # 1 MB a minute
    slope, r2 = slope_mb_per_hour(steady)
    assert slope == pytest.approx(60.0) and r2 == pytest.approx(1.0)
    sawtooth = [(t * 60.0, 100e6 + (t % 2) * 50e6) for t in range(10)]
    assert slope_mb_per_hour(sawtooth)[1] < 0.1


@pytest.mark.parametrize(("entry", "expected"), [
    ("{name: a, type: tcp, host: x}", ":5: agents.system_health.services.0.port: Field required"),
    ("{name: a, type: tcp, host: x, port: 1, url: y}", ":5: agents.system_health.services.0.url: unknown key"),
    ("{name: a, type: carrier-pigeon}",
     ":5: agents.system_health.services.0.type: type must be one of command, process, tcp, http, tls, postgres, "
     "redis (got 'carrier-pigeon')"),
    ("{name: a, type: process}", ":5: agents.system_health.services.0: a process check needs pattern or pidfile"),
    ("{name: a, type: process, pattern: '(['}", "services.0.pattern: is not a valid regular expression"),
    ("{name: a, type: http, url: 'ftp://x'}", "services.0.url: must be an http:// or https:// URL with a host"),
    ("{name: a, type: postgres, dsn: x, reset_idle_after: 5m}", "reset_idle_after needs reset_roles"),
    ("{name: a, type: tls, host: x, file: y}", "a tls check needs host or file (one of them)"),
    ("{name: a, command: 'true', severity: fatal}", "services.0.severity: Input should be 'warning' or 'critical'"),
])
def test_service_config_errors_name_the_line_and_key(tmp_path, entry, expected):
    path = tmp_path / "zenctl.yaml"
    path.write_text(f"agents:\n  system_health:\n    services:\n      # the one entry\n      - {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    assert expected in str(caught.value)


def test_entries_without_type_are_command_checks(tmp_path):
    path = tmp_path / "zenctl.yaml"
    path.write_text("agents:\n  system_health:\n    services:\n      - {name: a, command: 'true'}\n")
    (service,) = load_config(str(path), {}).config.agents.system_health.services
    assert service.type == "command" and service.command == "true"
