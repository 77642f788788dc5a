"""Rotating logs like logrotate, as a list of steps that can be replayed backwards.

A rotation is planned from what is on disk: drop the generations beyond `keep`, shift the others, move the live
file aside (or copy and cut it, with copytruncate), then compress. Each step names the inode it expects and is
re-checked when applied, each knows its inverse: a rotation that fails half-way is put back on the spot, and
`zenctl rollback` puts the pre-rotation files back later (`logs.unrotate`).

Two of logrotate's failure modes are avoided by design:
- Rotation state. logrotate keeps one state file, and a bad line in it stopped every rotation while disks filled.
  Here the time a file was last rotated comes from zenctl's audit of its own rotations and, failing that, from the
  newest generation on disk; neither being missing or wrong stops a size trigger, and a log with no history at all
  counts as due. Leftovers of a rotation that died (a generation both plain and compressed, half-written
  temporary files) are cleared by the next one instead of failing it.
- copytruncate loss. logrotate copies the file, then truncates it, and what was written in between is lost. Here
  the copied part is cut off the front with fallocate(FALLOC_FL_COLLAPSE_RANGE), which the kernel serialises with
  appending writes, so nothing is lost. The cut is at a block boundary, so the rotated file's last line may
  continue at the start of the live file. Where the file system cannot collapse (tmpfs, NFS) the classic copy and
  truncate is used, and the result says so.

Root rotates logs in directories that other accounts write (/var/log/app owned by app), so, as logrotate's `su`
checks do, nothing found there is trusted by name (see `open_dir` and `_open`): the directories on a log's way
must be real (a symlink is followed only where root alone could have placed it) and writable only by root and the
owner of the log's directory; every file is opened relative to its directory's descriptor, never through a
symlink, and must be a regular file with one name; a generation keeps the live log's owner and mode.

A set with `su: USER GROUP` (a directory such as Ubuntu's /var/log, root:syslog 0775) also accepts directories
that user and group can write, and, as logrotate's su does, plans and applies its rotation (and rollback) with
their file-system identity (`acting_as`: setfsuid/setfsgid, per thread), so a check missed can do no more than that
account could. The postrotate command still runs as root, as logrotate's scripts do.
"""

import contextlib
import errno
import functools
import glob
import grp
import os
import pwd
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zenctl.core import dirwalk
from zenctl.core.timeutil import ago
from zenctl.core.units import human_bytes
from zenctl.core.untrusted import name as shown

if TYPE_CHECKING:
    import ctypes

FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_INSERT_RANGE = 0x20
_CHUNK = 1 << 20
_GENERATION = re.compile(r"(\.\d+|-\d{8}(-\d{6})?)(\.gz)?$|\.gz$|\.zenctl-(tmp|drop)$")


@functools.cache
def _libc() -> "ctypes.CDLL":
    """libc, for fallocate and setfsuid/setfsgid: looked up on first use, since find_library forks ldconfig (every
    run imports this module; few rotate)."""
    import ctypes
    import ctypes.util  # imports shutil, lzma and bz2: only when a rotation needs libc

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    libc.setfsuid.argtypes = libc.setfsgid.argtypes = [ctypes.c_uint]
    return libc


_acting = threading.local()  # .ids: the (uid, gid) `acting_as` gave this thread, trusted like root by `_writer`


class StepFailed(Exception):
    """A step could not be applied or reverted; the message says which file and why."""


def error_text(exc: Exception) -> str:
    """One line for a failed step: the file and the system's reason, or the step's own message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{shown(str(exc.filename)) + ': ' if exc.filename else ''}{exc.strerror}"
    return str(exc)


@dataclass
class FilePlan:
    """The rotation of one log file: why it is due, its steps, and about how many bytes it frees."""

    log: str
    why: str
    steps: list[dict] = field(default_factory=list)
    frees: int = 0


@dataclass
class SetPlan:
    name: str
    files: list[FilePlan] = field(default_factory=list)
    not_due: int = 0
    errors: list[str] = field(default_factory=list)
    su: tuple[int, int] | None = None


# Who root acts as ------------------------------------------------------------------------------------------------

def _fs_ids() -> tuple[int, int]:
    """This thread's file-system uid and gid, as the kernel has them."""
    with open("/proc/thread-self/status", "rb") as status:
        fields = dict(line.split(b":", 1) for line in status.read().splitlines() if b":" in line)
    return int(fields[b"Uid"].split()[3]), int(fields[b"Gid"].split()[3])


def _set_fs_ids(ids: tuple[int, int]) -> None:
    """setfsgid/setfsuid never report failure: the result is read back from /proc (StepFailed when not taken)."""
    _libc().setfsgid(ids[1])
    _libc().setfsuid(ids[0])
    got = _fs_ids()
    if got != tuple(ids):
        raise StepFailed(f"could not take the file-system identity {_user(ids[0])}:{_group(ids[1])} (it is "
                         f"{_user(got[0])}:{_group(got[1])}; su needs zenctl to run as root); refused")


@contextlib.contextmanager
def acting_as(ids):
    """Run the block with the file-system identity `ids` (uid, gid) on this thread only (setfsuid/setfsgid are per
    thread): files are opened, created, renamed and deleted as that account could, with no capability to override
    its permissions unless the uid is 0. Directories `ids` can write are trusted too (`_writer`). None: as we are.
    Nothing else may run in the block (modules must be imported before: a stdlib under /root is out of reach)."""
    if ids is None:
        yield
        return
    _load_what_rotation_needs()
    before, trusted = _fs_ids(), getattr(_acting, "ids", None)
    try:
        _set_fs_ids(tuple(ids))
        _acting.ids = tuple(ids)
        yield
    finally:
        _acting.ids = trusted
        _set_fs_ids(before)


def _load_what_rotation_needs() -> None:
    """Import, while still ourselves, the modules a rotation uses: they are imported on first use (a health check
    that rotates nothing does not pay for them), and once the identity changes the stdlib may be out of reach."""
    import gzip  # noqa: F401
    import zlib  # noqa: F401

    _libc()


def as_ourselves():
    """Back to zenctl's own identity inside `acting_as` (the postrotate command runs as root, as logrotate's)."""
    return acting_as((os.geteuid(), os.getegid()))


# Where root may act -----------------------------------------------------------------------------------------------

def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _as_su(ids: tuple[int, int]) -> str:
    return f"acting as su {_user(ids[0])} {_group(ids[1])}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _writer(st: os.stat_result, owner: int, sticky_ok: bool, su: bool = True) -> str | None:
    """Who besides root, zenctl's own account, `owner` and (with `su`) the identity acted as can change the entries
    of the directory `st`, in words (None: nobody). In a sticky directory (/tmp) other users cannot replace what they
    do not own: with `sticky_ok` they do not count."""
    su_uid, su_gid = (getattr(_acting, "ids", None) if su else None) or (0, 0)
    if st.st_uid not in (0, os.geteuid(), owner, su_uid):
        return f"user {_user(st.st_uid)}"
    if st.st_mode & stat.S_IWGRP and st.st_gid not in (0, os.getegid(), su_gid):
        return f"group {_group(st.st_gid)}"
    if st.st_mode & stat.S_IWOTH and not (sticky_ok and st.st_mode & stat.S_ISVTX):
        return "every user"
    return None


def open_dir(directory: str) -> int:
    """A descriptor of the log directory `directory`, walked from / one name at a time. Refused (StepFailed): a
    symlink in a directory that anyone but root can change (it could point anywhere, root's own directories
    included; su does not change that), and a directory on the way writable by anyone but root, the owner of
    `directory` and the su account acted as (who could swap what follows for a link or another directory). The owner of the log directory may write in it: everything
    there is opened relative to this descriptor and checked after opening (`_open`)."""
    passed: list[tuple[str, os.stat_result]] = []
    try:  # su's group could point a symlink at root's files: only root-placed links are followed
        fd = dirwalk.open_dir(directory, lambda st: _writer(st, 0, False, su=False), passed)
    except OSError as exc:
        raise StepFailed(exc.strerror if isinstance(exc.strerror, str) and exc.errno in (errno.ELOOP, errno.EAGAIN)
                         else f"{shown(directory)}: {exc.strerror or exc}") from None
    final = os.fstat(fd)
    for path, st in passed:
        who = _writer(st, final.st_uid, st.st_ino != final.st_ino or st.st_dev != final.st_dev)
        if who:
            os.close(fd)
            raise StepFailed(f"{shown(path)} is writable by {who}; refused (the directories on a log's way may "
                             f"be writable only by root, the owner of the log's directory and the set's su user "
                             f"and group)")
    return fd


@contextlib.contextmanager
def _at(path: str, *others: str):
    """The checked descriptor of `path`'s directory and the file names of `path` and `others` (its siblings)."""
    directory, name = os.path.split(path)
    if any(os.path.dirname(other) != directory for other in others):
        raise StepFailed(f"{shown(path)}: its generations must be in its own directory")
    fd = open_dir(directory)
    try:
        yield fd, name, *(os.path.basename(other) for other in others)
    finally:
        os.close(fd)


def _check(st: os.stat_result, path: str, ino: int | None = None, uid: int | None = None) -> os.stat_result:
    """A file root may read, write or move: regular, with one name, the inode planned, owned by `uid`."""
    if stat.S_ISLNK(st.st_mode):
        raise StepFailed(f"{shown(path)} is a symlink; refused (a log is rotated as the file itself, never "
                         f"through a link)")
    if not stat.S_ISREG(st.st_mode):
        raise StepFailed(f"{shown(path)} is not a regular file; refused")
    if st.st_nlink > 1:
        raise StepFailed(f"{shown(path)} has {st.st_nlink} names (hard links); refused")
    if ino is not None and st.st_ino != ino:
        raise StepFailed(f"{shown(path)} was replaced since it was observed")
    if uid is not None and st.st_uid != uid:
        raise StepFailed(f"{shown(path)} is owned by {_user(st.st_uid)}, not by the log's owner {_user(uid)}; "
                         f"refused")
    return st


def _lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _expect(dfd: int, name: str, path: str, ino: int | None, uid: int | None = None) -> os.stat_result:
    st = _lstat(dfd, name)
    if st is None:
        raise StepFailed(f"{shown(path)} is gone since it was observed")
    return _check(st, path, ino, uid)


def _open(dfd: int, name: str, path: str, flags: int, ino: int | None = None,
          uid: int | None = None) -> tuple[int, os.stat_result]:
    """Open a file of a log directory after and before checking it (`_check`): what the name points to can change
    in between, what the descriptor holds cannot. O_NONBLOCK: a FIFO swapped in never hangs the open."""
    seen = _expect(dfd, name, path, ino, uid)
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT):
            raise StepFailed(f"{shown(path)} was replaced since it was observed") from None
        raise
    try:
        return fd, _check(os.fstat(fd), path, seen.st_ino, uid)
    except BaseException:
        os.close(fd)
        raise


def find_logs(globs: list[str]) -> tuple[list[str], list[str]]:
    """Regular files the globs match, never a rotated generation (.1, -20261124, .gz) of another log; and why the
    others were refused (a symlink, a hard link, a directory on the way that others can change)."""
    names: dict[str, set[str]] = {}
    for pattern in globs:
        for path in glob.glob(pattern):
            directory, name = os.path.split(path)
            if not _GENERATION.search(name):
                names.setdefault(directory, set()).add(name)
    found: list[str] = []
    refused: list[str] = []
    for directory in sorted(names):
        try:
            dfd = open_dir(directory)
        except FileNotFoundError:
            continue  # gone since the glob saw it: missing logs are fine
        except StepFailed as exc:
            refused.append(str(exc))
            continue
        except OSError as exc:
            refused.append(f"{shown(directory)}: {error_text(exc)}")
            continue
        try:
            for name in sorted(names[directory]):
                path, st = os.path.join(directory, name), _lstat(dfd, name)
                if st is None or stat.S_ISDIR(st.st_mode):
                    continue  # gone since the glob saw it, or a directory
                try:
                    _check(st, path)
                except StepFailed as exc:
                    refused.append(str(exc))
                else:
                    found.append(path)
        finally:
            os.close(dfd)
    return sorted(found), refused


def matching_logs(globs: list[str], su: tuple[int, int] | None = None) -> list[str]:
    """The logs the globs match that root, acting as `su` (`su_ids`), may rotate (`find_logs`)."""
    try:
        with acting_as(su):
            return find_logs(globs)[0]
    except StepFailed:
        return []


def generations(log: str, dateext: bool) -> list[tuple[str, str, bool]]:
    """Rotated generations of `log` on disk as (path, suffix, compressed), newest first."""
    directory, name = os.path.split(log)
    suffix = r"(-\d{8}(?:-\d{6})?)" if dateext else r"\.(\d+)"
    pattern = re.compile(re.escape(name) + suffix + r"(\.gz)?")
    found = []
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        if match:
            found.append((os.path.join(directory, entry), match.group(1), bool(match.group(2))))
    if dateext:
        return sorted(found, key=lambda g: (g[1], g[2]), reverse=True)
    return sorted(found, key=lambda g: (int(g[1]), g[2]))


def last_rotated(log: str, spec, recorded: float | None, now: float) -> float | None:
    """When `log` was last rotated: zenctl's record, else the newest generation's mtime; a time in the future
    (a broken clock or record) is ignored rather than trusted."""
    stamps = [recorded] if recorded is not None and recorded <= now + 60 else []
    for path, _, _ in generations(log, spec.dateext):
        try:
            mtime = os.lstat(path).st_mtime
        except OSError:
            continue
        if mtime <= now + 60:
            stamps.append(mtime)
    return max(stamps) if stamps else None


def due(log: str, st: os.stat_result, spec, last: float | None, now: float) -> str | None:
    """Why `log` should be rotated now, or None."""
    if st.st_size == 0 and not spec.rotate_empty:
        return None
    if spec.size is not None and st.st_size > spec.size:
        return f"size {human_bytes(st.st_size)} > {human_bytes(spec.size)}"
    if spec.age is not None:
        if last is None:
            return "no earlier rotation known"
        if now - last >= spec.age:
            return f"last rotated {ago(now - last)} ago (age {ago(spec.age)})"
    return None


def su_ids(spec) -> tuple[int, int] | None:
    """The uid and gid of a log set's `su` (None without su); KeyError when one is gone since the config was
    loaded. A function, not a model method: the cron path reads the config as a view (core.configcache)."""
    if spec.su is None:
        return None
    user, group = spec.su.split()
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


def plan_set(spec, recorded: dict[str, float], now: float, force: str | None = None) -> SetPlan:
    """What rotating the set would do now, seen as its su account would; with `force` (the reason), every non-empty
    file is due."""
    plan = SetPlan(spec.name)
    try:
        plan.su = su_ids(spec)
    except KeyError:
        plan.errors.append(f"su {spec.su}: no such user or group on this host (any more)")
        return plan
    try:
        with acting_as(plan.su):
            _plan_logs(plan, spec, recorded, now, force)
    except StepFailed as exc:
        plan.errors.append(str(exc))
    return plan


def _plan_logs(plan: SetPlan, spec, recorded: dict[str, float], now: float, force: str | None) -> None:
    logs, plan.errors = find_logs(spec.paths)
    for log in logs:
        try:
            st = os.lstat(log)
            why = due(log, st, spec, last_rotated(log, spec, recorded.get(log), now), now)
            if why is None and force and st.st_size:
                why = force
            if why is None:
                plan.not_due += 1
                continue
            plan.files.append(plan_file(log, st, spec, why, now, plan.errors))
        except (OSError, StepFailed) as exc:
            plan.errors.append(error_text(exc) if getattr(exc, "filename", None) else f"{shown(log)}: {exc}")


def plan_file(log: str, st: os.stat_result, spec, why: str, now: float, errors: list[str]) -> FilePlan:
    """The steps rotating `log` takes. Generations that are not plain files with one name refuse the log; one
    owned by someone else than the log's owner is not compressed (`errors` says so)."""
    plan = FilePlan(log, why)
    su = getattr(_acting, "ids", None)
    if su and su[0] != 0 and (st.st_uid != su[0] or st.st_gid not in (su[1], *os.getgroups())):
        raise StepFailed(f"owned by {_user(st.st_uid)}:{_group(st.st_gid)}, an owner zenctl cannot give its new files "
                         f"{_as_su(su)}; refused (su must name the logs' owner and group, or root)")
    _plan_leftovers(plan, log)
    gens = [(path, suffix, compressed, _check(os.lstat(path), path))
            for path, suffix, compressed in generations(log, spec.dateext)]
    gens, leave = _plan_doubles(plan, gens, errors)
    if spec.dateext:
        newest = _dated_name(log, now)
        kept, dropped = gens[:spec.keep - 1], gens[spec.keep - 1:]
    else:
        newest = f"{log}.1"
        kept = [g for g in gens if int(g[1]) < spec.keep]
        dropped = [g for g in gens if int(g[1]) >= spec.keep]
    for path, _, _, gone in dropped:
        plan.steps.append({"op": "drop", "path": path, "ino": gone.st_ino})
        plan.frees += gone.st_blocks * 512
    to_compress = [(newest, log, st.st_size)] if not spec.delaycompress else []  # (name after, where now, size)
    for path, suffix, compressed, current in sorted(kept, key=lambda g: -int(g[1])) if not spec.dateext else kept:
        target = path
        if not spec.dateext:
            target = f"{log}.{int(suffix) + 1}" + (".gz" if compressed else "")
            plan.steps.append({"op": "move", "src": path, "dst": target, "ino": current.st_ino})
        if compressed or path in leave:
            continue
        if current.st_uid != st.st_uid:
            errors.append(f"{shown(path)} is owned by {_user(current.st_uid)}, not by the log's owner "
                          f"{_user(st.st_uid)}; left uncompressed")
            continue
        to_compress.append((target, path, current.st_size))
    op = "collapse" if spec.copytruncate else "rename"
    plan.steps.append({"op": op, "src": log, "dst": newest, "ino": st.st_ino})
    if spec.compress:
        for target, now_at, size in to_compress:
            plan.steps.append({"op": "gzip", "src": target, "dst": f"{target}.gz", "uid": st.st_uid})
            plan.frees += int(size * (1 - _ratio(now_at)))
    return plan


def _plan_leftovers(plan: FilePlan, log: str) -> None:
    """Remove what a rotation of `log` that died left behind: half-written compressed files, dropped generations
    not yet deleted (hidden names only zenctl uses)."""
    directory, name = os.path.split(log)
    pattern = re.compile(rf"\.{re.escape(name)}(\.\d+|-\d{{8}}(-\d{{6}})?)(\.gz)?\.zenctl-(tmp|drop)")
    for entry in os.listdir(directory):
        if pattern.fullmatch(entry):
            path = os.path.join(directory, entry)
            left = os.lstat(path)
            if not stat.S_ISDIR(left.st_mode):
                plan.steps.append({"op": "clean", "path": path, "ino": left.st_ino})
                plan.frees += left.st_blocks * 512


def _plan_doubles(plan: FilePlan, gens: list[tuple], errors: list[str]) -> tuple[list[tuple], set[str]]:
    """A generation both plain and compressed: a rotation died after compressing and before removing the plain
    one. When the .gz holds exactly the plain file, the plain one is dropped; otherwise both are kept, and the
    plain one is not compressed (it would overwrite the other). The generations left, and those not to compress."""
    packed = {suffix: path for path, suffix, compressed, _ in gens if compressed}
    doubles, leave = set(), set()
    for path, suffix, compressed, st in gens:
        if compressed or suffix not in packed:
            continue
        if _same_content(path, packed[suffix]):
            plan.steps.append({"op": "drop", "path": path, "ino": st.st_ino})
            plan.frees += st.st_blocks * 512
            doubles.add(path)
        else:
            errors.append(f"{shown(path)} and {shown(packed[suffix])} both exist and differ; {shown(path)} is "
                          f"left uncompressed")
            leave.add(path)
    return [g for g in gens if g[0] not in doubles], leave


def _dated_name(log: str, now: float) -> str:
    for fmt in ("-%Y%m%d", "-%Y%m%d-%H%M%S"):
        name = log + time.strftime(fmt, time.localtime(now))
        if not (os.path.lexists(name) or os.path.lexists(name + ".gz")):
            return name
    raise StepFailed("rotated already within this second")


def _peek(path: str):
    """A regular file opened for reading by the plan (never through a symlink, never hanging on a FIFO)."""
    handle = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise OSError(errno.EINVAL, "not a regular file", path)
    return handle


def _ratio(path: str) -> float:
    """Compressed/original size of the file's first 64 KiB: the estimate behind "frees about"."""
    import zlib

    try:
        with _peek(path) as handle:
            head = handle.read(65536)
    except OSError:
        return 1.0
    return len(zlib.compress(head, 6)) / len(head) if head else 1.0


def _same_content(plain: str, packed: str) -> bool:
    import gzip
    import zlib

    try:
        with _peek(plain) as one, _peek(packed) as raw, gzip.GzipFile(fileobj=raw) as two:
            while True:
                chunk = one.read(_CHUNK)
                if chunk != two.read(_CHUNK):
                    return False
                if not chunk:
                    return True
    except (OSError, EOFError, zlib.error):
        return False


# Applying and reverting steps: every file is reached through its directory's checked descriptor ------------------

def _free(dfd: int, name: str, path: str) -> None:
    if _lstat(dfd, name) is not None:
        raise StepFailed(f"{shown(path)} already exists; not overwriting it")


def _hidden(name: str) -> str:
    return f".{name}.zenctl-drop"


def _clear_leftover(dfd: int, name: str) -> None:
    """A hidden name of ours left by a rotation that died: remove it, so it never blocks the next one."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dfd)


def _rename(dfd: int, source: str, target: str) -> None:
    os.rename(source, target, src_dir_fd=dfd, dst_dir_fd=dfd)


def _new_like(dfd: int, name: str, path: str, st: os.stat_result) -> int:
    """Create `name` (it must not exist) with the owner and mode of `st`; its descriptor. Acting as a su account
    other than root, which cannot give a file away (no CAP_CHOWN), a file `st`'s owner and group cannot be
    reproduced for is refused (and removed) rather than left with another owner than its content's."""
    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    try:
        if os.geteuid() == 0 or st.st_uid == os.geteuid():
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                su = getattr(_acting, "ids", None)
                if su is not None:
                    raise StepFailed(f"cannot give {shown(path)} the owner {_user(st.st_uid)}:{_group(st.st_gid)} "
                                     f"of the file it comes from {_as_su(su)}; refused (su must name the logs' "
                                     f"owner and group, or root)")
                # not root, and a group we are not in: the group stays ours
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
    except BaseException:
        if getattr(_lstat(dfd, name), "st_ino", None) == os.fstat(fd).st_ino:
            os.unlink(name, dir_fd=dfd)
        os.close(fd)
        raise
    return fd


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc().fallocate(fd, mode, offset, length) != 0:
        import ctypes

        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _copy(source: int, target: int, offset: int, count: int | None) -> int:
    """Copy `count` bytes (None: to end of file) from `source` at `offset` to the end of `target`."""
    copied = 0
    while count is None or copied < count:
        chunk = os.pread(source, _CHUNK if count is None else min(_CHUNK, count - copied), offset + copied)
        if not chunk:
            break
        os.write(target, chunk)
        copied += len(chunk)
    return copied


def apply_step(step: dict) -> None:
    """Do one planned step; fills in what its inverse needs (new inode, bytes cut, method)."""
    op = step["op"]
    if op == "clean":
        with _at(step["path"]) as (dfd, name):
            left = _lstat(dfd, name)
            if left is not None and left.st_ino == step["ino"] and not stat.S_ISDIR(left.st_mode):
                os.unlink(name, dir_fd=dfd)
    elif op == "drop":
        with _at(step["path"]) as (dfd, name):
            _expect(dfd, name, step["path"], step["ino"])
            _clear_leftover(dfd, _hidden(name))
            _rename(dfd, name, _hidden(name))  # deleted for good when the whole rotation succeeded
    elif op == "move":
        with _at(step["src"], step["dst"]) as (dfd, source, target):
            _expect(dfd, source, step["src"], step["ino"])
            _free(dfd, target, step["dst"])
            _rename(dfd, source, target)
    elif op == "rename":
        with _at(step["src"], step["dst"]) as (dfd, log, target):
            st = _expect(dfd, log, step["src"], step["ino"])
            _free(dfd, target, step["dst"])
            _rename(dfd, log, target)
            try:
                fd = _new_like(dfd, log, step["src"], st)
                step["created"] = os.fstat(fd).st_ino
                os.close(fd)
            except FileExistsError:
                step["created"] = None  # the writer made a new one already
            except BaseException:
                if _lstat(dfd, log) is None:
                    _rename(dfd, target, log)  # no new live file: the step is not done, the log stays where it was
                raise
    elif op == "collapse":
        _cut(step)
    elif op == "gzip":
        _recode(step["src"], step["dst"], step.get("uid"), compress=True)


def _cut(step: dict) -> None:
    """copytruncate without the loss: copy whole blocks, then collapse them off the front of the live file."""
    with _at(step["src"], step["dst"]) as (dfd, log, target):
        fd, st = _open(dfd, log, step["src"], os.O_RDWR, step["ino"])
        try:
            _free(dfd, target, step["dst"])
            out = _new_like(dfd, target, step["dst"], st)
            try:
                block = os.fstatvfs(fd).f_bsize
                aligned = st.st_size - st.st_size % block
                step["method"], step["bytes"] = "truncate", 0
                if aligned:
                    _copy(fd, out, 0, aligned)
                    os.fsync(out)
                    try:
                        _fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, aligned)
                        step["method"], step["bytes"] = "collapse", aligned
                        return
                    except OSError as exc:
                        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                            raise
                # the classic copy and truncate: what arrives between the last read and the truncate is lost
                total = aligned + _copy(fd, out, aligned, None)
                os.fsync(out)
                os.ftruncate(fd, 0)
                step["bytes"] = total
            finally:
                os.close(out)
        finally:
            os.close(fd)


def _recode(source: str, target: str, uid: int | None, compress: bool) -> None:
    """Compress (or decompress) `source` to a temporary file beside `target` with its owner, mode and times, rename
    it into place, then remove `source`: at every moment one whole copy exists. The content read is the file
    checked (`_open`), so the new file never gets an owner other than the one of what it holds (`uid`, the live
    log's, when the plan recorded it)."""
    import gzip

    with _at(source, target) as (dfd, name, packed):
        fd, st = _open(dfd, name, source, os.O_RDONLY, uid=uid)
        try:
            _free(dfd, packed, target)
            temporary = f".{packed}.zenctl-tmp"
            _clear_leftover(dfd, temporary)
            try:
                with os.fdopen(_new_like(dfd, temporary, target, st), "wb") as raw, \
                        os.fdopen(fd, "rb", closefd=False) as data:
                    if compress:
                        out = gzip.GzipFile(filename=os.fsencode(name), mode="wb", fileobj=raw,
                                            mtime=int(st.st_mtime))
                    reader = data if compress else gzip.GzipFile(fileobj=data)
                    with out if compress else contextlib.nullcontext(raw) as sink:
                        while chunk := reader.read(_CHUNK):
                            sink.write(chunk)
                    raw.flush()
                    os.fsync(raw.fileno())
                    os.utime(raw.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
                _rename(dfd, temporary, packed)
            except BaseException:
                _clear_leftover(dfd, temporary)
                raise
            if getattr(_lstat(dfd, name), "st_ino", None) == st.st_ino:
                os.unlink(name, dir_fd=dfd)
        finally:
            os.close(fd)


def commit(steps: list[dict]) -> None:
    """The rotation succeeded: delete the dropped generations for good (what cannot be deleted now is a leftover
    the next rotation removes)."""
    for step in steps:
        if step["op"] == "drop":
            with contextlib.suppress(OSError, StepFailed), _at(step["path"]) as (dfd, name):
                _clear_leftover(dfd, _hidden(name))


def revert_step(step: dict, reopen=None, remade: set[str] | None = None) -> str:
    """Undo one applied step; what was done, in words. `reopen` runs the postrotate command, when a renamed live
    file is put back, so writers return to it. `remade`: paths an earlier inverse recreated (decompressed), whose
    inode is new, so the inode recorded for them no longer applies."""
    remade = set() if remade is None else remade
    op = step["op"]
    if op == "clean":
        return f"{shown(step['path'])} was left by a rotation that died; not restored"
    if op == "drop":
        with _at(step["path"]) as (dfd, name):
            if _lstat(dfd, _hidden(name)) is not None:
                _free(dfd, name, step["path"])
                _rename(dfd, _hidden(name), name)
                return f"kept {shown(step['path'])}"
        return f"{shown(step['path'])} was deleted (beyond keep); not restored"
    if op == "move":
        with _at(step["src"], step["dst"]) as (dfd, source, target):
            _expect(dfd, target, step["dst"], None if step["dst"] in remade else step["ino"])
            _free(dfd, source, step["src"])
            _rename(dfd, target, source)
        return f"moved {shown(step['dst'])} back to {shown(step['src'])}"
    if op == "gzip":
        _recode(step["dst"], step["src"], step.get("uid"), compress=False)
        remade.add(step["src"])
        return f"decompressed {shown(step['dst'])}"
    if op == "rename":
        return _rejoin(step, reopen, step["dst"] in remade)
    return _uncut(step)


def _rejoin(step: dict, reopen, remade: bool) -> str:
    """Put the rotated file back as the live one, with what was written to the new live file since appended:
    nothing written is lost; lines written during the undo itself may come after later ones."""
    log, rotated = step["src"], step["dst"]
    with _at(log, rotated) as (dfd, live, old):
        out, st = _open(dfd, old, rotated, os.O_WRONLY | os.O_APPEND, None if remade else step["ino"])
        try:
            newer = None
            if _lstat(dfd, live) is not None:
                newer, _ = _open(dfd, live, log, os.O_RDONLY, step.get("created"))
            copied = _copy(newer, out, 0, None) if newer is not None else 0
            os.fsync(out)
            _rename(dfd, old, live)
            if reopen:
                reopen()
            late = _copy(newer, out, copied, None) if newer is not None else 0
        finally:
            os.close(out)
            if newer is not None:
                os.close(newer)
    return f"put {shown(rotated)} back as {shown(log)} ({copied + late} byte(s) written since appended)"


def _uncut(step: dict) -> str:
    log, rotated = step["src"], step["dst"]
    if step.get("method") != "collapse":
        raise StepFailed(f"{shown(log)} was cut by copy and truncate (its file system cannot collapse ranges), so "
                         f"its old lines cannot be put back in front of the live file; they are in {shown(rotated)}")
    with _at(log, rotated) as (dfd, live, old):
        source, st = _open(dfd, old, rotated, os.O_RDONLY)
        try:
            if st.st_size != step["bytes"]:
                raise StepFailed(f"{shown(rotated)} changed size since the rotation; not putting it back")
            fd, _ = _open(dfd, live, log, os.O_RDWR, step["ino"])
            try:
                _insert_front(fd, source, step["bytes"])
            finally:
                os.close(fd)
        finally:
            os.close(source)
        if getattr(_lstat(dfd, old), "st_ino", None) == st.st_ino:
            os.unlink(old, dir_fd=dfd)
    return f"put the {step['bytes']} byte(s) of {shown(rotated)} back in front of {shown(log)}"


def _insert_front(fd: int, source: int, count: int) -> None:
    """Put the first `count` bytes of `source` in front of the live file `fd` (FALLOC_FL_INSERT_RANGE); into an
    empty file, which cannot take an inserted range, they are appended."""
    try:
        _fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, count)
    except OSError as exc:
        if exc.errno != errno.EINVAL or os.fstat(fd).st_size:
            raise
        appender = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            _copy(source, appender, 0, count)
        finally:
            os.close(appender)
    else:
        offset = 0
        while offset < count:
            chunk = os.pread(source, min(_CHUNK, count - offset), offset)
            if not chunk:
                raise StepFailed("the rotated file shrank while it was put back")
            offset += os.pwrite(fd, chunk, offset)
    os.fsync(fd)


def revert(steps: list[dict], reopen=None) -> list[str]:
    """Undo applied steps, newest first; what was done. Stops at the first step that cannot be undone, saying
    what it had done by then."""
    done: list[str] = []
    remade: set[str] = set()
    for step in reversed(steps):
        try:
            done.append(revert_step(step, reopen, remade))
        except (StepFailed, OSError) as exc:
            raise StepFailed(f"{error_text(exc)} (after {len(done)} of {len(steps)} step(s)"
                             + (f": {'; '.join(done)}" if done else "") + ")") from None
    return done


def revertible(steps: list[dict]) -> str | None:
    """Why the applied steps can no longer be undone as recorded (a later rotation moved things), or None."""
    present: dict[str, bool] = {}

    def exists(path: str) -> bool:
        return present[path] if path in present else os.path.lexists(path)

    for step in reversed(steps):
        op = step["op"]
        if op in ("drop", "clean"):
            continue
        source, target = step["src"], step["dst"]
        if not exists(target):
            return f"{shown(target)} is gone since the rotation"
        if op in ("move", "gzip") and exists(source):
            return f"{shown(source)} exists again since the rotation"
        present[target], present[source] = False, True
    return None
