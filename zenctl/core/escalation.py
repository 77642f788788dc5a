"""The escalation ladder, per problem (an agent's check, e.g. `system_health:service:web`), kept across cron runs:

  level 1  repair at once;
  level 2  retry up to `max_retries` times, waiting backoff_base * backoff_factor^(n-1) before retry n;
  level 3  alert people (also at once for a finding whose status is in `alert_statuses` with no automatic repair,
           for a repair blocked by an open circuit, and for security-related findings);
  level 4  safe mode for the whole host (default: more than 3 automatic repairs failed within an hour).

Next to the ladder: the host-wide rate limit on automatic repairs and a circuit breaker per action kind and
target. The gates are read inside the transaction that records the action, so concurrent runs see each other.

A stored time in the future (written while the clock was ahead, then set back) never holds a repair: a backoff
that started in the future, a circuit opened in the future and actions dated in the future are ignored by the
gates, and the ladder's own times (cleared, alerted) are taken as now.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenctl.core import alerts, audit, control
from zenctl.core.agent import Finding
from zenctl.core.audit import Entry
from zenctl.core.state import State
from zenctl.core.timeutil import CLOCK_SLACK, ago, from_future, iso

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.core.configmodels import Config

PROBLEM_COLUMNS = ("agent", "check_name", "state", "status", "level", "attempts", "next_attempt", "first_seen",
                   "last_seen", "cleared_at", "message", "alerted", "alerted_at")
APPLY_STATUSES = ("applying", "applied", "failed")


@dataclass
class Hold:
    """A gate that keeps an automatic action from running now: which gate and why."""

    gate: str
    why: str


def problem_key(agent: str, check: str) -> str:
    return f"{agent}:{check}"


def problem(state: State, agent: str, check: str) -> dict | None:
    found = state.conn.execute(f"SELECT {', '.join(PROBLEM_COLUMNS)} FROM problems WHERE agent = ? AND "
                               "check_name = ?", (agent, check)).fetchone()
    return dict(zip(PROBLEM_COLUMNS, found)) if found else None


def auto_gate(state: State, config: Config, agent: str, kind: str, target: str, check: str,
              now: float) -> Hold | None:
    """Backoff and retries of the problem, the circuit of kind+target, the host's hourly budget: the first that
    holds the action, or None when it may run."""
    ladder = config.escalation
    found = problem(state, agent, check) if check else None
    if found and found["state"] == "open" and found["attempts"]:
        attempts = found["attempts"]
        if attempts > ladder.max_retries:
            return Hold("exhausted", f"{attempts} repair attempts failed (1 + {ladder.max_retries} retries); "
                                     "left to people (alerted)")
        next_attempt = found["next_attempt"]
        wait = ladder.backoff_base * ladder.backoff_factor ** (attempts - 1)  # next_attempt = failure + wait
        if next_attempt and now < next_attempt and not from_future(next_attempt - wait, now):
            return Hold("backoff", f"retry {attempts} of {ladder.max_retries} waits for backoff until "
                                   f"{iso(found['next_attempt'])} (in {ago(found['next_attempt'] - now)})")
    circuit = state.conn.execute("SELECT state, failures, opened_at FROM circuits WHERE kind = ? AND target = ?",
                                 (kind, target)).fetchone()
    if circuit and circuit[0] == "open" and now < circuit[2] + config.policy.circuit_cooldown \
            and not from_future(circuit[2], now):  # opened in the future: let the half-open trial run
        return Hold("circuit", f"circuit for {kind} {target} is open after {circuit[1]} consecutive failures; "
                               f"half-opens at {iso(circuit[2] + config.policy.circuit_cooldown)}")
    limit = config.policy.max_auto_repairs_per_hour
    used = state.conn.execute(
        "SELECT COUNT(*) FROM actions WHERE mode = 'auto' AND status IN ('applying', 'applied', 'failed') "
        "AND created >= ? AND created <= ?", _last_hour(now)).fetchone()[0]
    if used >= limit:
        return Hold("rate_limit", f"rate limited: {used} automatic repairs in the last hour, "
                                  f"max_auto_repairs_per_hour is {limit}")
    return None


def _last_hour(now: float) -> tuple[str, str]:
    """Bounds of `created` for "within the last hour": actions dated in the future (a clock that was ahead) are not
    counted, or they would hold every repair until that date."""
    return iso(now - 3600), iso(now + CLOCK_SLACK)


def circuit_result(state: State, config: Config, kind: str, target: str, ok: bool, agent: str, run_id: str,
                   now: float) -> None:
    """Close on success; count a failure, opening at `circuit_failures` or at once when half-open (a trial)."""
    row = state.conn.execute("SELECT state, failures, opened_at FROM circuits WHERE kind = ? AND target = ?",
                             (kind, target)).fetchone()
    previous, failures = (row[0], row[1]) if row else ("closed", 0)
    if ok:
        if previous != "closed" or failures:
            state.conn.execute("DELETE FROM circuits WHERE kind = ? AND target = ?", (kind, target))
            if previous != "closed":
                audit.append(state, [Entry(agent, "circuit.close", f"circuit for {kind} {target} closed: the "
                                                                   "trial succeeded", run_id)])
        return
    failures += 1
    trial = previous == "open"  # past its cool-down, this attempt was the half-open trial
    opens = trial or failures >= config.policy.circuit_failures
    state.conn.execute(
        "INSERT INTO circuits (kind, target, state, failures, opened_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, target) DO UPDATE SET state = excluded.state, failures = excluded.failures, "
        "opened_at = excluded.opened_at", (kind, target, "open" if opens else "closed", failures,
                                           now if opens else None))
    if opens:
        audit.append(state, [Entry(agent, "circuit.open",
                                   f"circuit for {kind} {target} opened after {failures} consecutive failures"
                                   + (" (half-open trial failed)" if trial else "")
                                   + f"; next trial after {iso(now + config.policy.circuit_cooldown)}", run_id,
                                   {"kind": kind, "target": target, "failures": failures})])


def update(state: State, config: Config, agent: str, run_id: str, findings: list[Finding], actions: list,
           now: float) -> list[str]:
    """Move each problem along the ladder from this run's findings and action results; queue alerts; enter safe
    mode when its trigger is met. Returns notes for the run's output."""
    ladder = config.escalation
    notes: list[str] = []
    seen = set()
    with state.write() as conn:
        _clock_was_ahead(state, agent, run_id, now)
        for finding in findings:
            seen.add(finding.check)
            mine = [a for a in actions if a.check == finding.check]
            row = problem(state, agent, finding.check)
            key = problem_key(agent, finding.check)
            if finding.status == "ok":
                if row and row["state"] == "open":
                    conn.execute("UPDATE problems SET state = 'clearing', cleared_at = ?, attempts = 0, "
                                 "next_attempt = NULL, level = 0, status = 'ok', message = ?, last_seen = ? "
                                 "WHERE agent = ? AND check_name = ?",
                                 (now, finding.message, iso(now), agent, finding.check))
                    row.update(state="clearing", cleared_at=now)
                    audit.append(state, [Entry(agent, "problem.clear", f"{key} cleared: {finding.message}; "
                                                                       "attempts and backoff reset", run_id)])
                if row and row["state"] == "clearing" and now - row["cleared_at"] >= ladder.flap_hold:
                    _resolve(state, config, row, key, finding.message, run_id, now)
                continue
            failed = any(a.status == "failed" and a.mode == "auto" for a in mine)
            repairing = any(a.mode == "auto" and a.status in ("applied", "failed", "deferred", "previewed")
                            for a in mine)
            if row is None or row["state"] == "resolved":
                row = {"attempts": 0, "alerted": 0, "alerted_at": None, "first_seen": iso(now), "state": "open"}
                audit.append(state, [Entry(agent, "problem.open", f"{key} opened: {finding.status.upper()}: "
                                                                  f"{finding.message}", run_id)])
            elif row["state"] == "clearing":
                audit.append(state, [Entry(agent, "problem.flap", f"{key} came back within flap_hold "
                                                                  f"({ladder.flap_hold:g} s): alert continues, "
                                                                  "not re-sent", run_id)])
            attempts, next_attempt = row["attempts"], row.get("next_attempt")
            if failed:
                attempts += 1
                if attempts <= ladder.max_retries:
                    next_attempt = now + ladder.backoff_base * ladder.backoff_factor ** (attempts - 1)
                    notes.append(f"{key}: repair attempt {attempts} failed; retry {attempts} of "
                                 f"{ladder.max_retries} after {iso(next_attempt)}")
                    audit.append(state, [Entry(agent, "problem.retry", notes[-1], run_id,
                                               {"attempts": attempts, "next_attempt": iso(next_attempt)})])
                else:
                    next_attempt = None
            blocked = any(a.gate == "circuit" for a in mine)
            reason = None
            if attempts > ladder.max_retries:
                reason = f"{attempts} repair attempts failed"
            elif blocked:
                reason = "its repair is blocked by an open circuit breaker"
            elif finding.security:
                reason = "security-related"
            elif finding.status in ladder.alert_statuses and not repairing:
                reason = f"{finding.status.upper()} with no automatic repair"
            level = 3 if reason else (2 if attempts else 1)
            if reason and control.safe_mode(state) and any(a.mode == "auto" for a in mine):
                level = 4
            alerted, alerted_at = row["alerted"], row["alerted_at"]
            if reason and (not alerted or now - (alerted_at or 0) >= config.alerts.repeat_interval):
                severity = "critical" if finding.status == "ok" else finding.status
                alerts.queue(state, config, key, "trigger", severity,
                             f"{key}: {finding.status.upper()}: {finding.message} ({reason})",
                             {"status": finding.status, "value": finding.value, "threshold": finding.threshold,
                              "reason": reason, "attempts": attempts,
                              "actions": [f"{a.id} {a.kind} {a.status}" for a in mine]}, run_id, now)
                alerted, alerted_at = 1, now
            conn.execute(
                "INSERT INTO problems (agent, check_name, state, status, level, attempts, next_attempt, first_seen, "
                "last_seen, cleared_at, message, alerted, alerted_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, NULL, "
                "?, ?, ?) ON CONFLICT (agent, check_name) DO UPDATE SET state = 'open', status = excluded.status, "
                "level = excluded.level, attempts = excluded.attempts, next_attempt = excluded.next_attempt, "
                "first_seen = excluded.first_seen, last_seen = excluded.last_seen, cleared_at = NULL, "
                "message = excluded.message, alerted = excluded.alerted, alerted_at = excluded.alerted_at",
                (agent, finding.check, finding.status, level, attempts, next_attempt, row["first_seen"], iso(now),
                 finding.message, alerted, alerted_at))
        # A check this run no longer reports (removed from config, a one-off finding) clears like an OK one.
        for found in conn.execute(f"SELECT {', '.join(PROBLEM_COLUMNS)} FROM problems WHERE agent = ? AND "
                                  "state != 'resolved'", (agent,)).fetchall():
            row = dict(zip(PROBLEM_COLUMNS, found))
            if row["check_name"] in seen:
                continue
            if row["state"] == "open":
                conn.execute("UPDATE problems SET state = 'clearing', cleared_at = ?, attempts = 0, level = 0 "
                             "WHERE agent = ? AND check_name = ?", (now, agent, row["check_name"]))
                row.update(state="clearing", cleared_at=now)
            if now - row["cleared_at"] >= ladder.flap_hold:
                _resolve(state, config, row, problem_key(agent, row["check_name"]), "no longer reported", run_id,
                         now)
        notes += _safe_mode_trigger(state, config, agent, run_id, findings, now)
    return notes


def _clock_was_ahead(state: State, agent: str, run_id: str, now: float) -> None:
    """Times of the agent's problems stored in the future (a clock that was ahead) are taken as now, audited: a
    problem cleared "next year" would never resolve, an alert sent "next year" never be repeated."""
    changed = sum(state.conn.execute(f"UPDATE problems SET {column} = ? WHERE agent = ? AND {column} > ?",
                                     (now, agent, now + CLOCK_SLACK)).rowcount
                  for column in ("cleared_at", "alerted_at"))
    if changed:
        audit.append(state, [Entry(agent, "problem.clock", f"{changed} problem time(s) of {agent} lay in the future "
                                                           "(the clock was ahead, then set back); taken as now",
                                   run_id, {"now": iso(now)})])


def _resolve(state: State, config: Config, row: dict, key: str, message: str, run_id: str, now: float) -> None:
    state.conn.execute("UPDATE problems SET state = 'resolved', level = 0 WHERE agent = ? AND check_name = ?",
                       (row["agent"], row["check_name"]))
    audit.append(state, [Entry(row["agent"], "problem.resolve", f"{key} resolved: {message}", run_id)])
    if row["alerted"]:
        alerts.queue(state, config, key, "resolve", "ok", f"{key}: resolved: {message}", {"message": message},
                     run_id, now)


def _safe_mode_trigger(state: State, config: Config, agent: str, run_id: str, findings: list[Finding],
                       now: float) -> list[str]:
    trigger = config.escalation.safe_mode
    reason = None
    if trigger.failed_repairs_per_hour is not None:
        failed = state.conn.execute("SELECT COUNT(*) FROM actions WHERE mode = 'auto' AND status = 'failed' AND "
                                    "created >= ? AND created <= ?", _last_hour(now)).fetchone()[0]
        if failed > trigger.failed_repairs_per_hour:
            reason = (f"{failed} automatic repairs failed within an hour "
                      f"(more than {trigger.failed_repairs_per_hour})")
    if reason is None and trigger.on_security_event:
        security = next((f for f in findings if f.security and f.status != "ok"), None)
        if security:
            reason = f"security-related finding {security.check}"
    if reason is None or not control.enter_safe_mode(state, reason, agent, run_id):
        return []
    alerts.queue(state, config, "zenctl:safe_mode", "trigger", "critical",
                 f"zenctl safe mode on this host: {reason}; agents observe but apply nothing until 'zenctl resume'",
                 {"reason": reason}, run_id, now)
    return [f"safe mode entered: {reason}"]


def open_problems(state: State) -> list[dict]:
    rows = state.conn.execute(f"SELECT {', '.join(PROBLEM_COLUMNS)} FROM problems WHERE state != 'resolved' "
                              "ORDER BY level DESC, first_seen").fetchall()
    return [dict(zip(PROBLEM_COLUMNS, r)) for r in rows]


def open_circuits(state: State, config: Config) -> list[dict]:
    rows = state.conn.execute("SELECT kind, target, failures, opened_at FROM circuits WHERE state = 'open'"
                              ).fetchall()
    now = time.time()
    circuits = []
    for kind, target, failures, opened in rows:
        half_opens = now if from_future(opened, now) else opened + config.policy.circuit_cooldown
        circuits.append({"kind": kind, "target": target, "failures": failures, "opened": iso(opened),
                         "state": "half-open" if now >= half_opens else "open", "half_opens": iso(half_opens)})
    return circuits
