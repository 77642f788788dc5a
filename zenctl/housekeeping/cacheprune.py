"""Pruning a cache directory: keep it under a total size and a maximum age, least recently used first.

The walk is tmp.clean's (relative to directory descriptors, no symlinks followed, no other file systems, open
files and special files kept); only the choice differs. A file's last use is the newer of its atime and mtime.
The files to delete are always the least recently used, so the choice is one number: every file last used at or
before `cutoff` goes. That keeps the stored plan small, and a file used between the preview and the prune has a
newer stamp and is kept.
"""

import math
import stat

from zenctl.housekeeping.tmpclean import Walker, _age_stamp
from zenctl.housekeeping.config import TmpRoot

AGE_BY = ["atime", "mtime"]


class CacheWalker(Walker):
    """Collects (last use, bytes) of every file it could delete; with a cutoff, deletes those used at or before."""

    def __init__(self, cache, cutoff: float | None = None):
        root = TmpRoot(root=cache.path, age_by=AGE_BY, exclude=cache.exclude, skip_open=cache.skip_open,
                       remove_empty_dirs=False)
        super().__init__(root, delete=cutoff is not None)
        self.cutoff = math.nextafter(cutoff, math.inf) if cutoff is not None else -math.inf
        self.used: list[tuple[float, int]] = []

    def _file(self, parent: int, name: str, relative: str, st) -> bool:
        if self.delete:
            return super()._file(parent, name, relative, st)
        if (st.st_dev, st.st_ino) in self.held:
            self.sweep.kept_open += 1
            return False
        size = st.st_blocks * 512 if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 else 0
        self.used.append((_age_stamp(st, AGE_BY), size))
        return False


def choose(used: list[tuple[float, int]], cache, now: float, free_at_least: int = 0) -> tuple[float | None, int, int]:
    """The cutoff (None: nothing to delete), and how many files and bytes go: every file older than max_age, then
    the least recently used until the rest fits max_size (and `free_at_least` bytes are freed)."""
    total = sum(size for _, size in used)
    limit = cache.max_size if cache.max_size is not None else math.inf
    if free_at_least:
        limit = min(limit, total - free_at_least)
    too_old = now - cache.max_age if cache.max_age is not None else -math.inf
    cutoff, freed = None, 0
    for stamp, size in sorted(used):
        if stamp >= too_old and total - freed <= limit:
            break
        cutoff, freed = stamp, freed + size
    if cutoff is None:
        return None, 0, 0
    gone = [size for stamp, size in used if stamp <= cutoff]  # ties: files used at the same instant go together
    return cutoff, len(gone), sum(gone)
