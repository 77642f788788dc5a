"""The ladder, circuit breakers and rate limit as decisions over a real state file, with time passed in."""

from types import SimpleNamespace

import pytest

from zenctl.core import escalation
from zenctl.core.agent import Finding
from zenctl.core.config import Config
from zenctl.core.state import open_state


@pytest.fixture
def state(tmp_path):
    return open_state(tmp_path / "z.db")


def _action(status, gate="", mode="auto"):
    return SimpleNamespace(check="service:web", status=status, mode=mode, gate=gate, id="a1", kind="service.restart")


def _config(**escalation_overrides):
    return Config.model_validate({"alerts": {"stderr": False},
                                  "escalation": {"backoff_base": 60, "flap_hold": 0, **escalation_overrides}})


def test_backoff_grows_exponentially_then_exhausts(state):
    config, now = _config(), 1_000_000.0
    down = Finding("service:web", "critical", "web down")
    waits = []
    for attempt in range(1, 5):
        escalation.update(state, config, "system_health", "r", [down], [_action("failed")], now)
        row = escalation.problem(state, "system_health", "service:web")
        assert row["attempts"] == attempt
        if row["next_attempt"]:
            waits.append(row["next_attempt"] - now)
            hold = escalation.auto_gate(state, config, "system_health", "service.restart", "web", "service:web",
                                        now + 1)
            assert hold.gate == "backoff"
    assert waits == [60, 120, 240]
    hold = escalation.auto_gate(state, config, "system_health", "service.restart", "web", "service:web", now + 1e6)
    assert hold.gate == "exhausted"
    assert escalation.problem(state, "system_health", "service:web")["level"] == 3


def test_a_clear_resets_attempts(state):
    config, now = _config(), 1_000_000.0
    escalation.update(state, config, "system_health", "r", [Finding("service:web", "critical", "down")],
                      [_action("failed")], now)
    escalation.update(state, config, "system_health", "r", [Finding("service:web", "ok", "up")], [], now + 5)
    row = escalation.problem(state, "system_health", "service:web")
    assert (row["state"], row["attempts"], row["next_attempt"]) == ("resolved", 0, None)


def test_critical_without_repair_alerts_warning_does_not(state):
    config, now = _config(), 1_000_000.0
    escalation.update(state, config, "system_health", "r", [Finding("disk:/", "critical", "full"),
                                                            Finding("disk:/srv", "warning", "filling")], [], now)
    assert escalation.problem(state, "system_health", "disk:/")["level"] == 3
    assert escalation.problem(state, "system_health", "disk:/srv")["level"] == 1
    assert escalation.problem(state, "system_health", "disk:/srv")["alerted"] == 0


def test_security_findings_always_alert(state):
    config = _config()
    escalation.update(state, config, "log_analyzer", "r",
                      [Finding("ssh:bruteforce", "warning", "42 failed logins", security=True)], [], 1_000_000.0)
    assert escalation.problem(state, "log_analyzer", "ssh:bruteforce")["alerted"] == 1


def test_circuit_opens_half_opens_and_closes(state):
    config, now = _config(), 1_000_000.0
    gate = lambda t: escalation.auto_gate(state, config, "a", "service.restart", "web", "", t)  # noqa: E731
    with state.write():
        for _ in range(3):
            escalation.circuit_result(state, config, "service.restart", "web", False, "a", "r", now)
    assert gate(now + 1).gate == "circuit"
    assert gate(now + config.policy.circuit_cooldown + 1) is None  # half-open: one trial may run
    with state.write():
        escalation.circuit_result(state, config, "service.restart", "web", False, "a", "r", now + 1801)
    assert gate(now + 1802).gate == "circuit", "a failed trial re-opens at once"
    with state.write():
        escalation.circuit_result(state, config, "service.restart", "web", True, "a", "r", now + 4000)
    assert gate(now + 4001) is None
    assert escalation.open_circuits(state, config) == []


def _auto_actions(state, created: float, count: int, status: str = "applied"):
    """`count` automatic actions recorded at `created` (epoch), as a run with that clock would."""
    from zenctl.core.timeutil import iso

    with state.write() as conn:
        for n in range(count):
            conn.execute("INSERT INTO actions (id, run_id, agent, kind, target, params, mode, status, reason, created)"
                         " VALUES (?, 'r', 'a', 'service.restart', 'web', '{}', 'auto', ?, '', ?)",
                         (f"x{created}-{n}", status, iso(created)))


def test_actions_dated_in_the_future_do_not_spend_the_hourly_budget(state):
    config, now = _config(), 1_000_000.0
    gate = lambda: escalation.auto_gate(state, config, "a", "service.restart", "web", "", now)  # noqa: E731
    _auto_actions(state, now + 365 * 86400, 5)
    assert gate() is None, "a clock that was a year ahead must not hold repairs for a year"
    _auto_actions(state, now + 30, 5)  # within the slack: counted
    assert gate().gate == "rate_limit"


def test_failures_dated_in_the_future_do_not_enter_safe_mode(state):
    from zenctl.core import control

    config, now = _config(), 1_000_000.0
    _auto_actions(state, now + 365 * 86400, 4, status="failed")
    escalation.update(state, config, "a", "r", [Finding("service:web", "critical", "down")], [], now)
    assert not control.safe_mode(state)


def test_a_circuit_opened_in_the_future_lets_the_trial_run(state):
    config, now = _config(), 1_000_000.0
    with state.write():
        for _ in range(3):
            escalation.circuit_result(state, config, "service.restart", "web", False, "a", "r", now + 365 * 86400)
    assert escalation.auto_gate(state, config, "a", "service.restart", "web", "", now) is None
    [circuit] = escalation.open_circuits(state, config)
    assert circuit["state"] == "half-open"
    with state.write():  # the trial fails: the circuit opens again, dated now
        escalation.circuit_result(state, config, "service.restart", "web", False, "a", "r", now)
    assert escalation.auto_gate(state, config, "a", "service.restart", "web", "", now + 1).gate == "circuit"


def test_a_backoff_that_started_in_the_future_does_not_hold(state):
    config, now = _config(), 1_000_000.0
    down = Finding("service:web", "critical", "web down")
    escalation.update(state, config, "system_health", "r", [down], [_action("failed")], now + 365 * 86400)
    gate = lambda t: escalation.auto_gate(state, config, "system_health", "service.restart", "web",  # noqa: E731
                                          "service:web", t)
    assert gate(now) is None
    escalation.update(state, config, "system_health", "r", [down], [_action("failed")], now)
    assert gate(now + 1).gate == "backoff", "a backoff started now still holds"


def test_a_problem_cleared_in_the_future_resolves_and_says_why(state):
    config, now = _config(flap_hold=300), 1_000_000.0
    escalation.update(state, config, "a", "r", [Finding("disk:/", "critical", "full")], [], now + 365 * 86400)
    escalation.update(state, config, "a", "r", [Finding("disk:/", "ok", "fine")], [], now + 365 * 86400)
    assert escalation.problem(state, "a", "disk:/")["state"] == "clearing"
    escalation.update(state, config, "a", "r", [Finding("disk:/", "ok", "fine")], [], now)
    escalation.update(state, config, "a", "r", [Finding("disk:/", "ok", "fine")], [], now + 301)
    assert escalation.problem(state, "a", "disk:/")["state"] == "resolved"
    events = [r[0] for r in state.conn.execute("SELECT message FROM audit WHERE event = 'problem.clock'")]
    assert events and "the clock was ahead" in events[0]
