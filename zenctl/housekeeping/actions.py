"""Housekeeping: cleaning temporary files (tmp.clean), like systemd-tmpfiles or tmpreaper, and pruning caches
(cache.prune), previewed, audited and gated like every other action. The walk's rules are in
`zenctl.housekeeping.tmpclean`; log rotation is in `zenctl.housekeeping.log_actions`.

tmp.clean parameters: the tmp root's config (root, age, age_by, exclude, skip_open, remove_empty_dirs) and what the
preview walk found (files, dirs, bytes). cache.prune parameters: the cache's config (path, max_size, max_age,
exclude, skip_open), cutoff (files last used at or before it go), files, bytes, total. Deleted files are not kept,
so neither can be undone.
"""

from zenctl.core.actions import ActionKind, Applied, Proposal, register


def still_over(proposal: Proposal) -> str | None:
    """For the last housekeeping action on a full mount (the health check sets `disk` in its context): whether the
    mount is still over its threshold, which makes the repair a failure for the ladder."""
    disk = proposal.context.get("disk")
    if not disk:
        return None
    from zenctl.housekeeping.space import over

    return over(disk["mountpoint"], disk["threshold"])


SPEC_KEYS = ("root", "age", "age_by", "exclude", "skip_open", "remove_empty_dirs")


def _spec(params: dict):
    from zenctl.housekeeping.config import TmpRoot

    return TmpRoot(**{key: params[key] for key in SPEC_KEYS})


@register
class CleanTemporaryFiles(ActionKind):
    name = "tmp.clean"
    summary = "Delete old files and empty directories under a temporary root, never leaving it or following links."
    irreversible_why = "deleted temporary files are not kept"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        from zenctl.core.units import human_bytes

        return (f"delete {p['files']} file(s) and {p['dirs']} empty dir(s), {human_bytes(p['bytes'])}, "
                f"under {p['root']} (older than {p['age']:g} s by {'/'.join(p['age_by'])})")

    def apply(self, proposal: Proposal) -> Applied:
        from zenctl.housekeeping.tmpclean import Walker

        sweep = Walker(_spec(proposal.params), delete=True).run()
        return Applied(sweep.summary("deleted"), {"files": sweep.files, "dirs": sweep.dirs, "bytes": sweep.bytes,
                                                  "errors": sweep.errors[:20]})

    def verify(self, proposal: Proposal) -> str | None:
        return still_over(proposal)  # apply re-checked each entry before deleting it; what it kept, it says


CACHE_KEYS = ("path", "max_size", "max_age", "exclude", "skip_open")


@register
class PruneCache(ActionKind):
    name = "cache.prune"
    summary = "Delete the least recently used files of a cache directory until it fits its size and age caps."
    irreversible_why = "pruned cache files are not kept (a cache refills itself)"

    def preview(self, proposal: Proposal) -> str:
        from zenctl.core.units import human_bytes

        p = proposal.params
        return (f"delete the {p['files']} least recently used file(s) of {p['path']}, frees {human_bytes(p['bytes'])}"
                f" ({human_bytes(p['total'])} -> {human_bytes(p['total'] - p['bytes'])})")

    def apply(self, proposal: Proposal) -> Applied:
        from zenctl.housekeeping.cacheprune import CacheWalker
        from zenctl.housekeeping.config import CacheDir

        p = proposal.params
        sweep = CacheWalker(CacheDir(**{key: p[key] for key in CACHE_KEYS}), p["cutoff"]).run()
        return Applied(sweep.summary("deleted"), {"files": sweep.files, "bytes": sweep.bytes,
                                                  "errors": sweep.errors[:20]})

    def verify(self, proposal: Proposal) -> str | None:
        return still_over(proposal)  # apply re-checked each file's last use before deleting it
