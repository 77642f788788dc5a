"""The approval queue: an action whose policy mode is `approve` waits here for a person.

A request pins the exact plan (kind, target, parameters) by its hash. An approved request runs only while the
agent still proposes that same plan; if the world changed, the approval is void and a fresh request is made, so
nobody ever approves one change and gets another. The same pending problem updates its open request instead
of queueing a new one every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenctl.core import audit, registry, seals
from zenctl.core.actions import Proposal
from zenctl.core.audit import Entry
from zenctl.core.state import State
from zenctl.core.timeutil import epoch, from_future, iso
from zenctl.errors import UsageError

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.core.configmodels import Config

OPEN = ("pending", "approved", "rejected")
COLUMNS = ("id", "agent", "problem", "kind", "target", "params", "plan_hash", "preview", "reason", "status",
           "created", "updated", "expires", "requests", "decided_by", "decided_at", "comment", "action_id", "seal")


def plan_hash(proposal: Proposal) -> str:
    """What a person approves: the kind, the target and every parameter, canonically serialised."""
    plan = json.dumps({"kind": proposal.kind, "target": proposal.target, "params": proposal.params},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(plan.encode()).hexdigest()


@dataclass
class Gate:
    """What the queue says about one proposal: run it (approved, pinned), or wait (with the request id)."""

    run: bool
    approval_id: str
    note: str


def _row(state: State, where: str, args: tuple) -> dict | None:
    found = state.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM approvals WHERE {where}", args).fetchone()
    return dict(zip(COLUMNS, found)) if found else None


def _new_id(state: State) -> str:
    while True:
        candidate = os.urandom(4).hex()
        if not state.conn.execute("SELECT 1 FROM approvals WHERE id = ?", (candidate,)).fetchone():
            return candidate


def consult(state: State, config: Config, agent: str, proposal: Proposal, preview: str, run_id: str,
            dry_run: bool, now: float) -> Gate:
    """Call inside a write transaction. Finds the request for this plan: runs an approved one whose hash still
    matches, voids one whose plan changed, updates a pending one, or opens a new one."""
    digest = plan_hash(proposal)
    row = _row(state, "agent = ? AND kind = ? AND target = ? AND status IN ('pending', 'approved', 'rejected') "
                      "ORDER BY created DESC LIMIT 1", (agent, proposal.kind, proposal.target))
    if row and row["status"] != "rejected" and _over(row, now, config):
        if not dry_run:
            _set_status(state, row, "expired", "expired before it was acted on", run_id)
        row = None
    if row and row["plan_hash"] != digest:
        if not dry_run:
            _set_status(state, row, "void", f"plan changed since it was {row['status']}: the agent now proposes "
                                            f"{preview!r}", run_id)
        row = None
    if row and row["status"] == "approved" and seals.was_used(state.path, f"approval-{row['id']}"):
        why = "it was already carried out (its row was set back to approved in the state file); refusing to act again"
        if not dry_run:
            _set_status(state, row, "void", why, run_id)
            audit.append(state, [Entry(agent, "security.replayed_approval", f"approval {row['id']}: {why}", run_id,
                                       {"approval_id": row["id"]})])
        row = None
    if row and row["status"] == "approved" and not _decided_by_trusted(state, row):
        why = ("its decision was not written by 'zenctl approve' as root or as this agent's account (the row was "
               "edited in the state file); refusing to act on it")
        if not dry_run:
            _set_status(state, row, "void", why, run_id)
            audit.append(state, [Entry(agent, "security.forged_approval", f"approval {row['id']}: {why}", run_id,
                                       {"approval_id": row["id"], "decided_by": row["decided_by"]})])
        row = None
    if row and row["status"] == "approved":
        return Gate(True, row["id"], f"approved by {row['decided_by']} ({row['id']}), plan hash matches")
    if row and row["status"] == "rejected":
        if not _over(row, now, config):
            return Gate(False, row["id"], f"rejected by {row['decided_by']} ({row['id']}); not asked again until "
                                          f"{row['expires']} or the plan changes")
        row = None
    if dry_run:
        return Gate(False, row["id"] if row else "", "would ask for approval")
    stamp = iso(now)
    if row:
        state.conn.execute("UPDATE approvals SET requests = requests + 1, updated = ?, reason = ? WHERE id = ?",
                           (stamp, proposal.reason, row["id"]))
        return Gate(False, row["id"], f"awaiting approval: zenctl approve {row['id']} (asked {row['requests'] + 1} "
                                      "times)")
    new_id = _new_id(state)
    expires = iso(now + config.policy.approval_expiry)
    state.conn.execute(
        "INSERT INTO approvals (id, agent, problem, kind, target, params, plan_hash, preview, reason, status, "
        "created, updated, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (new_id, agent, proposal.check, proposal.kind, proposal.target, json.dumps(proposal.params, default=str),
         digest, preview, proposal.reason, stamp, stamp, expires))
    audit.append(state, [Entry(agent, "approval.request",
                               f"approval {new_id} requested: {proposal.kind} {proposal.target}: {preview}", run_id,
                               {"approval_id": new_id, "kind": proposal.kind, "target": proposal.target,
                                "plan_hash": digest, "expires": expires, "reason": proposal.reason})])
    return Gate(False, new_id, f"awaiting approval: zenctl approve {new_id}")


def _over(row: dict, now: float, config: Config) -> bool:
    """Past its expiry, or dated beyond any expiry zenctl could have set: written by a clock that was ahead,
    which must neither keep a rejection blocking nor an approval valid until then."""
    expires = epoch(row["expires"])
    return expires <= now or from_future(expires - config.policy.approval_expiry, now)


def _decided_by_trusted(state: State, row: dict) -> bool:
    """Whether the approval's decision carries the seal of the account about to act on it (this process)."""
    values = tuple(row[c] for c in seals.SEALED["approvals"])
    return seals.signer(state.path, "approvals", values, row["seal"]) == os.geteuid()


def acting_uid(state: State, config: Config, agent: str) -> int:
    """The account that will act on an approval of `agent`: its run_as account, else the state file's owner
    (root for a system install)."""
    run_as = config.agent(agent).run_as if agent in registry.names() else None
    if run_as:
        from zenctl.core.accounts import resolve

        return resolve(agent, run_as).uid
    return os.stat(state.path).st_uid


def executed(state: State, approval_id: str, action_id: str, ok: bool, run_id: str) -> None:
    """Record that an approved plan ran (inside a write transaction)."""
    state.conn.execute("UPDATE approvals SET status = ?, action_id = ?, updated = ? WHERE id = ?",
                       ("executed" if ok else "failed", action_id, iso(), approval_id))
    seals.mark_used(state.path, f"approval-{approval_id}")  # one approval, one run: never again
    row = _row(state, "id = ?", (approval_id,))
    audit.append(state, [Entry(row["agent"], "approval.executed",
                               f"approval {approval_id} carried out as action {action_id}: "
                               f"{'applied' if ok else 'failed'}", run_id,
                               {"approval_id": approval_id, "action_id": action_id, "ok": ok})])


def _set_status(state: State, row: dict, status: str, why: str, run_id: str | None) -> None:
    state.conn.execute("UPDATE approvals SET status = ?, updated = ?, comment = COALESCE(comment, ?) WHERE id = ?",
                       (status, iso(), why, row["id"]))
    audit.append(state, [Entry(row["agent"], f"approval.{status}", f"approval {row['id']} {status}: {why}", run_id,
                               {"approval_id": row["id"], "plan_hash": row["plan_hash"]})])


def expire_due(state: State, now: float | None = None) -> int:
    """Mark pending requests past their expiry as expired (audited); the count."""
    now = time.time() if now is None else now
    query = f"SELECT {', '.join(COLUMNS)} FROM approvals WHERE status IN ('pending', 'approved') AND expires <= ?"
    if not state.conn.execute(query, (iso(now),)).fetchone():
        return 0  # the usual case: no write transaction on every run
    with state.write():
        rows = state.conn.execute(query, (iso(now),)).fetchall()
        for found in rows:
            _set_status(state, dict(zip(COLUMNS, found)), "expired", "nobody acted before it expired", None)
    return len(rows)


def listing(state: State, everything: bool) -> list[dict]:
    where = "1" if everything else "status IN ('pending', 'approved')"
    rows = state.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM approvals WHERE {where} ORDER BY created DESC"
                              ).fetchall()
    return [_public(dict(zip(COLUMNS, r))) for r in rows]


def get(state: State, approval_id: str) -> dict:
    row = _row(state, "id = ?", (approval_id.strip().lower(),))
    if not row:
        raise UsageError(f"no approval request {approval_id!r} (see 'zenctl approvals list --all')")
    return _public(row)


def _public(row: dict) -> dict:
    row = dict(row)
    row.pop("seal", None)
    row["params"] = json.loads(row["params"])
    return row


def decide(state: State, config: Config, approval_id: str, approve: bool, who: str, comment: str | None) -> dict:
    """Approve or reject one pending request. Exactly one of two concurrent deciders wins; the other, like an
    unknown, expired, decided or not-allowed request, gets a UsageError naming why."""
    approvers = config.policy.approvers
    if approvers and who not in approvers:
        raise UsageError(f"{who} may not decide approvals (policy.approvers: {', '.join(approvers)})")
    verdict = "approved" if approve else "rejected"
    now = time.time()
    with state.write():
        row = get(state, approval_id)
        actor = acting_uid(state, config, row["agent"])
        if os.geteuid() not in (0, actor):
            raise UsageError(f"approval {row['id']} is carried out by {seals.describe(actor)}: decide it as root "
                             f"(sudo zenctl {'approve' if approve else 'reject'} {row['id']}) or as that account")
        if row["status"] == "pending" and _over(row, now, config):
            _set_status(state, row, "expired", "nobody acted before it expired", None)
            row["status"] = "expired"
        if row["status"] != "pending":
            detail = f" by {row['decided_by']} at {row['decided_at']}" if row["decided_by"] else ""
            return {"error": f"approval {row['id']} is already {row['status']}{detail}", "row": row}
        # A fresh window for the plan to run in (approved) or stay quiet (rejected).
        expires = iso(now + config.policy.approval_expiry)
        changed = state.conn.execute(
            "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ?, updated = ?, expires = ? "
            "WHERE id = ? AND status = 'pending'",
            (verdict, who, iso(now), comment, iso(now), expires, row["id"])).rowcount
        if changed != 1:  # cannot happen inside BEGIN IMMEDIATE, but never record two decisions
            return {"error": f"approval {row['id']} was decided by someone else just now", "row": row}
        if os.geteuid() == 0 and actor != 0:
            from zenctl.core.accounts import resolve

            run_as = config.agent(row["agent"]).run_as
            seals.ensure_key(state.path, actor, resolve(row["agent"], run_as).gid)
        seals.reseal(state.conn, state.path, "approvals", "id", row["id"], actor)
        audit.append(state, [Entry(row["agent"], f"approval.{verdict}",
                                   f"approval {row['id']} {verdict} by {who}: {row['kind']} {row['target']}: "
                                   f"{row['preview']}" + (f" ({comment})" if comment else ""), None,
                                   {"approval_id": row["id"], "by": who, "comment": comment,
                                    "plan_hash": row["plan_hash"]})])
    return {"error": None, "row": get(state, row["id"])}
