"""The state: one SQLite file holding runs, metric samples, findings, actions and the audit log.

WAL so readers never block the writer, a busy timeout so concurrent cron runs queue instead of failing, and a
schema version (`PRAGMA user_version`) with forward migrations. A file that is not SQLite, or was written by a
newer zenctl, is refused before anything is written to it.
"""

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zenctl.core.sharing import fix_file
from zenctl.errors import ConfigError, StateError

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000  # ZENCTL_BUSY_TIMEOUT (seconds) overrides: how long to wait for another writer
MAX_BUSY_TIMEOUT_S = 86_400  # a day: longer is a mistake, and SQLite takes the wait as a C int of milliseconds


def _migration_1(conn: sqlite3.Connection) -> None:
    """The first schema: runs, metric samples, findings, actions, the audit log and a key/value meta table."""
    _execute_all(
        conn,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, agent TEXT NOT NULL, pid INTEGER, proc_start REAL,
            started TEXT NOT NULL, ended TEXT, status TEXT NOT NULL, dry_run INTEGER NOT NULL,
            wall_seconds REAL, cpu_user_seconds REAL, cpu_system_seconds REAL, peak_rss_bytes INTEGER,
            message TEXT
        );
        CREATE INDEX runs_agent_started ON runs (agent, started);
        CREATE TABLE metric_samples (
            run_id TEXT NOT NULL, ts REAL NOT NULL, name TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',
            value REAL
        );
        CREATE INDEX metric_samples_name_ts ON metric_samples (name, ts);
        CREATE TABLE findings (
            id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, agent TEXT NOT NULL, ts TEXT NOT NULL,
            check_name TEXT NOT NULL, status TEXT NOT NULL, value, threshold REAL, unit TEXT,
            message TEXT NOT NULL, evidence TEXT
        );
        CREATE INDEX findings_run ON findings (run_id);
        CREATE TABLE actions (
            id TEXT PRIMARY KEY, run_id TEXT NOT NULL, agent TEXT NOT NULL, kind TEXT NOT NULL,
            target TEXT NOT NULL, params TEXT NOT NULL, check_name TEXT, mode TEXT NOT NULL,
            status TEXT NOT NULL, reason TEXT NOT NULL, preview TEXT, message TEXT, before TEXT,
            created TEXT NOT NULL, finished TEXT
        );
        CREATE INDEX actions_run ON actions (run_id);
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, agent TEXT NOT NULL, run_id TEXT, event TEXT NOT NULL,
            message TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
        );
        CREATE INDEX audit_ts ON audit (ts);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


def _execute_all(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated DDL inside the current transaction (executescript would COMMIT first)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migration_2(conn: sqlite3.Connection) -> None:
    """Governance: approvals, problems on the escalation ladder, circuit breakers, the alert outbox, silences,
    stop flags, and snapshots for rollback; actions learn which gate held them and what undid them."""
    _execute_all(
        conn,
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY, agent TEXT NOT NULL, problem TEXT NOT NULL, kind TEXT NOT NULL,
            target TEXT NOT NULL, params TEXT NOT NULL, plan_hash TEXT NOT NULL, preview TEXT NOT NULL,
            reason TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
            expires TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 1, decided_by TEXT, decided_at TEXT,
            comment TEXT, action_id TEXT
        );
        CREATE INDEX approvals_plan ON approvals (agent, kind, target, status);
        CREATE TABLE problems (
            agent TEXT NOT NULL, check_name TEXT NOT NULL, state TEXT NOT NULL, status TEXT NOT NULL,
            level INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, cleared_at REAL, message TEXT NOT NULL,
            alerted INTEGER NOT NULL DEFAULT 0, alerted_at REAL,
            PRIMARY KEY (agent, check_name)
        );
        CREATE TABLE circuits (
            kind TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, failures INTEGER NOT NULL,
            opened_at REAL, PRIMARY KEY (kind, target)
        );
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, problem TEXT NOT NULL, channel TEXT NOT NULL, event TEXT NOT NULL,
            severity TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL, dedup_key TEXT NOT NULL,
            status TEXT NOT NULL, created TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            claimed_until REAL, last_error TEXT, sent_at TEXT, held_by TEXT
        );
        CREATE INDEX alerts_status ON alerts (status);
        CREATE TABLE silences (
            id TEXT PRIMARY KEY, match TEXT NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL,
            created TEXT NOT NULL, ends REAL NOT NULL, removed TEXT
        );
        CREATE TABLE control (
            agent TEXT PRIMARY KEY, stopped INTEGER NOT NULL DEFAULT 0, emergency INTEGER NOT NULL DEFAULT 0,
            by TEXT, reason TEXT, at TEXT, notify_only_runs INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY, action_id TEXT NOT NULL, path TEXT NOT NULL, existed INTEGER NOT NULL,
            ftype TEXT, mode INTEGER, uid INTEGER, gid INTEGER, blob TEXT, link TEXT, after TEXT
        );
        CREATE INDEX snapshots_action ON snapshots (action_id);
        ALTER TABLE actions ADD COLUMN gate TEXT;
        ALTER TABLE actions ADD COLUMN approval_id TEXT;
        ALTER TABLE actions ADD COLUMN undone_by TEXT;
        CREATE INDEX actions_created ON actions (created)
        """
    )


def _migration_3(conn: sqlite3.Connection) -> None:
    """Seals (see `seals`): which account wrote the rows root may act on (runs, actions, snapshots, approvals)."""
    _execute_all(
        conn,
        """
        ALTER TABLE runs ADD COLUMN seal TEXT;
        ALTER TABLE actions ADD COLUMN seal TEXT;
        ALTER TABLE snapshots ADD COLUMN seal TEXT;
        ALTER TABLE approvals ADD COLUMN seal TEXT
        """
    )


def _migration_4(conn: sqlite3.Connection) -> None:
    """Agents' private state: what an agent keeps between runs (read positions, learned templates, history), one
    generic table, so a new agent needs no migration of its own for simple state."""
    _execute_all(
        conn,
        """
        CREATE TABLE agent_state (
            agent TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated TEXT NOT NULL,
            PRIMARY KEY (agent, key)
        )
        """
    )


# One function per schema change, in order; never edit a released one, append a new one.
MIGRATIONS = [("0001_initial", _migration_1), ("0002_governance", _migration_2), ("0003_seals", _migration_3),
              ("0004_agent_state", _migration_4)]
SCHEMA_VERSION = len(MIGRATIONS)


def busy_timeout_ms() -> int:
    """How long to wait for another writer: ZENCTL_BUSY_TIMEOUT seconds, else 30 s."""
    raw = os.environ.get("ZENCTL_BUSY_TIMEOUT", "").strip()
    if not raw:
        return BUSY_TIMEOUT_MS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_BUSY_TIMEOUT_S:  # also NaN, inf and 1e309
        raise ConfigError(f"environment variable ZENCTL_BUSY_TIMEOUT={raw!r}: must be a number of seconds from 0 "
                          f"to {MAX_BUSY_TIMEOUT_S}")
    return int(seconds * 1000)


def default_db_path(environ: dict[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/zenctl/zenctl.db`, or `/var/lib/zenctl/zenctl.db` for root."""
    environ = os.environ if environ is None else environ
    if os.geteuid() == 0:
        return Path("/var/lib/zenctl/zenctl.db")
    base = environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "zenctl" / "zenctl.db"


def resolve_db_path(explicit: str | None, environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(explicit or environ.get("ZENCTL_DB") or default_db_path(environ))


# Kept allocated beside the state, freed when its file system is full: room for the run that cleans it up.
# Measured on a full 3 MB tmpfs: `maintain tmp` needs under 128 KiB (-shm and -wal), `health check` under 160 KiB.
RESERVE_BYTES = 512 * 1024


class State:
    """An open state file. Use `write()` for every change: one IMMEDIATE transaction, so concurrent runs
    serialise their writes instead of interleaving them."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self.notes: list[str] = []  # what opening it did that a run should report (the reserve was used)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        if self.conn.in_transaction:  # nested: part of the outer transaction
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            why = "locked by another process (ZENCTL_BUSY_TIMEOUT)" if "locked" in str(exc) else str(exc)
            raise StateError(self._out_of_space(exc) or f"{self.path}: cannot write the state file: {why}") from None
        try:
            yield self.conn
        except BaseException as exc:
            self._rollback()
            full = self._out_of_space(exc) if isinstance(exc, sqlite3.OperationalError) else None
            if full:
                raise StateError(full) from None
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                raise StateError(self._out_of_space(exc)
                                 or f"{self.path}: cannot commit to the state file: {exc}") from None

    def _rollback(self) -> None:
        """SQLite may already have rolled back (it does on a full disk): then there is nothing to undo."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _out_of_space(self, exc: sqlite3.Error) -> str | None:
        """A write failed because the state's file system is full: free the reserve, so that this run can still
        record how it ends, and say what is full (None when the failure is something else)."""
        message = _full_message(self.path, exc)
        if message:
            _reserve(self.path, release=True)
        return message

    def close(self) -> None:
        self.conn.close()
        _reserve(self.path)  # the run may have freed space (its housekeeping): keep room for the next full disk


def open_state(path: Path, create: bool = True) -> State | None:
    """Open (and on first use create, mode 0600) the state file; None when it does not exist and
    `create` is false. StateError when it cannot be used."""
    _check_existing(path)
    if not path.exists():
        if not create:
            return None
        _create(path)
    timeout_ms = busy_timeout_ms()
    released = _reserve(path, create=False)  # a full file system: give this run the reserve's room
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=timeout_ms / 1000, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(_full_message(path, exc) or f"{path}: cannot open the state file: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        _check_version(path, conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        state = State(path, conn)
        if released:
            state.notes.append(f"the state's file system ({_mount_point(path.parent)}) is full: used the "
                               f"{RESERVE_BYTES // 1024} KiB reserve kept beside the state ({path}.reserve) to run")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            _migrate(state)
        _reserve(path)
        return state
    except sqlite3.OperationalError as exc:
        conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise StateError(f"{path}: locked by another process for more than {timeout_ms / 1000:g} s "
                             "(ZENCTL_BUSY_TIMEOUT); nothing was written") from None
        raise StateError(_full_message(path, exc) or f"{path}: not a usable zenctl state file: {exc}") from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StateError(f"{path}: not a usable zenctl state file: {exc}") from None
    except BaseException:
        conn.close()
        raise


def _check_existing(path: Path) -> None:
    """Refuse a directory, an unreadable file or one that is not SQLite, before SQLite touches it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"{path}: cannot use the state file: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise StateError(f"{path}: is a directory; --db wants a file (e.g. {path / 'zenctl.db'})")
    if not stat.S_ISREG(st.st_mode):
        raise StateError(f"{path}: is not a regular file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state file: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise StateError(f"{path}: is not a SQLite database; zenctl leaves it untouched")


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another run created it first
    except OSError as exc:
        raise StateError(f"{path}: cannot create the state file: {exc.strerror}") from None


def _space(path: Path) -> tuple[int, bool]:
    """Bytes this process may still write on the state's file system (root also gets ext4's reserved blocks),
    and whether it has run out of inodes."""
    st = os.statvfs(path.parent)
    free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
    return free, st.f_files > 0 and st.f_favail == 0


def _reserve(path: Path, create: bool = True, release: bool = False) -> bool:
    """Keep RESERVE_BYTES allocated beside the state (`<state>.reserve`) while its file system has room, and free
    them when it has not (or on `release`): the run that finds the disk full, filled by logs or by another user,
    can then still record what it does and run the housekeeping that frees the space. Never a reason to fail.
    True when it freed the reserve."""
    reserve = Path(f"{path}.reserve")
    try:
        free = _space(path)[0]
        if release or free < RESERVE_BYTES:
            if os.path.lexists(reserve):
                reserve.unlink()  # a symlink planted there is removed, never followed
                return True
        elif create and free >= 2 * RESERVE_BYTES and not os.path.lexists(reserve):
            fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fix_file(fd, path)
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            except OSError:
                reserve.unlink(missing_ok=True)
            finally:
                os.close(fd)
    except OSError:
        pass
    return False


def _full_message(path: Path, exc: sqlite3.Error) -> str | None:
    """One line naming the full file system when SQLite failed for lack of space on it, else None. A full disk
    shows as SQLITE_FULL, or as an I/O error (SQLite cannot grow its -shm file) with no room left."""
    name = getattr(exc, "sqlite_errorname", "")
    if not name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return None
    try:
        free, no_inodes = _space(path)
    except OSError:
        return None
    if name != "SQLITE_FULL" and free >= RESERVE_BYTES and not no_inodes:
        return None
    left = "no free inodes" if no_inodes else f"{free} bytes free"
    return (f"{path}: cannot write the state file: the file system mounted at {_mount_point(path.parent)} is full "
            f"({left}); free space there, or move the state elsewhere (--db)")


def _mount_point(path: Path) -> str:
    current = os.path.realpath(path)
    while not os.path.ismount(current):
        current = os.path.dirname(current)
    return current


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path}: written by a newer zenctl (schema {version}, this zenctl knows {SCHEMA_VERSION}); "
            "upgrade zenctl, the file is left untouched"
        )


def _migrate(state: State) -> None:
    """Apply pending migrations in one transaction; concurrent first runs wait on the write lock and then
    find the work done. sqlite-utils is imported only here: it costs 0.2 s, paid once per upgrade."""
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("zenctl")
    for name, function in MIGRATIONS:
        migrations(name=name)(lambda db, function=function: function(db.conn))
    with state.write() as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _check_version(state.path, version)
        if version < SCHEMA_VERSION:
            migrations.apply(Database(conn, execute_plugins=False))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
