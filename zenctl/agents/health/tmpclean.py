"""Walking a temporary-files root the way systemd-tmpfiles and tmpreaper should: what is old enough to delete,
and deleting it without ever leaving the root.

Every step is relative to an open directory descriptor: subdirectories are opened with O_NOFOLLOW from their
parent's descriptor, so a directory swapped for a symlink mid-run fails to open instead of leading elsewhere, and
`unlinkat` removes a name inside the directory we hold, whatever happened to its path since. A directory on
another device (a mount inside the root) is not entered. Only regular files, symlinks (the link itself) and empty
directories are deleted; FIFOs, sockets and device nodes are never opened or deleted, and by default neither is a
file some process holds open (found through /proc/*/fd).
"""

import os
import stat
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from zenctl.agents.health.decide import human_bytes

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Sweep:
    """What a walk found (dry) or did (delete)."""

    root: str
    files: int = 0
    bytes: int = 0
    dirs: int = 0
    kept_open: int = 0
    kept_special: int = 0
    kept_other_fs: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        kept = [f"{n} {what}" for n, what in ((self.kept_open, "open"), (self.kept_special, "FIFO/socket/device"),
                                               (self.kept_other_fs, "on another file system")) if n]
        text = f"{verb} {self.files} file(s) and {self.dirs} empty dir(s), {human_bytes(self.bytes)}, under {self.root}"
        if kept:
            text += f" (kept: {', '.join(kept)})"
        if self.errors:
            text += f"; {len(self.errors)} error(s), first: {self.errors[0]}"
        return text


def open_files() -> set[tuple[int, int]]:
    """(device, inode) of every file a process we can see holds open. As root that is every process; as another
    user only its own, which is why cleaning shared roots belongs to root."""
    held: set[tuple[int, int]] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        directory = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(directory)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{directory}/{fd}")
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                held.add((st.st_dev, st.st_ino))
    return held


def _age_stamp(st: os.stat_result, age_by: list[str]) -> float:
    """The newest of the chosen times: a file is old only when every chosen time is old."""
    return max(getattr(st, f"st_{name}") for name in age_by)


class Walker:
    def __init__(self, spec, now: float | None = None, delete: bool = False):
        self.spec, self.delete = spec, delete
        self.cutoff = (now or time.time()) - spec.age
        self.sweep = Sweep(spec.root)
        self.held = open_files() if spec.skip_open else set()
        self.device = 0

    def excluded(self, relative: str, name: str) -> bool:
        return any(fnmatchcase(relative, pattern) or fnmatchcase(name, pattern) for pattern in self.spec.exclude)

    def run(self) -> Sweep:
        try:
            fd = os.open(self.spec.root, _DIR_FLAGS)
        except OSError as exc:
            self.sweep.errors.append(f"{self.spec.root}: {exc.strerror}")
            return self.sweep
        try:
            self.device = os.fstat(fd).st_dev
            self._walk(fd, "")
        finally:
            os.close(fd)
        return self.sweep

    def _walk(self, fd: int, prefix: str) -> bool:
        """Sweep one open directory; True when it ended up empty."""
        empty = True
        with os.scandir(fd) as entries:
            listing = list(entries)
        for entry in listing:
            relative = prefix + entry.name
            if self.excluded(relative, entry.name):
                empty = False
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone already
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                if not self._directory(fd, entry.name, relative, st):
                    empty = False
            elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                if not self._file(fd, entry.name, relative, st):
                    empty = False
            else:
                self.sweep.kept_special += 1
                empty = False
        return empty

    def _directory(self, parent: int, name: str, relative: str, st: os.stat_result) -> bool:
        """Sweep a subdirectory; True when it was (or would be) removed."""
        if st.st_dev != self.device:
            self.sweep.kept_other_fs += 1
            return False
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:  # ELOOP: swapped for a symlink since it was listed
            self.sweep.errors.append(f"{relative}: {exc.strerror}")
            return False
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                self.sweep.errors.append(f"{relative}: replaced while walking; not entered")
                return False
            empty = self._walk(fd, relative + "/")
        finally:
            os.close(fd)
        if not (empty and self.spec.remove_empty_dirs and _age_stamp(st, self.spec.age_by) < self.cutoff):
            return False
        if self.delete:
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError:
                return False  # something arrived meanwhile: not ours to delete
        self.sweep.dirs += 1
        return True

    def _file(self, parent: int, name: str, relative: str, st: os.stat_result) -> bool:
        """Delete one file or symlink if it is old and not held open; True when it was (or would be)."""
        if _age_stamp(st, self.spec.age_by) >= self.cutoff:
            return False
        if (st.st_dev, st.st_ino) in self.held:
            self.sweep.kept_open += 1
            return False
        if self.delete:
            try:
                again = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if (again.st_ino != st.st_ino or _age_stamp(again, self.spec.age_by) >= self.cutoff):
                    return False  # replaced or touched since it was listed
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                return True
            except OSError as exc:
                self.sweep.errors.append(f"{relative}: {exc.strerror}")
                return False
        self.sweep.files += 1
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:  # another hard link keeps the blocks in use
            self.sweep.bytes += st.st_blocks * 512
        return True

