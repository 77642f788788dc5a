"""Database sources: SQLite tables or queries and PostgreSQL tables, read in streaming batches, and their
definitions (columns, constraints, indexes) as the migrations compare them with the declared schema.

The database file or server may hold what others wrote: a SQLite file is opened read-only with
`trusted_schema=OFF` (its views and triggers cannot call functions with side effects), identifiers are quoted,
never interpolated raw, and every PostgreSQL read is a READ ONLY transaction with a statement timeout.
"""

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

PG_TIMEOUT_MS = 300_000


class DatabaseError(Exception):
    """The database could not be opened or read; str() is one line naming the source."""


@dataclass
class Column:
    name: str
    type: str  # as declared (SQLite) or format_type (PostgreSQL)
    notnull: bool = False
    default: str | None = None
    pk: int = 0  # position in the primary key, 0: not part of it


@dataclass
class TableDef:
    """A table's definition, as far as the migrations care (hashed into their plans)."""

    name: str
    columns: list[Column]
    unique: list[list[str]] = field(default_factory=list)  # unique constraints and unique indexes
    foreign_keys: list[dict] = field(default_factory=list)  # {columns, table, ref_columns, name, valid}
    indexes: list[dict] = field(default_factory=list)  # {name, columns, unique, sql}
    sql: str | None = None  # SQLite: the CREATE TABLE statement
    rowid: bool = True  # SQLite: a rowid table (not WITHOUT ROWID)
    triggers: list[str] = field(default_factory=list)  # SQLite: CREATE TRIGGER statements on the table

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in sorted(self.columns, key=lambda c: c.pk) if c.pk]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def digest(self) -> str:
        """What a plan pins: the whole definition, so any change to the table since planning is seen."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()


def qi(name: str) -> str:
    """A quoted SQL identifier (schema.table quoted part by part)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


# --- SQLite ---------------------------------------------------------------------------------------------------

def sqlite_connect(path: str, write: bool = False, timeout: float = 30) -> sqlite3.Connection:
    """A connection to an existing database file (never created), read-only unless `write`."""
    _plain_file(path)
    mode = "rw" if write else "ro"
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode={mode}", uri=True, timeout=timeout,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # not a database: fails here
    except sqlite3.Error as exc:
        raise DatabaseError(f"{path}: {exc}") from None
    return conn


def _plain_file(path: str) -> None:
    """DatabaseError unless `path` is a regular file with one name, reached without a symlink others could have
    placed (core.dirwalk): root must not be steered to another database (its own state, say) by a link planted in
    an application's directory. SQLite then opens it by name: a swap in the moment between is not excluded."""
    import errno
    import stat

    from zenctl.core import dirwalk

    try:
        parent, name = dirwalk.open_parent(path)
    except FileNotFoundError:
        raise DatabaseError(f"{path}: no such database file") from None
    except OSError as exc:
        raise DatabaseError(f"{path}: {exc.strerror or exc}") from None
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise DatabaseError(f"{path}: no such database file") from None
    finally:
        os.close(parent)
    if stat.S_ISLNK(st.st_mode):
        raise DatabaseError(f"{path}: a symlink; not following it ({errno.errorcode[errno.ELOOP]})")
    if not stat.S_ISREG(st.st_mode):
        raise DatabaseError(f"{path}: not a regular file")
    if st.st_nlink != 1:
        raise DatabaseError(f"{path}: it has {st.st_nlink} names (a hard link); not opening it")


def sqlite_describe(conn: sqlite3.Connection, table: str) -> TableDef:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    if not row:
        raise DatabaseError(f"no table {table!r}")
    sql = row[0] or ""
    columns = [Column(r[1], r[2] or "", bool(r[3]), r[4], r[5])
               for r in conn.execute(f"PRAGMA table_info({qi(table)})")]
    indexes, unique = [], []
    for _seq, name, is_unique, origin, _partial in conn.execute(f"PRAGMA index_list({qi(table)})").fetchall():
        cols = [r[2] for r in conn.execute(f"PRAGMA index_info({qi(name)})")]
        idx_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
        indexes.append({"name": name, "columns": cols, "unique": bool(is_unique), "origin": origin,
                        "sql": idx_sql[0] if idx_sql else None})
        if is_unique and origin != "pk":
            unique.append(cols)
    fks: dict[int, dict] = {}
    for fid, _seq, ref_table, col, ref_col, *_ in conn.execute(f"PRAGMA foreign_key_list({qi(table)})"):
        entry = fks.setdefault(fid, {"name": f"fk{fid}", "table": ref_table, "columns": [], "ref_columns": [],
                                     "valid": True})
        entry["columns"].append(col)
        entry["ref_columns"].append(ref_col)
    rowid = "without rowid" not in " ".join(sql.lower().split()[-3:])
    triggers = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
                                           "ORDER BY name", (table,)) if r[0]]
    return TableDef(table, columns, sorted(unique), list(fks.values()), sorted(indexes, key=lambda i: i["name"]),
                    sql, rowid, triggers)


def sqlite_rows(conn: sqlite3.Connection, table: str | None, query: str | None, batch: int
                ) -> tuple[list[str], Iterator[list]]:
    """(column names, rows in batches); the query runs as given (the connection is read-only)."""
    sql = query if query else f"SELECT * FROM {qi(table)}"
    try:
        cursor = conn.execute(sql)
    except sqlite3.Error as exc:
        raise DatabaseError(f"{'query' if query else table}: {exc}") from None
    header = [d[0] for d in cursor.description or ()]

    def rows() -> Iterator[list]:
        try:
            while chunk := cursor.fetchmany(batch):
                for row in chunk:
                    yield list(row)
        except sqlite3.Error as exc:
            raise DatabaseError(f"reading {table or 'query'}: {exc}") from None

    return header, rows()


# --- PostgreSQL -----------------------------------------------------------------------------------------------

def pg_connect(dsn: str, write: bool = False):
    """A connection (autocommit off); READ ONLY unless `write`; DatabaseError naming the server when down."""
    import psycopg

    try:
        conn = psycopg.connect(dsn, connect_timeout=10, application_name="zenctl-data")
        conn.execute(f"SET statement_timeout = {PG_TIMEOUT_MS}")
        if not write:
            conn.execute("SET default_transaction_read_only = on")
        conn.commit()
    except psycopg.Error as exc:
        raise DatabaseError(f"PostgreSQL {mask_dsn(dsn)}: {first_line(exc)}") from None
    return conn


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def mask_dsn(dsn: str) -> str:
    """The DSN without its password (what may be stored, shown and hashed)."""
    import re

    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn, flags=re.I)


def pg_split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def pg_describe(conn, table: str) -> TableDef:
    schema, name = pg_split(table)
    oid = conn.execute("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                       (schema, name)).fetchone()
    if not oid:
        raise DatabaseError(f"no table {table!r}")
    oid = oid[0]
    pk_cols = conn.execute("SELECT a.attname, array_position(i.indkey::int2[], a.attnum) FROM pg_index i "
                           "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                           "WHERE i.indrelid = %s AND i.indisprimary", (oid,)).fetchall()
    pk = {n: pos + 1 for n, pos in pk_cols}
    columns = [Column(r[0], r[1], r[2], r[3], pk.get(r[0], 0)) for r in conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()]
    unique, fks = [], []
    for conname, contype, cols, ref_table, ref_cols, valid in conn.execute(
            "SELECT c.conname, c.contype, "
            "  ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
            "        ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), "
            "  CASE WHEN c.confrelid <> 0 THEN c.confrelid::regclass::text END, "
            "  ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
            "        ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o), c.convalidated "
            "FROM pg_constraint c WHERE c.conrelid = %s ORDER BY c.conname", (oid,)).fetchall():
        if contype == "u":
            unique.append(list(cols))
        elif contype == "f":
            fks.append({"name": conname, "columns": list(cols), "table": ref_table, "ref_columns": list(ref_cols),
                        "valid": valid})
    indexes = [{"name": r[0], "unique": r[1], "sql": r[2], "columns": list(r[3])} for r in conn.execute(
        "SELECT ic.relname, i.indisunique, pg_get_indexdef(i.indexrelid), "
        "  ARRAY(SELECT attname FROM unnest(i.indkey::int2[]) k(n) JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "        AND a.attnum = k.n) "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = %s ORDER BY ic.relname",
        (oid,)).fetchall()]
    for index in indexes:
        if index["unique"] and index["columns"] not in unique and index["columns"] != [c for c in pk]:
            unique.append(index["columns"])
    return TableDef(table, columns, sorted(unique), fks, indexes)


def pg_rows(conn, table: str, batch: int) -> tuple[list[str], Iterator[list]]:
    """(column names, rows) through a server-side cursor, `batch` rows at a time."""
    import psycopg
    from psycopg import sql

    schema, name = pg_split(table)
    try:
        header = [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT "
            "a.attisdropped ORDER BY a.attnum", (schema, name)).fetchall()]
    except psycopg.Error as exc:
        raise DatabaseError(f"{table}: {first_line(exc)}") from None
    if not header:
        raise DatabaseError(f"no table {table!r}")

    def rows() -> Iterator[list]:
        try:
            with conn.cursor(name="zenctl_data_read") as cursor:
                cursor.itersize = batch
                cursor.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, name)))
                for row in cursor:
                    yield list(row)
            conn.commit()
        except psycopg.Error as exc:
            raise DatabaseError(f"reading {table}: {first_line(exc)}") from None

    return header, rows()


def plain(row: list) -> list:
    """A database row as the validator takes it: numbers, text, booleans, dates and times as they come; exact
    decimals (PostgreSQL numeric) and UUIDs as their text, which the schema's cast reads exactly; bytes as hex."""
    from decimal import Decimal
    from uuid import UUID

    out = []
    for value in row:
        if isinstance(value, (Decimal, UUID)):
            value = str(value)
        elif isinstance(value, (bytes, memoryview)):
            value = bytes(value).hex()
        out.append(value)
    return out


def keyed_rows(conn, source: str, table: str, key: list[str], columns: list[str], batch: int, commit: bool = True):
    """A table's rows streamed with the key of each, (rows, key_of): `key_of(row)` is the key of the row just
    yielded (SQLite: rowid or primary key columns read beside it; PostgreSQL: the primary key's cells). With
    `commit` a PostgreSQL read ends its transaction when done (not inside a caller's transaction)."""
    if source == "sqlite":
        select = ", ".join(["rowid" if k == "rowid" else qi(k) for k in key] + [qi(c) for c in columns])
        cursor = conn.execute(f"SELECT {select} FROM {qi(table)}")
        width = len(key)
        current: dict = {}

        def rows():
            while chunk := cursor.fetchmany(batch):
                for row in chunk:
                    current["key"] = list(row[:width])
                    yield list(row[width:])

        return rows(), lambda row: current["key"]
    from psycopg import sql

    schema, name = pg_split(table)
    index = [columns.index(k) for k in key]
    listed = sql.SQL(", ").join(sql.Identifier(c) for c in columns)

    def pg_rows():
        with conn.cursor(name="zenctl_data_rows") as cursor:
            cursor.itersize = batch
            cursor.execute(sql.SQL("SELECT {} FROM {}").format(listed, sql.Identifier(schema, name)))
            for row in cursor:
                yield list(row)
        if commit:
            conn.commit()

    return pg_rows(), lambda row: [row[i] for i in index]
