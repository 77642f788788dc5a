"""Snapshots for rollback: before an action changes a path, what was there (content, mode, owner, or the fact that
nothing was) is stored; after it, a fingerprint of what the action left.

Contents go to a content-addressed store beside the state file (`<state>.snapshots/ab/cdef…`, named by SHA-256,
so the same bytes are stored once). Rollback refuses a path whose fingerprint no longer matches what the action
left, because then someone else changed it since and restoring would destroy their change (`--force` overrides).
"""

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from zenctl.core import dirwalk, seals, sharing
from zenctl.core.state import State

_CHUNK = 1 << 20


def store_dir(state: State) -> Path:
    return Path(f"{state.path}.snapshots")


@dataclass
class Saved:
    """One path as it was: `existed`, its type, mode, owner, content blob (regular files) or link target."""

    path: str
    existed: bool
    ftype: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    blob: str | None = None
    link: str | None = None


def _ftype(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _put_blob(state: State, name: str, parent: int) -> str:
    """Copy a file's bytes into the store; its SHA-256. With a shared state group members write the store, so
    every step is relative to directory descriptors (a symlinked fan-out directory is refused, not followed) and
    the copy always replaces whatever carries its name (a planted file is never taken for the content)."""
    root = sharing.open_dir(store_dir(state), state.path)
    digest = hashlib.sha256()
    tmp = f".incoming-{os.urandom(8).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=root)
    try:
        with open(name, "rb", opener=_at(parent)) as source, os.fdopen(fd, "wb") as out:
            if os.fstat(source.fileno()).st_mode & 0o004:  # only a world-readable file's copy is group-readable
                sharing.fix_file(out.fileno(), state.path)
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        name = digest.hexdigest()
        fan = sharing.open_dir(name[:2], state.path, dir_fd=root)
        try:
            os.rename(tmp, name[2:], src_dir_fd=root, dst_dir_fd=fan)
        finally:
            os.close(fan)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=root)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(root)
    return digest.hexdigest()


def _no_follow(path: str, flags: int) -> int:
    """Open without following a final symlink or blocking on a FIFO."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def _at(parent: int):
    """An opener relative to a directory descriptor, as `_no_follow`."""
    return lambda name, flags: os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)


def blob_path(state: State, digest: str) -> Path:
    return store_dir(state) / digest[:2] / digest[2:]


def capture(state: State, path: str) -> Saved:
    """What is at `path` now, with its content stored when it is a regular file. The path is reached without
    following a symlink another account could have placed on the way (`dirwalk`); one that cannot be reached so
    is recorded as an unreachable `other`, which rollback will not restore."""
    try:
        parent, name = dirwalk.open_parent(path)
    except FileNotFoundError:
        return Saved(path, False)
    except OSError:
        return Saved(path, True, "other")
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return Saved(path, False)
        saved = Saved(path, True, _ftype(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        if saved.ftype == "file":
            saved.blob = _put_blob(state, name, parent)
        elif saved.ftype == "symlink":
            saved.link = os.readlink(name, dir_fd=parent)
        return saved
    finally:
        os.close(parent)


def fingerprint(path: str) -> dict:
    """What rollback compares: type, mode, owner, and the content hash of a regular file (reached as `capture`
    reaches it; `unreachable` when it cannot be)."""
    try:
        parent, name = dirwalk.open_parent(path)
    except FileNotFoundError:
        return {"exists": False}
    except OSError as exc:
        return {"exists": True, "unreachable": exc.strerror or str(exc)}
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return {"exists": False}
        out = {"exists": True, "type": _ftype(st.st_mode), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
               "gid": st.st_gid}
        if out["type"] == "file":
            digest = hashlib.sha256()
            with open(name, "rb", opener=_at(parent)) as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            out["sha256"] = digest.hexdigest()
        elif out["type"] == "symlink":
            out["link"] = os.readlink(name, dir_fd=parent)
        return out
    finally:
        os.close(parent)


def record(state: State, action_id: str, saved: list[Saved], seal_as: int | None = None) -> None:
    """Store the before-images of an action (inside a write transaction, before the action runs), sealed by this
    process or, for a step root takes as another account, by that account (`seal_as`)."""
    state.conn.executemany(
        "INSERT INTO snapshots (action_id, path, existed, ftype, mode, uid, gid, blob, link) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(action_id, s.path, int(s.existed), s.ftype, s.mode, s.uid, s.gid, s.blob, s.link) for s in saved])
    seals.reseal(state.conn, state.path, "snapshots", "action_id", action_id, seal_as)


def record_after(state: State, action_id: str, seal_as: int | None = None) -> None:
    """Fingerprint what the action left, for rollback's 'changed since' check."""
    rows = state.conn.execute("SELECT id, path FROM snapshots WHERE action_id = ?", (action_id,)).fetchall()
    for row_id, path in rows:
        state.conn.execute("UPDATE snapshots SET after = ? WHERE id = ?", (json.dumps(fingerprint(path)), row_id))
    seals.reseal(state.conn, state.path, "snapshots", "action_id", action_id, seal_as)


def saved_for(state: State, action_id: str) -> list[tuple[Saved, dict | None]]:
    rows = state.conn.execute("SELECT path, existed, ftype, mode, uid, gid, blob, link, after FROM snapshots "
                              "WHERE action_id = ? ORDER BY id", (action_id,)).fetchall()
    return [(Saved(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]), json.loads(r[8]) if r[8] else None)
            for r in rows]


def changed_since(saved: Saved, after: dict | None) -> str | None:
    """Why `saved.path` no longer looks the way its action left it, or None."""
    if after is None:
        return "the action never finished recording what it left (interrupted?)"
    now = fingerprint(saved.path)
    if "unreachable" in now:
        return f"it cannot be reached safely ({now['unreachable']})"
    if now == after:
        return None
    if now.get("exists") != after.get("exists"):
        return "it " + ("was created" if now.get("exists") else "was removed") + " since"
    for key, label in (("type", "type"), ("sha256", "content"), ("mode", "mode"), ("uid", "owner"),
                       ("gid", "group"), ("link", "link target")):
        if now.get(key) != after.get(key):
            shown = f"{now.get(key):04o} now, {after.get(key):04o} after the action" if key == "mode" and \
                isinstance(now.get(key), int) and isinstance(after.get(key), int) else "differs"
            return f"its {label} changed since ({shown})"
    return "it changed since"


def describe_restore(saved: Saved) -> str:
    if not saved.existed:
        return f"remove {saved.path} (it did not exist before)"
    if saved.mode is None:
        return f"nothing to restore at {saved.path} (it could not be reached safely when it was captured)"
    what = {"file": "content, mode and owner", "directory": "mode and owner", "symlink": "link"}.get(
        saved.ftype or "", "metadata")
    return f"restore {saved.path} ({what}: mode {saved.mode:04o}, owner {saved.uid}:{saved.gid})"


def restore(store: Path, saved: Saved) -> None:
    """Put `saved.path` back byte for byte: remove what did not exist, rewrite a file's content atomically (same
    directory, then rename), reset mode and owner. Everything relative to the directory's descriptor, reached
    without following a symlink others could have placed (`dirwalk`). OSError when refused or refusing."""
    if saved.ftype == "other" and saved.mode is None:
        raise OSError(f"{saved.path} could not be reached safely when it was captured; nothing to restore")
    parent, name = dirwalk.open_parent(saved.path)
    try:
        _restore_at(store, saved, parent, name)
    finally:
        os.close(parent)


def _restore_at(store: Path, saved: Saved, parent: int, name: str) -> None:
    path = saved.path
    if not saved.existed:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=parent)  # only when empty: a directory that gained content since is not ours
        else:
            os.unlink(name, dir_fd=parent)
        return
    if saved.ftype == "file":
        _restore_file(store, saved, parent, name)
        return
    if saved.ftype == "symlink":
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        os.symlink(saved.link, name, dir_fd=parent)
        return
    try:  # mode and owner through a descriptor: a name swapped for a symlink in between is never followed
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"{path} is now a symlink; not following it") from None
        raise
    try:
        st = os.fstat(fd)
        if st.st_uid != saved.uid or st.st_gid != saved.gid:
            os.fchown(fd, saved.uid, saved.gid)
        os.fchmod(fd, saved.mode)  # after the chown, which clears setuid and setgid bits
    finally:
        os.close(fd)


def _restore_file(store: Path, saved: Saved, parent: int, name: str) -> None:
    """A new file beside `saved.path` with the snapshot's bytes (checked against its hash before anything is
    replaced: the store is group-writable), mode and owner set on the descriptor (the temporary name lives in a
    directory others may write), then renamed over the path."""
    tmp = f".{name}.zenctl-{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
    try:
        digest = hashlib.sha256()
        with open(store / saved.blob[:2] / saved.blob[2:], "rb", opener=_no_follow) as source, \
                os.fdopen(fd, "wb", closefd=False) as out:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise OSError(f"its snapshot copy {saved.blob} is not a regular file")
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != saved.blob:
            raise OSError(f"its snapshot copy {saved.blob} was altered (content hash {digest.hexdigest()})")
        if os.geteuid() == 0 or saved.uid == os.geteuid():
            os.fchown(fd, saved.uid, saved.gid)
        os.fchmod(fd, saved.mode)  # after the chown, which clears setuid and setgid bits
        os.fsync(fd)
        os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=parent)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)
