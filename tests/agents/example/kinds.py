"""The example agent's own action kind: append a line to a file (undone from its snapshot)."""

import os

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register


@register
class Stamp(ActionKind):
    name = "example.stamp"
    summary = "Append the example's line to a file."
    reversible = True

    def changes(self, proposal: Proposal) -> list[str]:
        return [proposal.params["path"]]

    def preview(self, proposal: Proposal) -> str:
        return f"append {proposal.params['line']!r} to {proposal.params['path']}"

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        try:
            fd = os.open(p["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise ActionFailed(f"cannot open {p['path']}: {exc.strerror}") from None
        with os.fdopen(fd, "a") as handle:
            handle.write(p["line"] + "\n")
        return Applied(self.preview(proposal).replace("append", "appended", 1))

    def verify(self, proposal: Proposal) -> str | None:
        with open(proposal.params["path"]) as handle:
            return None if proposal.params["line"] in handle.read().splitlines() else "the line is not there"
