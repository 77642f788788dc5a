"""Walking a temporary-files root the way systemd-tmpfiles and tmpreaper should: what is old enough to delete,
and deleting it without ever leaving the root.

Every step is relative to an open directory descriptor: subdirectories are opened with O_NOFOLLOW from their
parent's descriptor, so a directory swapped for a symlink mid-run fails to open instead of leading elsewhere, and
`unlinkat` removes a name inside the directory we hold, whatever happened to its path since. Because a held
directory can be renamed out of the root (and its files would then be deleted where it went), each directory is
checked to be still reachable from the root, name by name, before the first deletion in it and every RECHECK
deletions after that; one moved away is left alone from then on.

A directory on another mount is not entered: st_dev catches other file systems before the directory is opened,
and the mount id of the opened descriptor (/proc/self/fdinfo) catches bind mounts of the same file system. The
walk is a loop, not recursion: at most MAX_DEPTH levels (deeper directories are kept and counted) and at most
`seconds` (the rest is left for the next run, and the summary says so).

Only regular files, symlinks (the link itself) and empty directories are deleted; FIFOs, sockets and device nodes
are never opened or deleted, and by default neither is anything a process uses: files it holds open (/proc/*/fd),
runs (/proc/*/exe) or maps (/proc/*/maps), and directories that are its working or root directory.
File names are bytes; in messages they are escaped losslessly (`untrusted.name`).
"""

import os
import stat
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from zenctl.core.units import human_bytes
from zenctl.core.untrusted import name as shown

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 128  # each level holds a descriptor: well under the usual limit of 1024, and deeper than real tmp trees
WALK_SECONDS = 300.0  # one walk's budget; a run holds the lock while it walks
RECHECK = 32  # deletions in a directory between two checks that it is still inside the root


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
    kept_deep: int = 0
    stopped: float | None = None  # seconds after which the time budget stopped the walk (None: it finished)
    errors: list[str] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        kept = [f"{n} {what}" for n, what in ((self.kept_open, "open"), (self.kept_special, "FIFO/socket/device"),
                                               (self.kept_other_fs, "on another file system"),
                                               (self.kept_deep, f"directories deeper than {MAX_DEPTH} levels")) if n]
        text = f"{verb} {self.files} file(s) and {self.dirs} empty dir(s), {human_bytes(self.bytes)}, under {self.root}"
        if kept:
            text += f" (kept: {', '.join(kept)})"
        if self.stopped is not None:
            text += f"; stopped after {self.stopped:g} s (time limit), the rest is left for the next run"
        if self.errors:
            text += f"; {len(self.errors)} error(s), first: {self.errors[0]}"
        return text


def _add(held: set[tuple[int, int]], path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        held.add((st.st_dev, st.st_ino))


def _add_mapped(held: set[tuple[int, int]], maps: str) -> None:
    """Files a process maps (its libraries, mmap'ed data): `dev` (hex major:minor) and inode of each line."""
    try:
        with open(maps, "rb") as lines:
            for line in lines:
                fields = line.split(None, 5)
                if len(fields) > 5 and fields[4] != b"0":
                    major, minor = fields[3].split(b":")
                    held.add((os.makedev(int(major, 16), int(minor, 16)), int(fields[4])))
    except (OSError, ValueError):
        return


def open_files() -> set[tuple[int, int]]:
    """(device, inode) of everything a process we can see uses: open files, its executable, mapped files, its
    working and root directories. As root that is every process; as another user only its own, which is why
    cleaning shared roots belongs to root."""
    held: set[tuple[int, int]] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        base = f"/proc/{pid}"
        try:
            fds = os.listdir(f"{base}/fd")
        except OSError:
            continue
        for fd in fds:
            _add(held, f"{base}/fd/{fd}")
        for link in ("exe", "cwd", "root"):
            _add(held, f"{base}/{link}")
        _add_mapped(held, f"{base}/maps")
    return held


def mount_id(fd: int) -> int:
    """The mount a descriptor is on (fdinfo `mnt_id`, Linux 3.15+). Unlike st_dev it tells a bind mount of the
    same file system apart, and it names the mount of the very directory we hold, with no path to race."""
    try:
        info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            text = os.read(info, 4096)
        finally:
            os.close(info)
    except OSError:
        text = b""
    for line in text.splitlines():
        if line.startswith(b"mnt_id:"):
            return int(line.split()[1])
    raise OSError(0, "cannot tell mounts apart without /proc/self/fdinfo (is /proc mounted?); not cleaned")


def _age_stamp(st: os.stat_result, age_by: list[str]) -> float:
    """The newest of the chosen times: a file is old only when every chosen time is old."""
    return max(getattr(st, f"st_{name}") for name in age_by)


@dataclass
class _Dir:
    """A directory being swept: held open, with its listing and where it was found."""

    fd: int
    name: str  # its name in its parent ("" for the root)
    relative: str  # its path under the root with a trailing slash ("" for the root)
    st: os.stat_result  # as listed in its parent (times for the age test)
    ident: tuple[int, int]  # (device, inode) of the opened directory
    entries: list
    index: int = 0
    empty: bool = True
    unchecked: int | None = None  # deletions since it was last found inside the root (None: not yet checked)


class Walker:
    def __init__(self, spec, now: float | None = None, delete: bool = False, seconds: float = WALK_SECONDS):
        self.spec, self.delete, self.seconds = spec, delete, seconds
        self.cutoff = (now or time.time()) - spec.age
        self.sweep = Sweep(spec.root)
        self.held = open_files() if spec.skip_open else set()
        self.device = self.mount = 0
        self.stack: list[_Dir] = []

    def excluded(self, relative: str, name: str) -> bool:
        return any(fnmatchcase(relative, pattern) or fnmatchcase(name, pattern) for pattern in self.spec.exclude)

    def run(self) -> Sweep:
        try:
            fd = os.open(self.spec.root, _DIR_FLAGS)
        except OSError as exc:
            self.sweep.errors.append(f"{self.spec.root}: {exc.strerror}")
            return self.sweep
        try:
            st = os.fstat(fd)
            self.device, self.mount = st.st_dev, mount_id(fd)
            self.stack.append(_Dir(fd, "", "", st, (st.st_dev, st.st_ino), self._list(fd)))
        except OSError as exc:
            os.close(fd)
            self.sweep.errors.append(f"{self.spec.root}: {exc.strerror}")
            return self.sweep
        try:
            self._walk()
        finally:
            while self.stack:
                os.close(self.stack.pop().fd)
        return self.sweep

    def _list(self, fd: int) -> list:
        with os.scandir(fd) as entries:
            return list(entries)

    def _walk(self) -> None:
        """Depth first, one entry at a time, without recursion; a directory is judged when its listing is done."""
        start = time.monotonic()
        seen = 0
        while self.stack:
            top = self.stack[-1]
            if top.index == len(top.entries):
                self.stack.pop()
                os.close(top.fd)
                if self.stack:
                    self.stack[-1].unchecked = None  # re-check the parent before deleting in it again
                    if not self._leave(top):
                        self.stack[-1].empty = False
                continue
            seen += 1
            if seen % 256 == 0 and time.monotonic() - start > self.seconds:
                self.sweep.stopped = round(time.monotonic() - start, 1)
                return
            entry = top.entries[top.index]
            top.index += 1
            relative = top.relative + entry.name
            if self.excluded(relative, entry.name):
                top.empty = False
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone already
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                may_go = self._directory(top.fd, entry.name, relative, st)
            elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                may_go = self._file(top.fd, entry.name, relative, st)
            else:
                self.sweep.kept_special += 1
                may_go = False
            if not may_go:
                top.empty = False

    def _directory(self, parent: int, name: str, relative: str, st: os.stat_result) -> bool:
        """Enter a subdirectory (it is judged when left); False when it is not entered, hence kept."""
        if st.st_dev != self.device:
            self.sweep.kept_other_fs += 1
            return False
        if len(self.stack) > MAX_DEPTH:
            self.sweep.kept_deep += 1
            return False
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:  # ELOOP: swapped for a symlink since it was listed
            self.sweep.errors.append(f"{shown(relative)}: {exc.strerror}")
            return False
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                self.sweep.errors.append(f"{shown(relative)}: replaced while walking; not entered")
            elif mount_id(fd) != self.mount:
                self.sweep.kept_other_fs += 1  # a bind mount: same st_dev, another mount
            else:
                self.stack.append(_Dir(fd, name, relative + "/", st, (opened.st_dev, opened.st_ino), self._list(fd)))
                return True
        except OSError as exc:
            self.sweep.errors.append(f"{shown(relative)}: {exc.strerror}")
        os.close(fd)
        return False

    def _leave(self, child: _Dir) -> bool:
        """Remove a directory whose listing is done, if it ended up empty and is old; True when it was (or would
        be) removed."""
        if not (child.empty and self.spec.remove_empty_dirs and _age_stamp(child.st, self.spec.age_by) < self.cutoff):
            return False
        if child.ident in self.held:  # some process's working or root directory
            self.sweep.kept_open += 1
            return False
        if self.delete:
            parent = self.stack[-1]
            try:
                if not self._inside():
                    return False
                again = os.stat(child.name, dir_fd=parent.fd, follow_symlinks=False)
                if (again.st_dev, again.st_ino) != child.ident:
                    return False  # replaced since: not ours to delete
                os.rmdir(child.name, dir_fd=parent.fd)
            except OSError:
                return False  # something arrived meanwhile: not ours to delete
        self.sweep.dirs += 1
        return True

    def _inside(self) -> bool:
        """Whether the directory we are about to delete in is still reachable from the root where it was found.
        Checked name by name from the root path down, before the first deletion and every RECHECK deletions; a
        directory found moved is left alone (with every directory below it we hold)."""
        top = self.stack[-1]
        if top.unchecked is not None and top.unchecked < RECHECK:
            top.unchecked += 1
            return True
        moved = self._moved()
        if moved is None:
            top.unchecked = 1
            return True
        where = shown(self.stack[moved].relative.rstrip("/")) or self.spec.root
        self.sweep.errors.append(f"{where}: moved out of the root while cleaning; nothing more deleted in it")
        for frame in self.stack[moved:]:
            frame.index, frame.empty = len(frame.entries), False
        return False

    def _moved(self) -> int | None:
        """The index in the stack of the first directory that is no longer where it was found, or None."""
        try:
            st = os.stat(self.spec.root, follow_symlinks=False)
        except OSError:
            return 0
        if (st.st_dev, st.st_ino) != self.stack[0].ident:
            return 0
        for level in range(1, len(self.stack)):
            child = self.stack[level]
            try:
                st = os.stat(child.name, dir_fd=self.stack[level - 1].fd, follow_symlinks=False)
            except OSError:
                return level
            if (st.st_dev, st.st_ino) != child.ident:
                return level
        return None

    def _file(self, parent: int, name: str, relative: str, st: os.stat_result) -> bool:
        """Delete one file or symlink if it is old and not in use; True when it was (or would be)."""
        if _age_stamp(st, self.spec.age_by) >= self.cutoff:
            return False
        if (st.st_dev, st.st_ino) in self.held:
            self.sweep.kept_open += 1
            return False
        if self.delete:
            if not self._inside():
                return False
            try:
                again = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if (again.st_ino != st.st_ino or _age_stamp(again, self.spec.age_by) >= self.cutoff):
                    return False  # replaced or touched since it was listed
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                return True
            except OSError as exc:
                self.sweep.errors.append(f"{shown(relative)}: {exc.strerror}")
                return False
        self.sweep.files += 1
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:  # another hard link keeps the blocks in use
            self.sweep.bytes += st.st_blocks * 512
        return True
