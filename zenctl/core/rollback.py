"""Rollback: undo one action, or every reversible action since a time, newest first (the seed's "restore from
the last known good state"). Each undo is a `snapshot.restore` action in a recorded manual run, so it is
previewed under --dry-run, audited, and can itself be rolled back; a kind that undoes itself from its own
before-data (logs.rotate) gives its own undo action instead."""

import json
import os

from zenctl.core.restore_kind import params_for
from zenctl.core import seals, snapshots
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
        f"SELECT {', '.join(_COLUMNS)} FROM actions WHERE status = 'applied' AND "
        "(undone_by IS NULL OR undone_by LIKE 'claim:%') AND "
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
        account, why = _trusted(state, action)
        if why:
            run.refuse(action["id"], why)
            continue
        signer = account[0] if account else os.geteuid()  # the claim keeps the row sealed by whom it was
        if not dry_run:
            taken = _claim(state, action["id"], run.result.run_id, signer)
            if taken:
                run.refuse(action["id"], f"action {action['id']} was already rolled back by {taken}")
                continue
        try:
            result = _undo(state, run, action, account, force, dry_run, previewed)
        except OSError as exc:  # the account's process could not even take the snapshots
            run.refuse(action["id"], f"not rolling back {action['id']}: {exc}")
            result = None
        if not dry_run:
            _release(state, action["id"], run.result.run_id, result.id if result and result.status == "applied"
                     else None, signer)
    return run.finish()


def _undo(state: State, run: ManualRun, action: dict, account: tuple[int, int] | None, force: bool, dry_run: bool,
          previewed: set[str]):
    """Undo one action (its kind's own undo, else its snapshots); the rollback step's result, or None if refused."""
    target = f"{action['kind']}:{action['target']}"
    own = get_kind(action["kind"]).undo(action, check=not (dry_run and target in previewed))
    if own is not None:
        if isinstance(own, str):
            run.refuse(action["id"], own)
            return None
        previewed.add(target)
        return run.apply(own, account)
    saved = snapshots.saved_for(state, action["id"])
    if not saved:
        run.refuse(action["id"], f"action {action['id']} ({action['kind']} {action['target']}) has no "
                                 "snapshot to restore")
        return None
    if not force:
        changed = [(s.path, why) for s, after in saved if s.path not in previewed
                   and (why := snapshots.changed_since(s, after))]
        if changed:
            path, why = changed[0]
            run.refuse(action["id"], f"not rolling back {action['id']} ({action['kind']} {action['target']}): "
                                     f"{path}: {why}; use --force to restore anyway")
            return None
    params = params_for(action["id"], snapshots.store_dir(state), [s for s, _ in saved])
    proposal = Proposal("snapshot.restore", action["target"], params,
                        f"rollback of {action['id']} ({action['kind']} {action['target']}, "
                        f"{action['status']} {action['finished']})" + (" with --force" if force else ""),
                        f"rollback:{action['id']}")
    previewed.update(s.path for s, _ in saved)
    return run.apply(proposal, account)


def _trusted(state: State, action: dict) -> tuple[tuple[int, int] | None, str | None]:
    """Whose privileges undo `action`: (None, None) for this process's own, ((uid, gid), None) for the account
    that sealed it when we are root, or (None, why) when it must be refused. An action and its snapshots act
    only with the privileges of the account whose key sealed them: a state-group member can write rows, not
    seals, so a forged row never gets root to write, chmod or chown anything."""
    signers = set(seals.row_signers(state.conn, state.path, "actions", "id", action["id"]))
    signers |= set(seals.row_signers(state.conn, state.path, "snapshots", "action_id", action["id"]))
    what = f"action {action['id']} ({action['kind']} {action['target']})"
    if None in signers or len(signers) != 1:
        return None, (f"not rolling back {what}: its record is not sealed by one account zenctl trusts (written or "
                      "changed outside zenctl, or before zenctl sealed its records); restore it by hand")
    uid = signers.pop()
    if seals.was_used(state.path, f"undone-{action['id']}"):
        return None, f"not rolling back {what}: it was already rolled back (its record was set back in the state file)"
    if uid == os.geteuid():
        return None, None
    if os.geteuid() != 0:
        return None, f"not rolling back {what}: it was recorded by {seals.describe(uid)}; run the rollback as root"
    return (uid, _state_gid(state, uid)), None


def _state_gid(state: State, uid: int) -> int:
    """The group an account acts in on the state: the state directory's group when shared, else its own."""
    import pwd

    st = os.stat(state.path.parent)
    if st.st_mode & 0o070 == 0o070:
        return st.st_gid
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return st.st_gid


_CLAIM = "claim:"


def _claim(state: State, action_id: str, run_id: str, signer: int) -> str | None:
    """Take the action for this rollback run (atomically, so concurrent rollbacks undo it once); None when
    taken, else who already undid (or is undoing) it. A claim of a run that is no longer running is stale."""
    with state.write() as conn:
        row = conn.execute("SELECT undone_by FROM actions WHERE id = ?", (action_id,)).fetchone()
        holder = row[0] if row else None
        if holder and holder.startswith(_CLAIM):
            alive = conn.execute("SELECT 1 FROM runs WHERE id = ? AND status = 'running'",
                                 (holder[len(_CLAIM):],)).fetchone()
            if alive:
                return f"rollback run {holder[len(_CLAIM):]} (in progress)"
            holder = None
        if holder:
            return holder
        conn.execute("UPDATE actions SET undone_by = ? WHERE id = ?", (_CLAIM + run_id, action_id))
        seals.reseal(conn, state.path, "actions", "id", action_id, signer)
    return None


def _release(state: State, action_id: str, run_id: str, undone_by: str | None, signer: int) -> None:
    """End this run's claim: the undo's action id when it applied (recorded where the group cannot undo it, so
    the action is never undone twice), else free for a later rollback."""
    if undone_by:
        seals.mark_used(state.path, f"undone-{action_id}")
    with state.write() as conn:
        conn.execute("UPDATE actions SET undone_by = ? WHERE id = ? AND undone_by = ?",
                     (undone_by, action_id, _CLAIM + run_id))
        seals.reseal(conn, state.path, "actions", "id", action_id, signer)


def _check_undoable(state: State, action: dict, force: bool) -> None:
    try:
        kind = get_kind(action["kind"])
    except KeyError:
        raise UsageError(f"action {action['id']}: unknown kind {action['kind']!r}; cannot roll it back") from None
    if not kind.reversible:
        raise UsageError(f"action {action['id']} ({action['kind']}) cannot be undone: {kind.irreversible_why}")
    if action["undone_by"] and not action["undone_by"].startswith(_CLAIM):
        raise UsageError(f"action {action['id']} was already rolled back by {action['undone_by']}")
    allowed = ("applied", "failed", "interrupted") if force else ("applied",)
    if action["status"] not in allowed:
        hint = " (use --force to restore its snapshot anyway)" if action["status"] in ("failed", "interrupted") else ""
        raise UsageError(f"action {action['id']} is {action['status']}, not applied; nothing to roll back{hint}")
