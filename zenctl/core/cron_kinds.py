"""Schedules: zenctl's lines in the invoking user's crontab, or the system file /etc/cron.d/zenctl.

Installing a schedule changes the host, so it is an action like any other: previewed as a diff (`--dry-run`),
applied only if the table is still what the preview was made from, verified by reading it back, and audited.

Parameters:
  cron.crontab: user, before (the crontab the plan was made from), after (the crontab wanted)
  cron.file: path, before (text, or None when absent), after (text, or None to remove the file)
"""

import difflib
import hashlib
import os

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.crontab import read_file, read_user_crontab, write_user_crontab
from zenctl.core.files import write_atomic
from zenctl.errors import HostError


def diff(before: str | None, after: str | None, name: str) -> str:
    """A unified diff, or `no change`."""
    lines = list(difflib.unified_diff((before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
                                      f"{name} (now)", f"{name} (wanted)"))
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines).rstrip("\n") or "no change"


def _digest(text: str | None) -> str:
    return "absent" if text is None else hashlib.sha256(text.encode()).hexdigest()[:12]


@register
class UserCrontab(ActionKind):
    name = "cron.crontab"
    summary = "Write zenctl's marked block into the invoking user's crontab (through crontab -)."
    irreversible_why = "a crontab is not a file zenctl can snapshot; 'zenctl schedule remove' takes the block out"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return diff(p["before"], p["after"], f"crontab of {p['user']}")

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        try:
            current = read_user_crontab()
            if current != p["before"]:
                raise ActionFailed(f"the crontab of {p['user']} changed since the plan ({_digest(p['before'])} → "
                                   f"{_digest(current)}); run the command again")
            write_user_crontab(p["after"])
        except HostError as exc:
            raise ActionFailed(str(exc)) from None
        return Applied(f"crontab of {p['user']} written ({_digest(p['before'])} → {_digest(p['after'])})",
                       {"crontab": p["before"]})

    def verify(self, proposal: Proposal) -> str | None:
        try:
            now = read_user_crontab()
        except HostError as exc:
            return str(exc)
        return None if now == proposal.params["after"] else "crontab -l does not show what was written"



@register
class CronFile(ActionKind):
    name = "cron.file"
    summary = "Write or remove a system crontab file (/etc/cron.d/zenctl), atomically, mode 0644."
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return diff(p["before"], p["after"], p["path"])

    def changes(self, proposal: Proposal) -> list[str]:
        return [proposal.params["path"]]

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        current = read_file(p["path"])
        if current != p["before"]:
            raise ActionFailed(f"{p['path']} changed since the plan; run the command again")
        try:
            if p["after"] is None:
                if current is not None:
                    os.unlink(p["path"])
                return Applied(f"removed {p['path']}", {"existed": current is not None})
            write_atomic(p["path"], p["after"], 0o644)
        except OSError as exc:
            raise ActionFailed(f"cannot write {p['path']}: {exc.strerror}") from None
        return Applied(f"wrote {p['path']} ({len(p['after'].splitlines())} lines)", {"existed": current is not None})

    def verify(self, proposal: Proposal) -> str | None:
        return None if read_file(proposal.params["path"]) == proposal.params["after"] else \
            f"{proposal.params['path']} does not hold what was written"
