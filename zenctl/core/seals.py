"""Seals: proof of which account wrote a row that root may later act on.

With `run_as`, every member of the state's group can write the SQLite file, so a row (an action to undo, its
snapshots, a run's pid, an approval) says nothing about who wrote it. Each account that writes the state has a
secret key in `<state>.keys/<uid>.key`, readable by that account only (and root); a row root may act on carries
`uid:HMAC-SHA256(key, row)`. A group member cannot seal as root or as another account, so root acts on a row
only as the account whose seal it bears (root itself, or the account it drops to), and refuses an unsealed or
forged row. The keys directory belongs to the state's owner (root), mode 0711: an account can open its own key
by name but not list, add or replace keys. Root creates an account's key before dropping to it.

Symmetric keys verify only where the key can be read: root verifies every account's seals, an account only its
own. Signatures that anyone can verify come with the trust work (signed checkpoints).
"""

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

from zenctl.errors import StateError

KEY_BYTES = 32
_keys: dict[tuple[str, int], bytes | None] = {}


def keys_dir(state_path: Path) -> Path:
    return Path(f"{state_path}.keys")


def forget() -> None:
    """Drop cached keys (before a process gives up root, so it keeps no key but its own)."""
    _keys.clear()


def _check_dir(directory: Path) -> None:
    """The keys directory must be a real directory of the state's owner that nobody else can write."""
    st = os.lstat(directory)
    owner = os.stat(directory.parent).st_uid if os.geteuid() != 0 else 0
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (0, owner) or st.st_mode & 0o022:
        what = "directory" if stat.S_ISDIR(st.st_mode) else "non-directory"
        raise StateError(f"{directory}: is not zenctl's keys directory (a {what} owned by uid {st.st_uid}, mode "
                         f"{stat.S_IMODE(st.st_mode):04o}); remove it and run again")


def ensure_dir(state_path: Path) -> Path:
    """Create the keys directory (0711, the state's owner) if missing; StateError if one is there but not ours."""
    directory = keys_dir(state_path)
    try:
        os.mkdir(directory, 0o700)
        os.chmod(directory, 0o711)
    except FileExistsError:
        pass
    _check_dir(directory)
    return directory


def ensure_key(state_path: Path, uid: int, gid: int = -1) -> None:
    """Create `uid`'s key and its directory of used decisions if missing (root creates both for the accounts it
    drops to)."""
    used = ensure_dir(state_path) / f"{uid}.used"
    try:
        os.mkdir(used, 0o700)
        if uid != os.geteuid():
            os.chown(used, uid, gid)
    except FileExistsError:
        pass
    path = keys_dir(state_path) / f"{uid}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    except FileExistsError:
        return
    try:
        os.write(fd, os.urandom(KEY_BYTES))
        if uid != os.geteuid():
            os.fchown(fd, uid, gid)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key(state_path: Path, uid: int) -> bytes | None:
    """`uid`'s key, or None when there is none or it cannot be trusted (wrong owner, shared, linked)."""
    path = keys_dir(state_path) / f"{uid}.key"
    try:
        _check_dir(path.parent)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, StateError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_nlink != 1 or st.st_mode & 0o077:
            return None
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    return key if len(key) == KEY_BYTES else None


def _key(state_path: Path, uid: int) -> bytes | None:
    cache = (str(state_path), uid)
    if cache not in _keys:
        if uid == os.geteuid():
            try:
                ensure_key(state_path, uid)
            except (OSError, StateError):
                pass  # an account root gave no key writes unsealed rows; nobody acts on them with privilege
        _keys[cache] = _read_key(state_path, uid)
    return _keys[cache]


def _mac(key: bytes, table: str, values: tuple) -> str:
    payload = json.dumps([table, *values], default=str, separators=(",", ":"))
    return hmac.new(key, payload.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def seal(state_path: Path, table: str, values: tuple, uid: int | None = None) -> str | None:
    """This process's seal over a row's fields (root may seal as another account, `uid`, for that account to
    verify), or None when there is no key."""
    uid = os.geteuid() if uid is None else uid
    key = _key(state_path, uid) if uid == os.geteuid() or os.geteuid() == 0 else None
    return f"{uid}:{_mac(key, table, values)}" if key else None


def signer(state_path: Path, table: str, values: tuple, sealed: str | None) -> int | None:
    """The uid whose key sealed these fields, or None when unsealed, forged, or not verifiable by this process."""
    if not sealed:
        return None
    uid_text, _, mac = sealed.partition(":")
    try:
        uid = int(uid_text)
    except ValueError:
        return None
    key = _key(state_path, uid) if uid == os.geteuid() or os.geteuid() == 0 else None
    if key is None or not hmac.compare_digest(mac, _mac(key, table, values)):
        return None
    return uid


def ensure_own(state_path: Path) -> None:
    """This account's key and private directory (`UID.used`), made when it may (root, for itself)."""
    _key(state_path, os.geteuid())


def mark_used(state_path: Path, what: str) -> None:
    """Record, where only this account (and root) can write, that a sealed decision was acted on: a seal proves
    who wrote a row, not that it is the newest, so an approval set back to `approved` by SQL would verify again."""
    try:
        _key(state_path, os.geteuid())  # creates the account's directories when it may
        fd = os.open(keys_dir(state_path) / f"{os.geteuid()}.used" / what,
                     os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except OSError:
        pass  # an account without a key directory has no sealed decisions either


def was_used(state_path: Path, what: str) -> bool:
    """Whether this account recorded `what` as acted on (see mark_used)."""
    used = keys_dir(state_path) / f"{os.geteuid()}.used"
    try:
        st = os.lstat(used)
        return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and os.path.lexists(used / what)
    except OSError:
        return False


# The columns a seal covers, per table: everything root acts on (a row's seal is renewed on every write).
SEALED = {
    "runs": ("id", "agent", "pid", "proc_start"),
    "actions": ("id", "agent", "kind", "target", "params", "status", "before", "undone_by", "created", "finished"),
    "snapshots": ("id", "action_id", "path", "existed", "ftype", "mode", "uid", "gid", "blob", "link", "after"),
    "approvals": ("id", "agent", "kind", "target", "plan_hash", "status", "decided_by", "expires"),
}


def reseal(conn, state_path: Path, table: str, column: str, value, uid: int | None = None) -> None:
    """Seal (again) the rows of `table` whose `column` is `value`, after writing them (inside the transaction)."""
    rows = conn.execute(f"SELECT {', '.join(SEALED[table])} FROM {table} WHERE {column} = ?", (value,)).fetchall()
    conn.executemany(f"UPDATE {table} SET seal = ? WHERE id = ?",
                     [(seal(state_path, table, tuple(row), uid), row[0]) for row in rows])


def row_signers(conn, state_path: Path, table: str, column: str, value) -> list[int | None]:
    """For each row of `table` whose `column` is `value`: the uid that sealed it (None: untrusted)."""
    rows = conn.execute(f"SELECT {', '.join(SEALED[table])}, seal FROM {table} WHERE {column} = ?",
                        (value,)).fetchall()
    return [signer(state_path, table, tuple(row[:-1]), row[-1]) for row in rows]


def describe(uid: int | None) -> str:
    """Who sealed a row, for messages."""
    if uid is None:
        return "nobody zenctl trusts (unsealed or forged)"
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
