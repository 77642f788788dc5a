"""Rollback as an action: put back what another action changed, from its snapshots.

It goes through the runtime like every change (audited, previewed under --dry-run, itself snapshotted, so a
rollback can be rolled back). Parameters: undo (the action id), store (the snapshot directory), saved (the
before-images, newest path last).
"""

from dataclasses import asdict
from pathlib import Path

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.snapshots import Saved, describe_restore, fingerprint, restore


def _saved(proposal: Proposal) -> list[Saved]:
    return [Saved(**item) for item in proposal.params["saved"]]


@register
class RestoreSnapshot(ActionKind):
    name = "snapshot.restore"
    summary = "Roll back another action: restore the paths it changed from their snapshots."
    reversible = True

    def changes(self, proposal: Proposal) -> list[str]:
        return [s.path for s in _saved(proposal)]

    def preview(self, proposal: Proposal) -> str:
        steps = [describe_restore(s) for s in reversed(_saved(proposal))]
        return f"undo {proposal.params['undo']}: " + "; ".join(steps)

    def apply(self, proposal: Proposal) -> Applied:
        for saved in reversed(_saved(proposal)):  # innermost (created last) first
            try:
                restore(Path(proposal.params["store"]), saved)
            except OSError as exc:
                raise ActionFailed(f"cannot restore {saved.path}: {exc.strerror or exc}") from None
        return Applied(self.preview(proposal).replace("undo", "undid", 1))

    def verify(self, proposal: Proposal) -> str | None:
        for saved in _saved(proposal):
            now = fingerprint(saved.path)
            if not saved.existed:
                if now["exists"]:
                    return f"{saved.path} still exists"
                continue
            want = {"mode": saved.mode, "uid": saved.uid, "gid": saved.gid}
            if saved.ftype == "file":
                want["sha256"] = saved.blob
            if not now["exists"] or any(now.get(k) != v for k, v in want.items()):
                return f"{saved.path} does not match its snapshot ({now})"
        return None


def params_for(undo: str, store: Path, saved: list[Saved]) -> dict:
    return {"undo": undo, "store": str(store), "saved": [asdict(s) for s in saved]}
