"""Rollback: undo one action, or every reversible action since a time, newest first (the seed's "restore from
the last known good state"). Each undo is a `snapshot.restore` action in a recorded manual run, so it is
previewed under --dry-run, audited, and can itself be rolled back; a kind that undoes itself from its own
before-data (logs.rotate) gives its own undo action instead."""

import json

from zenctl.actions.snapshot import params_for
from zenctl.core import snapshots
from zenctl.core.actions import Proposal, get_kind
from zenctl.core.config import LoadedConfig
from zenctl.core.runtime import ManualRun, RunResult
from zenctl.core.state import State
from zenctl.core.timeutil import iso
from zenctl.errors import UsageError

_COLUMNS = ("id", "agent", "kind", "target", "status", "finished", "undone_by", "params", "before")


def _action(state: State, action_id: str) -> dict:
    row = state.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM actions WHERE id = ?",
                             (action_id.strip().lower(),)).fetchone()
    if not row:
        raise UsageError(f"no action {action_id!r} (action ids are in 'zenctl audit' and --json output)")
    return _row(row)


def _row(row) -> dict:
    action = dict(zip(_COLUMNS, row))
    for key in ("params", "before"):
        try:
            action[key] = json.loads(action[key]) if action[key] else {}
        except ValueError:
            action[key] = {}
    return action


def candidates(state: State, since: float) -> list[dict]:
    """Applied, reversible, not yet undone actions finished since `since`, newest first (rollbacks excluded)."""
    rows = state.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM actions WHERE status = 'applied' AND undone_by IS NULL AND "
        "finished >= ? AND kind != 'snapshot.restore' ORDER BY finished DESC, rowid DESC", (iso(since),)).fetchall()
    out = []
    for row in rows:
        action = _row(row)
        try:
            reversible = get_kind(action["kind"]).reversible
        except KeyError:
            reversible = False
        if reversible:
            out.append(action)
    return out


def rollback(state: State, loaded: LoadedConfig, action_id: str | None, since: float | None, force: bool,
             dry_run: bool) -> RunResult:
    if (action_id is None) == (since is None):
        raise UsageError("give either an ACTION_ID or --since DURATION")
    if action_id is not None:
        action = _action(state, action_id)
        _check_undoable(state, action, force)
        todo = [action]
    else:
        todo = candidates(state, since)
    run = ManualRun("rollback", loaded, state, dry_run)
    previewed: set[str] = set()  # paths a dry-run already "restored": their current state is not what counts
    for action in todo:
        target = f"{action['kind']}:{action['target']}"
        own = get_kind(action["kind"]).undo(action, check=not (dry_run and target in previewed))
        if own is not None:
            if isinstance(own, str):
                run.refuse(action["id"], own)
                continue
            result = run.apply(own)
            previewed.add(target)
            if result.status == "applied":
                with state.write() as conn:
                    conn.execute("UPDATE actions SET undone_by = ? WHERE id = ?", (result.id, action["id"]))
            continue
        saved = snapshots.saved_for(state, action["id"])
        if not saved:
            run.refuse(action["id"], f"action {action['id']} ({action['kind']} {action['target']}) has no "
                                     "snapshot to restore")
            continue
        if not force:
            changed = [(s.path, why) for s, after in saved if s.path not in previewed
                       and (why := snapshots.changed_since(s, after))]
            if changed:
                path, why = changed[0]
                run.refuse(action["id"], f"not rolling back {action['id']} ({action['kind']} {action['target']}): "
                                         f"{path}: {why}; use --force to restore anyway")
                continue
        params = params_for(action["id"], snapshots.store_dir(state), [s for s, _ in saved])
        proposal = Proposal("snapshot.restore", action["target"], params,
                            f"rollback of {action['id']} ({action['kind']} {action['target']}, "
                            f"{action['status']} {action['finished']})" + (" with --force" if force else ""),
                            f"rollback:{action['id']}")
        result = run.apply(proposal)
        previewed.update(s.path for s, _ in saved)
        if result.status == "applied":
            with state.write() as conn:
                conn.execute("UPDATE actions SET undone_by = ? WHERE id = ?", (result.id, action["id"]))
    return run.finish()


def _check_undoable(state: State, action: dict, force: bool) -> None:
    try:
        kind = get_kind(action["kind"])
    except KeyError:
        raise UsageError(f"action {action['id']}: unknown kind {action['kind']!r}; cannot roll it back") from None
    if not kind.reversible:
        raise UsageError(f"action {action['id']} ({action['kind']}) cannot be undone: {kind.irreversible_why}")
    if action["undone_by"]:
        raise UsageError(f"action {action['id']} was already rolled back by {action['undone_by']}")
    allowed = ("applied", "failed", "interrupted") if force else ("applied",)
    if action["status"] not in allowed:
        hint = " (use --force to restore its snapshot anyway)" if action["status"] in ("failed", "interrupted") else ""
        raise UsageError(f"action {action['id']} is {action['status']}, not applied; nothing to roll back{hint}")
