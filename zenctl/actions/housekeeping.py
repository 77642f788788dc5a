"""Housekeeping: cleaning temporary files (tmp.clean), like systemd-tmpfiles or tmpreaper but previewed, audited
and gated like every other action. The walk's rules are in `zenctl.agents.health.tmpclean`.

Parameters: the tmp root's config (root, age, age_by, exclude, skip_open, remove_empty_dirs) and what the preview
walk found (files, dirs, bytes). Deleted temporary files are not kept, so this cannot be undone.
"""

from zenctl.core.actions import ActionKind, Applied, Proposal, register

SPEC_KEYS = ("root", "age", "age_by", "exclude", "skip_open", "remove_empty_dirs")


def _spec(params: dict):
    from zenctl.core.housekeeping_config import TmpRoot

    return TmpRoot(**{key: params[key] for key in SPEC_KEYS})


@register
class CleanTemporaryFiles(ActionKind):
    name = "tmp.clean"
    summary = "Delete old files and empty directories under a temporary root, never leaving it or following links."
    irreversible_why = "deleted temporary files are not kept"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        from zenctl.agents.health.decide import human_bytes

        return (f"delete {p['files']} file(s) and {p['dirs']} empty dir(s), {human_bytes(p['bytes'])}, "
                f"under {p['root']} (older than {p['age']:g} s by {'/'.join(p['age_by'])})")

    def apply(self, proposal: Proposal) -> Applied:
        from zenctl.agents.health.tmpclean import Walker

        sweep = Walker(_spec(proposal.params), delete=True).run()
        return Applied(sweep.summary("deleted"), {"files": sweep.files, "dirs": sweep.dirs, "bytes": sweep.bytes,
                                                  "errors": sweep.errors[:20]})

    def verify(self, proposal: Proposal) -> str | None:
        return None  # apply re-checked each entry before deleting it; what it kept, it says
