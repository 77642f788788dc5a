"""The runtime: runs one agent once, and does for every agent what no agent may skip.

Lock, check the stop flag, observe, plan, then for each proposed action: stop flag and safe mode, policy mode,
the approval queue (plan-hash pinned), the escalation gates (backoff, retries, circuit breaker, hourly rate
limit), then preview (dry-run) or snapshot, apply and verify. After the actions, the ladder moves each problem
along and alerts are queued and delivered. Every finding, decision and result goes to the audit log, the run's
cost to the runs table. It never raises for what an agent does (tests pass `raise_errors=True` to see the
traceback); SIGTERM from `zenctl stop --emergency` ends the run with everything recorded.
"""

import json
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from zenctl.core import alerts, approvals, audit, control, escalation, seals, snapshots
from zenctl.core.actions import ActionFailed, Proposal, get_kind
from zenctl.core.agent import EXIT_CODES, BaseAgent, Finding, RunContext, worst
from zenctl.core.audit import Entry, scrub
from zenctl.core.untrusted import storable
from zenctl.core.config import LoadedConfig
from zenctl.core.locks import RunLock
from zenctl.core.policy import mode_for
from zenctl.core.state import State
from zenctl.core.timeutil import iso

# What happens to an action under each mode that does not apply it.
_NOT_APPLIED = {
    "disabled": ("skipped", "not applied: disabled by policy"),
    "notify": ("notified", "not applied: notify only"),
}


class Terminated(BaseException):
    """SIGTERM (an emergency stop) arrived: unwind, recording what was in flight."""


@dataclass
class ActionResult:
    id: str
    kind: str
    target: str
    check: str
    mode: str
    # applied | failed | previewed | awaiting_approval | rejected | notified | skipped | held | deferred
    status: str
    reason: str
    preview: str
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    gate: str = ""  # what held or deferred it: stop, safe_mode, notify_only, backoff, exhausted, circuit, rate_limit
    approval_id: str = ""


@dataclass
class RunResult:
    run_id: str
    agent: str
    status: str  # ok | warning | critical | unknown
    dry_run: bool
    started: str
    ended: str = ""
    findings: list[Finding] = field(default_factory=list)
    actions: list[ActionResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # escalation steps taken in this run
    error: str | None = None  # why the run could not run (stopped, overlap, agent failure)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def new_id(nbytes: int = 6) -> str:
    return os.urandom(nbytes).hex()


def _raise_terminated(signum, frame) -> None:
    raise Terminated("terminated by SIGTERM (emergency stop)")


def run_agent(agent: BaseAgent, loaded: LoadedConfig, state: State, dry_run: bool = False,
              raise_errors: bool = False, only_if_due: Callable[[State], bool] | None = None) -> RunResult | None:
    """Run `agent` once under its run lock and record everything. With `only_if_due`, a run that finds the lock
    taken, or finds under the lock that the agent is no longer due, returns None and records nothing: that is
    how concurrent `zenctl run --due` run each due agent exactly once."""
    now = time.time()
    process = psutil.Process()
    result = RunResult(new_id(), agent.name, "ok", dry_run, iso(now))
    lock = RunLock(state.path, agent.name)
    if not lock.acquire():
        if only_if_due:
            return None
        result.status, result.ended = "unknown", result.started
        result.error = f"{agent.name} is already running (pid {lock.holder()}); this run was skipped"
        with state.write() as conn:
            _insert_run(state, result, process, "overlap", result.error)
            audit.append(state, [Entry(agent.name, "run.overlap", result.error, result.run_id)])
        return result
    main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        if only_if_due and not only_if_due(state):
            return None
        stop = control.stopped(state, agent.name)
        if stop:
            result.status, result.ended, result.error = "unknown", result.started, stop.describe()
            with state.write() as conn:
                _insert_run(state, result, process, "stopped", result.error)
                audit.append(state, [Entry(agent.name, "run.blocked", f"run not started: {result.error}",
                                           result.run_id)])
            return result
        with state.write() as conn:
            _insert_run(state, result, process, "running", None)
            mode = " (dry-run)" if dry_run else ""
            audit.append(state, [Entry(agent.name, "run.start", f"{agent.name} run started{mode}", result.run_id,
                                       {"pid": os.getpid(), "dry_run": dry_run,
                                        "config": str(loaded.path) if loaded.path else "embedded defaults"})])
        result.notes += state.notes  # e.g. the state's file system was full: its reserve was used
        ctx = RunContext(agent.name, result.run_id, loaded, state, dry_run, now, agent.section)
        try:
            result.findings = _recover_interrupted(ctx)
            assessment = agent.assess(ctx)
            result.findings += assessment.findings
            audit.append(state, [_finding_entry(ctx, f) for f in result.findings])
            notify_only = control.notify_only_runs(state, agent.name)
            for proposal in assessment.proposals:
                result.actions.append(_handle(ctx, proposal, notify_only))
            _mark_repaired(result)
            result.status = worst(f.status for f in result.findings)
            if not dry_run:
                if notify_only:
                    control.count_notify_only_run(state, agent.name)
                result.notes += escalation.update(state, loaded.config, agent.name, result.run_id, result.findings,
                                                  result.actions, time.time())
                approvals.expire_due(state)
                sent = alerts.deliver(state, loaded.config, result.run_id)
                if sent["failed"]:
                    result.notes.append(f"{sent['failed']} alert(s) not delivered; kept for the next run")
        except Terminated as exc:
            result.status, result.error = "unknown", f"{agent.name} run {exc}"
        except Exception as exc:
            if raise_errors:
                raise
            result.status, result.error = "unknown", scrub(f"{agent.name} failed: {type(exc).__name__}: {exc}")
        _finish(state, result, process)
        return result
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
        lock.release()


def _recover_interrupted(ctx: RunContext) -> list[Finding]:
    """Actions of this agent left `applying` by a run that died (we hold the agent's lock, so no run of it is
    alive): mark them interrupted, count them as failures for their circuit, and report each as a finding."""
    rows = ctx.state.conn.execute(
        "SELECT id, kind, target, run_id, created, mode FROM actions WHERE agent = ? AND status = 'applying'",
        (ctx.agent,)).fetchall()
    findings = []
    with ctx.state.write() as conn:
        conn.execute("UPDATE runs SET status = 'killed', ended = COALESCE(ended, ?), message = 'the run died "
                     "before it finished' WHERE agent = ? AND status = 'running' AND id != ?",
                     (iso(), ctx.agent, ctx.run_id))
        for action_id, kind, target, run_id, created, mode in rows:
            has_snapshot = conn.execute("SELECT 1 FROM snapshots WHERE action_id = ?", (action_id,)).fetchone()
            message = (f"action {action_id} ({kind} {target}) was interrupted: run {run_id} died while applying it "
                       f"(started {created}); its result is unknown, check {target}"
                       + (f"; 'zenctl rollback {action_id} --force' restores its snapshot" if has_snapshot else ""))
            conn.execute("UPDATE actions SET status = 'interrupted', message = ?, finished = ? WHERE id = ?",
                         (message, iso(), action_id))
            seals.reseal(conn, ctx.state.path, "actions", "id", action_id)
            if mode in ("auto", "approve"):
                escalation.circuit_result(ctx.state, ctx.loaded.config, kind, target, False, ctx.agent, ctx.run_id,
                                          ctx.now)
            audit.append(ctx.state, [Entry(ctx.agent, "action.interrupted", message, ctx.run_id,
                                           {"action_id": action_id, "run_id": run_id})])
            findings.append(Finding(f"action:{action_id}", "warning", message, "interrupted", None, "",
                                    {"action_id": action_id, "kind": kind, "target": target, "run_id": run_id}))
    return findings


def _insert_run(state: State, result: RunResult, process: psutil.Process, status: str,
                message: str | None) -> None:
    """Record a run, sealed: `stop --emergency` signals the pid only as the account that wrote the row."""
    state.conn.execute(
        "INSERT INTO runs (id, agent, pid, proc_start, started, ended, status, dry_run, message) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (result.run_id, result.agent, process.pid, process.create_time(), result.started,
         result.ended or None, status, int(result.dry_run), message),
    )
    seals.reseal(state.conn, state.path, "runs", "id", result.run_id)


def _finding_entry(ctx: RunContext, finding: Finding) -> Entry:
    data = {"check": finding.check, "status": finding.status, "value": finding.value,
            "threshold": finding.threshold, "unit": finding.unit, **finding.evidence}
    return Entry(ctx.agent, "finding", f"{finding.check}: {finding.status.upper()}: {finding.message}",
                 ctx.run_id, data)


def _hold(ctx: RunContext, notify_only: int) -> escalation.Hold | None:
    """The host-wide switches, read again before every action: stop flag, safe mode, notify-only runs."""
    stop = control.stopped(ctx.state, ctx.agent)
    if stop:
        return escalation.Hold("stop", f"held: {stop.describe()}")
    safe = control.safe_mode(ctx.state)
    if safe:
        return escalation.Hold("safe_mode", f"held: safe mode since {safe['since']} ({safe['reason']}); "
                                            "'zenctl resume' to leave it")
    if notify_only:
        return escalation.Hold("notify_only", f"held: notify-only run after resume ({notify_only} to go)")
    return None


def _handle(ctx: RunContext, proposal: Proposal, notify_only: int) -> ActionResult:
    """Gate one proposal (switches, policy, approvals, ladder, dry-run), apply and verify when allowed, and record
    each step."""
    config = ctx.loaded.config
    decision = mode_for(proposal.kind, config, ctx.config)
    kind = get_kind(proposal.kind)
    action = ActionResult(_new_action_id(ctx), proposal.kind, proposal.target, proposal.check, decision.mode,
                          "", "", storable(kind.preview(proposal)), params=proposal.params)
    why = f"{proposal.reason}; mode {decision.mode} ({decision.rule})"
    with ctx.state.write() as conn:
        now = time.time()
        hold: escalation.Hold | None = None
        if decision.mode in _NOT_APPLIED:
            action.status, verdict = _NOT_APPLIED[decision.mode]
        elif decision.mode == "approve":
            gate = approvals.consult(ctx.state, config, ctx.agent, proposal, action.preview, ctx.run_id,
                                     ctx.dry_run, now)
            action.approval_id = gate.approval_id
            if gate.run:
                hold = _hold(ctx, notify_only)
                action.status, verdict = "applying", gate.note
            else:
                action.status = "rejected" if gate.note.startswith("rejected") else "awaiting_approval"
                verdict = gate.note
        else:
            hold = _hold(ctx, notify_only) or escalation.auto_gate(ctx.state, config, ctx.agent, proposal.kind,
                                                                   proposal.target, proposal.check, now)
            action.status, verdict = "applying", "applying"
        if hold:
            action.status = "held" if hold.gate in ("stop", "safe_mode", "notify_only") else "deferred"
            action.gate, verdict = hold.gate, hold.why
        if ctx.dry_run:
            if action.status == "applying":
                action.status, verdict = "previewed", "dry-run: would apply"
            else:
                verdict = f"dry-run: {verdict}"
        action.reason = storable(f"{verdict}; {why}")
        saved = [snapshots.capture(ctx.state, p) for p in kind.changes(proposal)] \
            if action.status == "applying" else None
        _record_decision(ctx, action, proposal, iso(now), f"{verdict}: {action.preview}; {why}",
                         {"rule": decision.rule, "status": action.status, "gate": action.gate or None,
                          "approval_id": action.approval_id or None}, saved)
    if action.status != "applying":
        return action
    _apply(ctx, kind, proposal, action)
    return action


def _record_decision(ctx: RunContext, action: ActionResult, proposal: Proposal, created: str, said: str,
                     data: dict[str, Any], saved: list[snapshots.Saved] | None, seal_as: int | None = None) -> None:
    """The one place a decision is recorded, inside the caller's write transaction: the action's row (sealed by
    this process, or by the account root acts as: its step must never be undone with root's privileges), its
    before-images when it is about to be applied, and the audit entry saying what was decided and why."""
    ctx.state.conn.execute(
        "INSERT INTO actions (id, run_id, agent, kind, target, params, check_name, mode, status, reason, preview,"
        " created, gate, approval_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (action.id, ctx.run_id, ctx.agent, action.kind, storable(action.target),
         json.dumps(proposal.params, default=str), action.check, action.mode, action.status, action.reason,
         action.preview, created, action.gate or None, action.approval_id or None))
    seals.reseal(ctx.state.conn, ctx.state.path, "actions", "id", action.id, seal_as)
    if saved is not None:
        snapshots.record(ctx.state, action.id, saved, seal_as)
    audit.append(ctx.state, [Entry(ctx.agent, "action.decision", f"{action.kind} {action.target}: {said}",
                                   ctx.run_id, {"action_id": action.id, "kind": action.kind, "mode": action.mode,
                                                **data, "dry_run": ctx.dry_run, "params": proposal.params})])


def _apply_and_verify(kind, proposal: Proposal) -> dict[str, Any]:
    applied = kind.apply(proposal)
    return {"message": applied.message, "before": applied.before, "problem": kind.verify(proposal)}


def _apply_as(account: tuple[int, int], kind, proposal: Proposal) -> dict[str, Any]:
    """Apply and verify in a child that dropped to `account` (uid, gid); its failure arrives as ActionFailed."""
    from zenctl.core import accounts

    try:
        return accounts.call_as(*account, _apply_and_verify, kind, proposal)
    except OSError as exc:
        raise ActionFailed(f"as uid {account[0]}: {exc}") from None


def _apply(ctx: RunContext, kind, proposal: Proposal, action: ActionResult,
           account: tuple[int, int] | None = None) -> None:
    """Apply and verify (as `account` when given); record the result, what the action left (for rollback), the
    circuit and the approval."""
    before: dict[str, Any] = {}
    interrupted: Terminated | None = None
    try:
        done = _apply_as(account, kind, proposal) if account else _apply_and_verify(kind, proposal)
        before = done["before"]
        problem = done["problem"]
        if problem:
            raise ActionFailed(f"verify failed: {problem}")
        action.status, action.message = "applied", done["message"]
    except ActionFailed as exc:
        action.status, action.message = "failed", str(exc)
    except Terminated as exc:
        action.status, action.message, interrupted = "failed", f"interrupted: {exc}", exc
    except Exception as exc:  # an action's bug must not lose the record of what it tried
        action.status, action.message = "failed", f"{type(exc).__name__}: {exc}"
    ok = action.status == "applied"
    with ctx.state.write() as conn:
        conn.execute("UPDATE actions SET status = ?, message = ?, before = ?, finished = ? WHERE id = ?",
                     (action.status, scrub(action.message), json.dumps(before, default=str), iso(), action.id))
        seal_as = account[0] if account else None
        seals.reseal(conn, ctx.state.path, "actions", "id", action.id, seal_as)
        snapshots.record_after(ctx.state, action.id, seal_as)
        if action.mode != "manual":
            escalation.circuit_result(ctx.state, ctx.loaded.config, action.kind, action.target, ok, ctx.agent,
                                      ctx.run_id, time.time())
        if action.approval_id:
            approvals.executed(ctx.state, action.approval_id, action.id, ok, ctx.run_id)
        audit.append(ctx.state, [Entry(ctx.agent, f"action.{action.status}",
                                       f"{action.kind} {action.target}: {action.status}: {action.message}",
                                       ctx.run_id, {"action_id": action.id, "before": before})])
    if interrupted:
        raise interrupted


class ManualRun:
    """A person's command that changes things (rollback): recorded as a run with actions in mode `manual`,
    snapshotted and audited like an agent's, but not gated by stop, safe mode or the ladder, because it is
    how a person recovers while those are on."""

    def __init__(self, name: str, loaded: LoadedConfig, state: State, dry_run: bool):
        self.process = psutil.Process()
        self.result = RunResult(new_id(), name, "ok", dry_run, iso())
        self.ctx = RunContext(name, self.result.run_id, loaded, state, dry_run, time.time())
        self.by = control.whoami()
        with state.write() as conn:
            _insert_run(state, self.result, self.process, "running", None)
            audit.append(state, [Entry(name, "run.start", f"{name} by {self.by}" + (" (dry-run)" if dry_run else ""),
                                       self.result.run_id, {"by": self.by, "pid": os.getpid(), "dry_run": dry_run})])

    def apply(self, proposal: Proposal, account: tuple[int, int] | None = None) -> ActionResult:
        """Record, snapshot, apply and verify one step; as `account` (uid, gid), in a child process that dropped to
        it, when the step acts on what only that account vouched for (its snapshots are taken as it too)."""
        ctx, kind = self.ctx, get_kind(proposal.kind)
        action = ActionResult(_new_action_id(ctx), proposal.kind, proposal.target, proposal.check, "manual",
                              "previewed" if ctx.dry_run else "applying", "", storable(kind.preview(proposal)),
                              params=proposal.params)
        verdict = "dry-run: would apply" if ctx.dry_run else f"applying for {self.by}"
        action.reason = storable(f"{verdict}; {proposal.reason}")
        # taken before the write transaction: as another account, in a child that account could stall
        saved = None if ctx.dry_run else self._capture(kind.changes(proposal), account)
        with ctx.state.write():
            _record_decision(ctx, action, proposal, iso(), f"{verdict}: {action.preview}; {proposal.reason}",
                             {"by": self.by}, saved, account[0] if account else None)
        if not ctx.dry_run:
            _apply(ctx, kind, proposal, action, account)
        self.result.actions.append(action)
        return action

    def _capture(self, paths: list[str], account: tuple[int, int] | None) -> list[snapshots.Saved]:
        if not account:
            return [snapshots.capture(self.ctx.state, p) for p in paths]
        from zenctl.core import accounts

        state = self.ctx.state
        saved = accounts.call_as(*account, lambda: [asdict(snapshots.capture(state, p)) for p in paths])
        return [snapshots.Saved(**item) for item in saved]

    def refuse(self, target: str, why: str) -> None:
        """Record a step that was not taken and why (audited, reported as a failed step)."""
        with self.ctx.state.write():
            audit.append(self.ctx.state, [Entry(self.ctx.agent, "action.refused", f"{target}: {why}",
                                                self.ctx.run_id)])
        self.result.findings.append(Finding(f"refused:{target}", "critical", why))

    def finish(self) -> RunResult:
        bad = [a for a in self.result.actions if a.status == "failed"]
        self.result.status = "critical" if bad or self.result.findings else "ok"
        _finish(self.ctx.state, self.result, self.process)
        return self.result


def _new_action_id(ctx: RunContext) -> str:
    """Short enough to type in `zenctl approve ID`, checked unique."""
    while True:
        candidate = new_id(4)
        if not ctx.state.conn.execute("SELECT 1 FROM actions WHERE id = ?", (candidate,)).fetchone():
            return candidate


def _mark_repaired(result: RunResult) -> None:
    """A finding whose every action applied and verified is OK now; its observed status stays in evidence."""
    for finding in result.findings:
        mine = [a for a in result.actions if a.check == finding.check]
        if mine and finding.status != "ok" and all(a.status == "applied" for a in mine):
            finding.evidence["observed_status"] = finding.status
            finding.status = "ok"
            finding.message += f" (repaired by {', '.join(a.id for a in mine)})"


def _finish(state: State, result: RunResult, process: psutil.Process) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ended = time.time()
    result.ended = iso(ended)
    wall = ended - process.create_time()
    run_status = "error" if result.error else result.status
    with state.write() as conn:
        conn.executemany(
            "INSERT INTO findings (run_id, agent, ts, check_name, status, value, threshold, unit, message, evidence)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(result.run_id, result.agent, result.started, storable(f.check), f.status, f.value, f.threshold, f.unit,
              storable(f.message), json.dumps(f.evidence, default=str)) for f in result.findings],
        )
        conn.execute(
            "UPDATE runs SET ended = ?, status = ?, wall_seconds = ?, cpu_user_seconds = ?, cpu_system_seconds = ?,"
            " peak_rss_bytes = ?, message = ? WHERE id = ?",
            (result.ended, run_status, round(wall, 4), usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024,
             result.error, result.run_id),
        )
        counts = {s: sum(a.status == s for a in result.actions) for s in {a.status for a in result.actions}}
        event, message = ("run.error", result.error) if result.error else (
            "run.end", f"{result.agent} run ended: {result.status.upper()}")
        audit.append(state, [Entry(result.agent, event, message, result.run_id,
                                   {"status": run_status, "findings": len(result.findings), "actions": counts,
                                    "wall_seconds": round(wall, 4), "cpu_user_seconds": usage.ru_utime,
                                    "cpu_system_seconds": usage.ru_stime,
                                    "peak_rss_bytes": usage.ru_maxrss * 1024})])


def as_json(result: RunResult) -> dict[str, Any]:
    """The `--json` object of a run (stable keys, documented in README)."""
    return {
        "status": result.status,
        "run_id": result.run_id,
        "agent": result.agent,
        "dry_run": result.dry_run,
        "started": result.started,
        "ended": result.ended,
        "error": result.error,
        "findings": [asdict(f) for f in result.findings],
        "actions": [asdict(a) for a in result.actions],
        "notes": result.notes,
    }


def from_json(data: dict[str, Any]) -> RunResult:
    """A run back from its `--json` object (what a `run --due` child reports to its parent)."""
    fields = {k: data[k] for k in ("run_id", "agent", "status", "dry_run", "started", "ended", "error", "notes")}
    return RunResult(**fields, findings=[Finding(**f) for f in data["findings"]],
                     actions=[ActionResult(**a) for a in data["actions"]])
