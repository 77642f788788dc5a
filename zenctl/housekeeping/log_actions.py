"""Log rotation (logs.rotate) and its undo (logs.unrotate). The planning and the steps are in
`zenctl.housekeeping.logrotate`.

logs.rotate parameters: set (its name), files (per log: log, why, steps, frees), postrotate, postrotate_timeout,
frees (the estimate of bytes freed), su ([uid, gid] of the set's su, or null: the steps, their rollback and
`logs.unrotate` run with that file-system identity; postrotate runs as root). A file whose steps fail is put back
at once; a postrotate command that fails puts the whole set back. Its before-data holds the steps applied, which is what `zenctl rollback` replays
backwards (generations deleted because they were beyond `keep` are not kept, so they are not restored).

logs.unrotate parameters: undo (the rotation's action id), set, steps, postrotate, postrotate_timeout, su (the
rotation's).
"""

import copy
import time

from zenctl.housekeeping.actions import still_over
from zenctl.housekeeping import logrotate
from zenctl.core.units import human_bytes
from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.commands import run_command
from zenctl.core.untrusted import name as shown


def _reopen(p: dict):
    """The postrotate command as a callable that raises StepFailed when it fails; None when there is none."""
    if not p.get("postrotate"):
        return None

    def run() -> None:
        with logrotate.as_ourselves():  # as root, like logrotate's scripts, even with su
            result = run_command(p["postrotate"], p["postrotate_timeout"])
        if result.timed_out or result.code != 0:
            detail = result.first_line if result.timed_out else f"exited {result.code}: {result.first_line}"
            raise logrotate.StepFailed(f"postrotate command {detail}".rstrip(": "))
    return run


@register
class RotateLogs(ActionKind):
    name = "logs.rotate"
    summary = ("Rotate log files like logrotate: keep N generations, gzip (optionally delayed), dated names, rename "
               "plus postrotate or a copytruncate that loses no line.")
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        logs = ", ".join(f"{shown(f['log'])} ({f['why']})" for f in p["files"])
        return f"rotate {len(p['files'])} log(s) of {p['set']}: {logs}; frees about {human_bytes(p['frees'])}"

    def apply(self, proposal: Proposal) -> Applied:
        try:
            with logrotate.acting_as(proposal.params.get("su")):
                return self._rotate(proposal)
        except logrotate.StepFailed as exc:
            raise ActionFailed(str(exc)) from None

    def _rotate(self, proposal: Proposal) -> Applied:
        p = proposal.params
        rotated: list[tuple[dict, list[dict]]] = []
        failed: list[str] = []
        for item in copy.deepcopy(p["files"]):
            done: list[dict] = []
            try:
                for step in item["steps"]:
                    if step["op"] != "gzip":
                        logrotate.apply_step(step)
                        done.append(step)
            except (logrotate.StepFailed, OSError) as exc:
                failed.append(f"{shown(item['log'])}: {logrotate.error_text(exc)}")
                _put_back(done, failed)
                continue
            rotated.append((item, done))
        reopen = _reopen(p)
        if rotated and reopen:
            try:
                reopen()
            except logrotate.StepFailed as exc:
                for _, done in reversed(rotated):
                    _put_back(done, failed)
                raise ActionFailed(f"{exc}; put the {len(rotated)} rotated log(s) back") from None
        compressed = 0
        for item, done in rotated:
            for step in (s for s in item["steps"] if s["op"] == "gzip"):
                try:
                    logrotate.apply_step(step)
                    done.append(step)
                    compressed += 1
                except (logrotate.StepFailed, OSError) as exc:
                    failed.append(f"{shown(step['src'])} left uncompressed: {logrotate.error_text(exc)}")
            logrotate.commit(done)
        proposal.context["failed"] = failed
        now = time.time()
        message = (f"rotated {len(rotated)} log(s) of {p['set']}, compressed {compressed} generation(s)"
                   + (f"; {len(failed)} problem(s), first: {failed[0]}" if failed else ""))
        return Applied(message, {"steps": [s for _, done in rotated for s in done],
                                 "rotated": {item["log"]: now for item, _ in rotated}})

    def verify(self, proposal: Proposal) -> str | None:
        failed = proposal.context.get("failed") or []
        return "; ".join(failed[:3]) if failed else still_over(proposal)

    def undo(self, action: dict, check: bool = True) -> Proposal | str:
        steps = (action.get("before") or {}).get("steps")
        if not steps:
            return f"action {action['id']} rotated nothing; nothing to undo"
        why = logrotate.revertible(steps) if check else None
        if why:
            return f"not rolling back {action['id']} (logs.rotate {action['target']}): {why}"
        p = action["params"]
        params = {"undo": action["id"], "set": p["set"], "steps": steps, "postrotate": p.get("postrotate"),
                  "postrotate_timeout": p.get("postrotate_timeout", 30), "su": p.get("su")}
        return Proposal("logs.unrotate", action["target"], params,
                        f"rollback of {action['id']} (logs.rotate {action['target']}, {action['finished']})",
                        f"rollback:{action['id']}")


@register
class UnrotateLogs(ActionKind):
    name = "logs.unrotate"
    summary = "Undo a log rotation: decompress, move generations back, put the rotated file back as the live one."
    irreversible_why = "rotate again instead"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        undo = {"drop": "not restored: {path} (deleted, beyond keep)", "move": "move {dst} back to {src}",
                "gzip": "decompress {dst}", "rename": "put {dst} back as {src}, appending what was written since",
                "collapse": "put {dst} back in front of {src}",
                "clean": "not restored: {path} (left by a rotation that died)"}
        return f"undo {p['undo']}: " + "; ".join(
            undo[s["op"]].format(**{k: shown(v) if isinstance(v, str) else v for k, v in s.items()})
            for s in reversed(p["steps"]))

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        try:
            with logrotate.acting_as(p.get("su")):
                why = logrotate.revertible(p["steps"])
                done = [] if why else logrotate.revert(copy.deepcopy(p["steps"]), _reopen(p))
        except (logrotate.StepFailed, OSError) as exc:
            raise ActionFailed(f"undo stopped: {logrotate.error_text(exc)}") from None
        if why:
            raise ActionFailed(why)
        return Applied(f"undid {p['undo']}: " + "; ".join(done))

    def verify(self, proposal: Proposal) -> str | None:
        import os

        for step in proposal.params["steps"]:  # a compressed file's name is another step's target, checked there
            if step["op"] in ("move", "rename", "collapse") and not os.path.lexists(step["src"]):
                return f"{shown(step['src'])} is not back"
        return None


def _put_back(done: list[dict], failed: list[str]) -> None:
    try:
        logrotate.revert(done)
    except (logrotate.StepFailed, OSError) as exc:
        failed.append(f"could not put everything back: {logrotate.error_text(exc)}")

