"""The runtime: runs one agent once, and does for every agent what no agent may skip.

Lock, observe, plan, then for each proposed action: policy mode, then preview (dry-run), queue, notify or apply
and verify; every finding, decision and result goes to the audit log, the run's cost to the runs table. It never
raises for what an agent does (tests pass `raise_errors=True` to see the traceback).
"""

import json
import os
import resource
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from zenctl.core import audit
from zenctl.core.actions import ActionFailed, Proposal, get_kind
from zenctl.core.agent import EXIT_CODES, BaseAgent, Finding, RunContext, worst
from zenctl.core.audit import Entry, scrub
from zenctl.core.config import LoadedConfig
from zenctl.core.locks import RunLock
from zenctl.core.policy import mode_for
from zenctl.core.state import State
from zenctl.core.timeutil import iso

# What happens to an action under each mode that does not apply it.
_NOT_APPLIED = {
    "disabled": ("skipped", "not applied: disabled by policy"),
    "notify": ("notified", "not applied: notify only"),
    "approve": ("awaiting_approval", "not applied: awaiting approval"),
}


@dataclass
class ActionResult:
    id: str
    kind: str
    target: str
    check: str
    mode: str
    status: str  # applied | failed | previewed | awaiting_approval | notified | skipped
    reason: str
    preview: str
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)


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
    error: str | None = None  # why the run could not run (overlap, agent failure)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def new_id(nbytes: int = 6) -> str:
    return secrets.token_hex(nbytes)


def run_agent(agent: BaseAgent, loaded: LoadedConfig, state: State, dry_run: bool = False,
              raise_errors: bool = False) -> RunResult:
    """Run `agent` once under its run lock and record everything."""
    now = time.time()
    process = psutil.Process()
    result = RunResult(new_id(), agent.name, "ok", dry_run, iso(now))
    lock = RunLock(state.path, agent.name)
    if not lock.acquire():
        result.status, result.ended = "unknown", result.started
        result.error = f"{agent.name} is already running (pid {lock.holder()}); this run was skipped"
        with state.write() as conn:
            _insert_run(conn, result, process, "overlap", result.error)
            audit.append(state, [Entry(agent.name, "run.overlap", result.error, result.run_id)])
        return result
    try:
        with state.write() as conn:
            _insert_run(conn, result, process, "running", None)
            mode = " (dry-run)" if dry_run else ""
            audit.append(state, [Entry(agent.name, "run.start", f"{agent.name} run started{mode}", result.run_id,
                                       {"pid": os.getpid(), "dry_run": dry_run,
                                        "config": str(loaded.path) if loaded.path else "embedded defaults"})])
        ctx = RunContext(agent.name, result.run_id, loaded, state, dry_run, now)
        try:
            result.findings = agent.observe(ctx)
            audit.append(state, [_finding_entry(ctx, f) for f in result.findings])
            for proposal in agent.plan(ctx, result.findings):
                result.actions.append(_handle(ctx, proposal))
            _mark_repaired(result)
            result.status = worst(f.status for f in result.findings)
        except Exception as exc:
            if raise_errors:
                raise
            result.status, result.error = "unknown", scrub(f"{agent.name} failed: {type(exc).__name__}: {exc}")
        _finish(state, result, process)
        return result
    finally:
        lock.release()


def _insert_run(conn, result: RunResult, process: psutil.Process, status: str, message: str | None) -> None:
    conn.execute(
        "INSERT INTO runs (id, agent, pid, proc_start, started, ended, status, dry_run, message) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (result.run_id, result.agent, process.pid, process.create_time(), result.started,
         result.ended or None, status, int(result.dry_run), message),
    )


def _finding_entry(ctx: RunContext, finding: Finding) -> Entry:
    data = {"check": finding.check, "status": finding.status, "value": finding.value,
            "threshold": finding.threshold, "unit": finding.unit, **finding.evidence}
    return Entry(ctx.agent, "finding", f"{finding.check}: {finding.status.upper()}: {finding.message}",
                 ctx.run_id, data)


def _handle(ctx: RunContext, proposal: Proposal) -> ActionResult:
    """Gate one proposal by policy and dry-run, apply and verify when allowed, and record each step."""
    decision = mode_for(proposal.kind, ctx.loaded.config, ctx.config)
    kind = get_kind(proposal.kind)
    action = ActionResult(_new_action_id(ctx), proposal.kind, proposal.target, proposal.check, decision.mode,
                          "", "", kind.preview(proposal), params=proposal.params)
    why = f"{proposal.reason}; mode {decision.mode} ({decision.rule})"
    if decision.mode in _NOT_APPLIED:
        action.status, verdict = _NOT_APPLIED[decision.mode]
    elif ctx.dry_run:
        action.status, verdict = "previewed", "dry-run: would apply"
    else:
        action.status, verdict = "applying", "applying"
    action.reason = f"{verdict}; {why}"
    with ctx.state.write() as conn:
        conn.execute(
            "INSERT INTO actions (id, run_id, agent, kind, target, params, check_name, mode, status, reason, preview,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (action.id, ctx.run_id, ctx.agent, action.kind, action.target, json.dumps(proposal.params),
             action.check, action.mode, action.status, action.reason, action.preview, iso()),
        )
        audit.append(ctx.state, [Entry(ctx.agent, "action.decision",
                                       f"{action.kind} {action.target}: {verdict}: {action.preview}; {why}",
                                       ctx.run_id, {"action_id": action.id, "kind": action.kind, "mode": action.mode,
                                                    "rule": decision.rule, "status": action.status,
                                                    "dry_run": ctx.dry_run, "params": proposal.params})])
    if action.status != "applying":
        return action
    before: dict[str, Any] = {}
    try:
        applied = kind.apply(proposal)
        before = applied.before
        problem = kind.verify(proposal)
        if problem:
            raise ActionFailed(f"verify failed: {problem}")
        action.status, action.message = "applied", applied.message
    except ActionFailed as exc:
        action.status, action.message = "failed", str(exc)
    except Exception as exc:  # an action's bug must not lose the record of what it tried
        action.status, action.message = "failed", f"{type(exc).__name__}: {exc}"
    with ctx.state.write() as conn:
        conn.execute("UPDATE actions SET status = ?, message = ?, before = ?, finished = ? WHERE id = ?",
                     (action.status, scrub(action.message), json.dumps(before), iso(), action.id))
        audit.append(ctx.state, [Entry(ctx.agent, f"action.{action.status}",
                                       f"{action.kind} {action.target}: {action.status}: {action.message}",
                                       ctx.run_id, {"action_id": action.id, "before": before})])
    return action


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
            [(result.run_id, result.agent, result.started, f.check, f.status, f.value, f.threshold, f.unit,
              f.message, json.dumps(f.evidence, default=str)) for f in result.findings],
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
    }
