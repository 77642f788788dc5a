"""Rotating logs like logrotate, as a list of steps that can be replayed backwards.

A rotation is planned from what is on disk: drop the generations beyond `keep`, shift the others, move the live
file aside (or copy and cut it, with copytruncate), then compress. Each step names the inode it expects and is
re-checked when applied, each knows its inverse: a rotation that fails half-way is put back on the spot, and
`zenctl rollback` puts the pre-rotation files back later (`logs.unrotate`).

Two of logrotate's failure modes are avoided by design:
- Rotation state. logrotate keeps one state file, and a bad line in it stopped every rotation while disks filled.
  Here the time a file was last rotated comes from zenctl's audit of its own rotations and, failing that, from the
  newest generation on disk; neither being missing or wrong stops a size trigger, and a log with no history at all
  counts as due.
- copytruncate loss. logrotate copies the file, then truncates it, and what was written in between is lost. Here
  the copied part is cut off the front with fallocate(FALLOC_FL_COLLAPSE_RANGE), which the kernel serialises with
  appending writes, so nothing is lost. The cut is at a block boundary, so the rotated file's last line may
  continue at the start of the live file. Where the file system cannot collapse (tmpfs, NFS) the classic copy and
  truncate is used, and the result says so.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import gzip
import os
import re
import stat
import time
import zlib
from dataclasses import dataclass, field

FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_INSERT_RANGE = 0x20
_CHUNK = 1 << 20
_GENERATION = re.compile(r"(\.\d+|-\d{8}(-\d{6})?)(\.gz)?$|\.gz$")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


class StepFailed(Exception):
    """A step could not be applied or reverted; the message says which file and why."""


def error_text(exc: Exception) -> str:
    """One line for a failed step: the file and the system's reason, or the step's own message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror}"
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


def matching_logs(globs: list[str]) -> list[str]:
    """Regular files the globs match, never a rotated generation (.1, -20261124, .gz) of another log."""
    found: set[str] = set()
    for pattern in globs:
        for path in glob.glob(pattern):
            if _GENERATION.search(os.path.basename(path)):
                continue
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.add(path)
            except OSError:
                continue  # gone since the glob saw it: missing logs are fine
    return sorted(found)


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
        return sorted(found, key=lambda g: g[1], reverse=True)
    return sorted(found, key=lambda g: int(g[1]))


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
    from zenctl.agents.health.decide import human_bytes
    from zenctl.core.timeutil import ago

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


def plan_set(spec, recorded: dict[str, float], now: float, force: str | None = None) -> SetPlan:
    """What rotating the set would do now; with `force` (the reason), every non-empty file is due."""
    plan = SetPlan(spec.name)
    for log in matching_logs(spec.paths):
        try:
            st = os.lstat(log)
            why = due(log, st, spec, last_rotated(log, spec, recorded.get(log), now), now)
            if why is None and force and st.st_size:
                why = force
            if why is None:
                plan.not_due += 1
                continue
            plan.files.append(plan_file(log, st, spec, why, now))
        except (OSError, StepFailed) as exc:
            plan.errors.append(error_text(exc) if getattr(exc, "filename", None) else f"{log}: {exc}")
    return plan


def plan_file(log: str, st: os.stat_result, spec, why: str, now: float) -> FilePlan:
    plan = FilePlan(log, why)
    gens = generations(log, spec.dateext)
    if spec.dateext:
        newest = _dated_name(log, now)
        kept, dropped = gens[:spec.keep - 1], gens[spec.keep - 1:]
    else:
        newest = f"{log}.1"
        kept = [g for g in gens if int(g[1]) < spec.keep]
        dropped = [g for g in gens if int(g[1]) >= spec.keep]
    for path, _, _ in dropped:
        gone = os.lstat(path)
        plan.steps.append({"op": "drop", "path": path, "ino": gone.st_ino})
        plan.frees += gone.st_blocks * 512
    to_compress = [(newest, log, st.st_size)] if not spec.delaycompress else []  # (name after, where now, size)
    for path, suffix, compressed in sorted(kept, key=lambda g: -int(g[1])) if not spec.dateext else kept:
        current, target = os.lstat(path), path
        if not spec.dateext:
            target = f"{log}.{int(suffix) + 1}" + (".gz" if compressed else "")
            plan.steps.append({"op": "move", "src": path, "dst": target, "ino": current.st_ino})
        if not compressed:
            to_compress.append((target, path, current.st_size))
    op = "collapse" if spec.copytruncate else "rename"
    plan.steps.append({"op": op, "src": log, "dst": newest, "ino": st.st_ino})
    if spec.compress:
        for target, now_at, size in to_compress:
            plan.steps.append({"op": "gzip", "src": target, "dst": f"{target}.gz"})
            plan.frees += int(size * (1 - _ratio(now_at)))
    return plan


def _dated_name(log: str, now: float) -> str:
    for fmt in ("-%Y%m%d", "-%Y%m%d-%H%M%S"):
        name = log + time.strftime(fmt, time.localtime(now))
        if not (os.path.lexists(name) or os.path.lexists(name + ".gz")):
            return name
    raise StepFailed("rotated already within this second")


def _ratio(path: str) -> float:
    """Compressed/original size of the file's first 64 KiB: the estimate behind "frees about"."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except OSError:
        return 1.0
    return len(zlib.compress(head, 6)) / len(head) if head else 1.0


# Applying and reverting steps -------------------------------------------------------------------------------------

def _expect(path: str, ino: int | None) -> os.stat_result:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise StepFailed(f"{path} is gone since it was observed") from None
    if not stat.S_ISREG(st.st_mode):
        raise StepFailed(f"{path} is not a regular file")
    if ino is not None and st.st_ino != ino:
        raise StepFailed(f"{path} was replaced since it was observed")
    return st


def _free(path: str) -> None:
    if os.path.lexists(path):
        raise StepFailed(f"{path} already exists; not overwriting it")


def _hidden(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.zenctl-drop")


def _clear_leftover(path: str) -> None:
    """A hidden name of ours left by a rotation that died: remove it, so it never blocks the next one."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _new_like(path: str, st: os.stat_result) -> int:
    """Create `path` (it must not exist) with the mode and owner of `st`; its descriptor."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    if os.geteuid() == 0 or st.st_uid == os.geteuid():
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            pass  # a group we are not in: the group stays ours
    return fd


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc.fallocate(fd, mode, offset, length) != 0:
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
    if op == "drop":
        _expect(step["path"], step["ino"])
        _clear_leftover(_hidden(step["path"]))
        os.rename(step["path"], _hidden(step["path"]))  # deleted for good when the whole rotation succeeded
    elif op == "move":
        _expect(step["src"], step["ino"])
        _free(step["dst"])
        os.rename(step["src"], step["dst"])
    elif op == "rename":
        st = _expect(step["src"], step["ino"])
        _free(step["dst"])
        os.rename(step["src"], step["dst"])
        try:
            os.close(_new_like(step["src"], st))
            step["created"] = os.lstat(step["src"]).st_ino
        except FileExistsError:
            step["created"] = None  # the writer made a new one already
    elif op == "collapse":
        _cut(step)
    elif op == "gzip":
        _gzip(step["src"], step["dst"])


def _cut(step: dict) -> None:
    """copytruncate without the loss: copy whole blocks, then collapse them off the front of the live file."""
    fd = os.open(step["src"], os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_ino != step["ino"]:
            raise StepFailed(f"{step['src']} was replaced since it was observed")
        _free(step["dst"])
        out = _new_like(step["dst"], st)
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


def _gzip(source: str, target: str) -> None:
    _recode(source, target, lambda raw, st: gzip.GzipFile(filename=os.path.basename(source), mode="wb", fileobj=raw,
                                                          mtime=int(st.st_mtime)), lambda: open(source, "rb"))


def _gunzip(source: str, target: str) -> None:
    _recode(source, target, lambda raw, st: contextlib.nullcontext(raw), lambda: gzip.open(source, "rb"))


def _recode(source: str, target: str, writer, reader) -> None:
    """Write `source` through `reader` and `writer` to a temporary file beside `target` with its mode, owner and
    times, rename it into place, then remove `source`: at every moment one whole copy exists."""
    st = _expect(source, None)
    _free(target)
    temporary = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.zenctl-tmp")
    _clear_leftover(temporary)
    try:
        fd = _new_like(temporary, st)
        with os.fdopen(fd, "wb") as raw, reader() as data:
            with writer(raw, st) as out:
                while chunk := data.read(_CHUNK):
                    out.write(chunk)
            raw.flush()
            os.fsync(raw.fileno())
        os.utime(temporary, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.rename(temporary, target)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
    os.unlink(source)


def commit(steps: list[dict]) -> None:
    """The rotation succeeded: delete the dropped generations for good."""
    for step in steps:
        if step["op"] == "drop":
            try:
                os.unlink(_hidden(step["path"]))
            except FileNotFoundError:
                pass


def revert_step(step: dict, reopen=None, remade: set[str] | None = None) -> str:
    """Undo one applied step; what was done, in words. `reopen` runs the postrotate command, when a renamed live
    file is put back, so writers return to it. `remade`: paths an earlier inverse recreated (decompressed), whose
    inode is new, so the inode recorded for them no longer applies."""
    remade = set() if remade is None else remade
    op = step["op"]
    if op == "drop":
        if os.path.lexists(_hidden(step["path"])):
            _free(step["path"])
            os.rename(_hidden(step["path"]), step["path"])
            return f"kept {step['path']}"
        return f"{step['path']} was deleted (beyond keep); not restored"
    if op == "move":
        _expect(step["dst"], None if step["dst"] in remade else step["ino"])
        _free(step["src"])
        os.rename(step["dst"], step["src"])
        return f"moved {step['dst']} back to {step['src']}"
    if op == "gzip":
        _gunzip(step["dst"], step["src"])
        remade.add(step["src"])
        return f"decompressed {step['dst']}"
    if op == "rename":
        return _rejoin(step, reopen, step["dst"] in remade)
    return _uncut(step)


def _rejoin(step: dict, reopen, remade: bool) -> str:
    """Put the rotated file back as the live one, with what was written to the new live file since appended:
    nothing written is lost; lines written during the undo itself may come after later ones."""
    log, rotated = step["src"], step["dst"]
    _expect(rotated, None if remade else step["ino"])
    try:
        newer = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        newer = None
    try:
        if newer is not None and step.get("created") is not None and os.fstat(newer).st_ino != step["created"]:
            raise StepFailed(f"{log} was replaced since the rotation; not merging it")
        out = os.open(rotated, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            copied = _copy(newer, out, 0, None) if newer is not None else 0
            os.fsync(out)
        finally:
            os.close(out)
        os.rename(rotated, log)
        if reopen:
            reopen()
        late = 0
        if newer is not None:
            out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                late = _copy(newer, out, copied, None)
            finally:
                os.close(out)
    finally:
        if newer is not None:
            os.close(newer)
    return f"put {rotated} back as {log} ({copied + late} byte(s) written since appended)"


def _uncut(step: dict) -> str:
    log, rotated = step["src"], step["dst"]
    if step.get("method") != "collapse":
        raise StepFailed(f"{log} was cut by copy and truncate (its file system cannot collapse ranges), so its "
                         f"old lines cannot be put back in front of the live file; they are in {rotated}")
    st = _expect(rotated, None)
    if st.st_size != step["bytes"]:
        raise StepFailed(f"{rotated} changed size since the rotation; not putting it back")
    fd = os.open(log, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_ino != step["ino"]:
            raise StepFailed(f"{log} was replaced since the rotation")
        source = os.open(rotated, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, step["bytes"])
                offset = 0
                while offset < step["bytes"]:
                    chunk = os.pread(source, min(_CHUNK, step["bytes"] - offset), offset)
                    offset += os.pwrite(fd, chunk, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL or os.fstat(fd).st_size:
                    raise
                appender = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)  # empty: nothing to go before
                try:
                    _copy(source, appender, 0, None)
                finally:
                    os.close(appender)
            os.fsync(fd)
        finally:
            os.close(source)
    finally:
        os.close(fd)
    os.unlink(rotated)
    return f"put the {step['bytes']} byte(s) of {rotated} back in front of {log}"


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
        if op == "drop":
            continue
        source, target = step["src"], step["dst"]
        if not exists(target):
            return f"{target} is gone since the rotation"
        if op in ("move", "gzip") and exists(source):
            return f"{source} exists again since the rotation"
        present[target], present[source] = False, True
    return None
