"""Schema changes: where a database table differs from its declared Table Schema (a missing column, a wrong type,
a missing NOT NULL, unique, primary key, foreign key, or the index a foreign key needs), the exact DDL that
makes it match and the DDL that undoes it.

PostgreSQL takes ALTER TABLE statements in one transaction. SQLite changes anything beyond an added column or
index by its table-rebuild procedure (https://www.sqlite.org/lang_altertable.html#otheralter): foreign keys off,
a new table with the wanted definition, the rows copied (rowids kept), the old table dropped, the new one
renamed, its indexes re-created, `PRAGMA foreign_key_check`, commit; its inverse is the same procedure back to
the original CREATE TABLE statement, indexes and triggers, as sqlite_master held them. Views naming the table
keep working (the rename runs with `legacy_alter_table` on, so SQLite does not re-check them half-way).

The plan pins the table's definition (`TableDef.digest`): applied only while the table is still as planned.
A change that loses data (dropping a column, or a type change after which some values do not cast back to what
they were) is refused unless the dataset allows data loss; then the values are saved in the action's record
(keyed by rowid or primary key) and rollback puts them back.
"""

import re
from dataclasses import dataclass, field

from zenctl.agents.data_validator import tables
from zenctl.agents.data_validator.config import source_kind
from zenctl.agents.data_validator.tables import TableDef, qi

PG_TYPES = {"integer": "bigint", "number": "numeric", "string": "text", "boolean": "boolean", "date": "date",
            "datetime": "timestamp with time zone", "time": "time", "year": "integer", "yearmonth": "text",
            "duration": "interval", "object": "jsonb", "array": "jsonb", "geopoint": "text", "geojson": "jsonb"}
PG_ACCEPT = {
    "integer": ("smallint", "integer", "bigint"),
    "number": ("numeric", "real", "double precision", "smallint", "integer", "bigint"),
    "string": ("text", "character varying", "character", "citext", "uuid", "name"),
    "boolean": ("boolean",),
    "date": ("date",),
    "datetime": ("timestamp without time zone", "timestamp with time zone"),
    "time": ("time without time zone", "time with time zone"),
    "year": ("smallint", "integer", "bigint"),
    "duration": ("interval",),
    "object": ("json", "jsonb"), "array": ("json", "jsonb"), "geojson": ("json", "jsonb"),
}
SQLITE_TYPES = {"integer": "INTEGER", "number": "REAL", "string": "TEXT", "boolean": "INTEGER", "date": "TEXT",
                "datetime": "TEXT", "time": "TEXT", "year": "INTEGER", "yearmonth": "TEXT", "duration": "TEXT",
                "object": "TEXT", "array": "TEXT", "geopoint": "TEXT", "geojson": "TEXT"}
SQLITE_ACCEPT = {  # by affinity (https://www.sqlite.org/datatype3.html#determination_of_column_affinity)
    "integer": ("INTEGER",), "number": ("REAL", "NUMERIC", "INTEGER"), "boolean": ("INTEGER", "NUMERIC"),
    "year": ("INTEGER", "NUMERIC"), "string": ("TEXT",), "date": ("TEXT", "NUMERIC"), "datetime": ("TEXT", "NUMERIC"),
    "time": ("TEXT", "NUMERIC"), "object": ("TEXT", "BLOB"), "array": ("TEXT", "BLOB"),
}
_CREATE = re.compile(r'^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")*"|\[[^\]]*\]|`[^`]*`|[^\s(]+)\s*',
                     re.I)
_REBUILD_LOSES = re.compile(r"\b(CHECK|GENERATED|COLLATE|AUTOINCREMENT|AS\s*\()", re.I)


class MigrationError(Exception):
    """The migration cannot run (the table changed, a statement failed); str() is one line."""


def affinity(declared: str) -> str:
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not t or "BLOB" in t:
        return "BLOB"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


@dataclass
class Plan:
    differences: list[str]
    params: dict = field(default_factory=dict)
    refused: str = ""


def plan(ds, schema, definition: TableDef, conn, resolve_table) -> Plan | None:
    """The migration that makes `definition` match `schema`, None when it matches."""
    sqlite = source_kind(ds) == "sqlite"
    diffs, steps, refused = [], [], []
    pk = list(schema.primary_key)
    existing = {c.name: c for c in definition.columns}
    rebuild = False
    wanted_cols: list[dict] = []  # the SQLite rebuild's columns, in order
    for column in definition.columns:
        wanted_cols.append({"name": column.name, "type": column.type, "notnull": column.notnull,
                            "default": column.default, "from": column.name})
    by_name = {c["name"]: c for c in wanted_cols}
    lossy: list[dict] = []
    for fld in schema.fields:
        required = bool(fld.constraints.get("required")) or fld.name in pk
        column = existing.get(fld.name)
        sql_type = (SQLITE_TYPES if sqlite else PG_TYPES).get(fld.type)
        if column is None:
            if sql_type is None:
                continue
            diffs.append(f"missing column {fld.name}")
            if sqlite:
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ADD COLUMN {qi(fld.name)} {sql_type}",
                              "inverse": f"ALTER TABLE {qi(ds.table)} DROP COLUMN {qi(fld.name)}"})
                wanted_cols.append({"name": fld.name, "type": sql_type, "notnull": False, "default": None,
                                    "from": None})
            else:
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ADD COLUMN {qi(fld.name)} {sql_type}",
                              "inverse": f"ALTER TABLE {qi(ds.table)} DROP COLUMN {qi(fld.name)}"})
            if required:
                diffs.append(f"{fld.name} is required: add it NOT NULL by hand once it holds values")
            continue
        if sql_type and not _type_ok(fld.type, column.type, sqlite):
            diffs.append(f"{fld.name} is {column.type or 'untyped'}, the schema says {fld.type}")
            loss = _cast_loss(conn, ds, column.name, sql_type, column.type, sqlite)
            if loss is None:
                refused.append(f"{fld.name}: some values cannot be converted to {sql_type}")
                continue
            if loss:
                lossy.append({"column": column.name, "why": f"{loss} value(s) of {fld.name} would not convert back "
                                                            f"exactly"})
            if sqlite:
                rebuild = True
                by_name[column.name]["type"] = sql_type
            else:
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ALTER COLUMN {qi(column.name)} TYPE {sql_type} "
                                     f"USING {qi(column.name)}::{sql_type}",
                              "inverse": f"ALTER TABLE {qi(ds.table)} ALTER COLUMN {qi(column.name)} TYPE "
                                         f"{column.type} USING {qi(column.name)}::{column.type}"})
        if required and not column.notnull and not (sqlite and column.pk and affinity(column.type) == "INTEGER"):
            nulls = _count(conn, sqlite, f"SELECT count(*) FROM {qi(ds.table)} WHERE {qi(column.name)} IS NULL")
            diffs.append(f"{fld.name} is required but the column allows NULL")
            if nulls:
                refused.append(f"{fld.name}: {nulls} row(s) are NULL")
                continue
            if sqlite:
                rebuild = True
                by_name[column.name]["notnull"] = True
            else:
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ALTER COLUMN {qi(column.name)} SET NOT NULL",
                              "inverse": f"ALTER TABLE {qi(ds.table)} ALTER COLUMN {qi(column.name)} DROP NOT NULL"})
    unique_sets = [list(u) for u in definition.unique] + ([definition.primary_key] if definition.primary_key else [])
    for fld in schema.fields:
        if fld.constraints.get("unique") and fld.name in existing and [fld.name] not in unique_sets:
            diffs.append(f"{fld.name} is unique in the schema, not in the table")
            dups = _count(conn, sqlite, f"SELECT count(*) - count(DISTINCT {qi(fld.name)}) FROM {qi(ds.table)} "
                                        f"WHERE {qi(fld.name)} IS NOT NULL")
            if dups:
                refused.append(f"{fld.name}: {dups} duplicate value(s)")
                continue
            name = _name(ds.table, fld.name, "key")
            if sqlite:
                steps.append({"sql": f"CREATE UNIQUE INDEX {qi(name)} ON {qi(ds.table)} ({qi(fld.name)})",
                              "inverse": f"DROP INDEX {_index_ref(ds.table, name)}"})
            else:
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ADD CONSTRAINT {qi(name)} UNIQUE ({qi(fld.name)})",
                              "inverse": f"ALTER TABLE {qi(ds.table)} DROP CONSTRAINT {qi(name)}"})
    if pk and all(n in existing for n in pk) and definition.primary_key != pk:
        if definition.primary_key:
            diffs.append(f"primary key is ({', '.join(definition.primary_key)}), the schema says ({', '.join(pk)})")
            refused.append("changing an existing primary key is left to a person")
        else:
            diffs.append(f"no primary key, the schema says ({', '.join(pk)})")
            cols = ", ".join(qi(n) for n in pk)
            dups = _count(conn, sqlite, f"SELECT count(*) FROM (SELECT 1 FROM {qi(ds.table)} GROUP BY {cols} "
                                        "HAVING count(*) > 1)")
            if dups:
                refused.append(f"primary key ({', '.join(pk)}): {dups} duplicate key(s)")
            elif sqlite:
                rebuild = True
            else:
                name = _name(ds.table, "pkey", "")
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ADD CONSTRAINT {qi(name)} PRIMARY KEY ({cols})",
                              "inverse": f"ALTER TABLE {qi(ds.table)} DROP CONSTRAINT {qi(name)}"})
    fks_wanted = []
    for fk in schema.foreign_keys:
        ref_table = resolve_table(fk.resource)
        if not ref_table or not all(n in existing for n in fk.fields):
            continue
        declared = any(d["columns"] == list(fk.fields) and _same_table(d["table"], ref_table) and
                       d["ref_columns"] == list(fk.reference_fields) for d in definition.foreign_keys)
        if not declared:
            diffs.append(f"no foreign key ({', '.join(fk.fields)}) -> {ref_table} ({', '.join(fk.reference_fields)})")
            orphans = _orphans(conn, sqlite, ds.table, fk.fields, ref_table, fk.reference_fields)
            if orphans is None:
                refused.append(f"foreign key to {ref_table}: the referenced table or columns do not exist")
                continue
            if orphans:
                refused.append(f"foreign key to {ref_table}: {orphans} row(s) have no parent")
                continue
            fks_wanted.append((list(fk.fields), ref_table, list(fk.reference_fields)))
            if sqlite:
                rebuild = True
            else:
                name = _name(ds.table, "_".join(fk.fields), "fkey")
                steps.append({"sql": f"ALTER TABLE {qi(ds.table)} ADD CONSTRAINT {qi(name)} FOREIGN KEY "
                                     f"({', '.join(qi(f) for f in fk.fields)}) REFERENCES {qi(ref_table)} "
                                     f"({', '.join(qi(f) for f in fk.reference_fields)})",
                              "inverse": f"ALTER TABLE {qi(ds.table)} DROP CONSTRAINT {qi(name)}"})
        if not any(i["columns"][:len(fk.fields)] == list(fk.fields) for i in definition.indexes) and \
                list(fk.fields) != definition.primary_key[:len(fk.fields)]:
            diffs.append(f"no index on the foreign key ({', '.join(fk.fields)})")
            name = _name(ds.table, "_".join(fk.fields), "idx")
            steps.append({"sql": f"CREATE INDEX {qi(name)} ON {qi(ds.table)} ({', '.join(qi(f) for f in fk.fields)})",
                          "inverse": f"DROP INDEX {_index_ref(ds.table, name)}"})
    dropped = [c.name for c in definition.columns if c.name not in {f.name for f in schema.fields}]
    for name in dropped:
        diffs.append(f"column {name} is not in the schema")
        lossy.append({"column": name, "why": f"dropping column {name} loses its values", "drop": True})
        if sqlite:
            rebuild = True
            wanted_cols = [c for c in wanted_cols if c["name"] != name]
        else:
            column = existing[name]
            steps.append({"sql": f"ALTER TABLE {qi(ds.table)} DROP COLUMN {qi(name)}",
                          "inverse": f"ALTER TABLE {qi(ds.table)} ADD COLUMN {qi(name)} {column.type}"})
    if not diffs:
        return None
    if refused:
        return Plan(diffs, refused="; ".join(refused))
    if lossy and not ds.allow_data_loss:
        dropped_only = [d for d in lossy if d.get("drop")]
        others = [d["why"] for d in lossy if not d.get("drop")]
        what = "; ".join(others + [d["why"] for d in dropped_only])
        return Plan(diffs, refused=f"{what} (set allow_data_loss: true on dataset {ds.name} to allow it; the values "
                                   "are then kept for rollback)")
    key = (["rowid"] if definition.rowid else definition.primary_key) if sqlite else definition.primary_key
    if lossy and not key:
        return Plan(diffs, refused="data would be lost and the table has no primary key to keep it by")
    if sqlite and rebuild:
        if definition.sql and _REBUILD_LOSES.search(definition.sql):
            return Plan(diffs, refused="the table's definition has CHECK, COLLATE, AUTOINCREMENT or generated "
                                      "columns, which a rebuild from the schema would not keep; change it by hand")
        forward, inverse = _rebuild_steps(ds.table, definition, wanted_cols, pk or definition.primary_key,
                                          fks_wanted, [s for s in steps if not s["sql"].startswith("ALTER TABLE")])
        statements, inverse_statements = forward, inverse
    else:
        statements = [s["sql"] for s in steps]
        inverse_statements = [s["inverse"] for s in reversed(steps)]
    params = {"dataset": ds.name, "source": source_kind(ds), "db": ds.sqlite if sqlite else tables.mask_dsn(ds.postgres),
              "table": ds.table, "definition": definition.digest(), "differences": diffs,
              "statements": statements, "inverse": inverse_statements, "rebuild": bool(sqlite and rebuild),
              "key": key, "save": [d["column"] for d in lossy], "lossy": [d["why"] for d in lossy]}
    return Plan(diffs, params)


def _index_ref(table: str, index: str) -> str:
    """An index lives in its table's schema (PostgreSQL): DROP INDEX names it there, not by search_path."""
    schema = table.rpartition(".")[0]
    return qi(f"{schema}.{index}") if schema else qi(index)


def _same_table(declared: str | None, wanted: str) -> bool:
    return bool(declared) and declared.strip('"').split(".")[-1] == wanted.split(".")[-1]


def _name(table: str, what: str, suffix: str) -> str:
    base = re.sub(r"\W", "_", f"{table.split('.')[-1]}_{what}")
    return f"{base}_{suffix}"[:63] if suffix else base[:63]


def _type_ok(ftype: str, declared: str, sqlite: bool) -> bool:
    if sqlite:
        accept = SQLITE_ACCEPT.get(ftype)
        return accept is None or affinity(declared) in accept or (not declared)
    accept = PG_ACCEPT.get(ftype)
    base = re.sub(r"\(.*?\)", "", declared).strip()
    return accept is None or base in accept or declared.endswith("[]") and ftype == "array"


def _count(conn, sqlite: bool, query: str) -> int:
    if sqlite:
        return conn.execute(query).fetchone()[0]
    row = conn.execute(query).fetchone()
    conn.commit()
    return row[0]


def _cast_loss(conn, ds, column: str, new_type: str, old_type: str, sqlite: bool) -> int | None:
    """How many values would not come back exactly after the type change (and back); None when some cannot be
    converted at all."""
    col = qi(column)
    if sqlite:  # SQLite's own conversion, in a temporary table: a column of the new type, then of the old again
        conn.execute("DROP TABLE IF EXISTS temp.zenctl_cast")
        conn.execute(f"CREATE TEMP TABLE zenctl_cast (orig, v {new_type}, back {old_type})")
        try:
            conn.execute(f"INSERT INTO temp.zenctl_cast (orig, v) SELECT {col}, {col} FROM {qi(ds.table)} "
                         f"WHERE {col} IS NOT NULL")
            conn.execute("UPDATE temp.zenctl_cast SET back = v")
            if affinity(new_type) in ("INTEGER", "REAL"):
                stuck = conn.execute("SELECT count(*) FROM temp.zenctl_cast WHERE typeof(v) IN ('text', 'blob') AND "
                                     "typeof(orig) NOT IN ('text', 'blob') OR typeof(v) = 'text' AND "
                                     "typeof(orig) = 'text'").fetchone()[0]
                if stuck:
                    return None
            return conn.execute("SELECT count(*) FROM temp.zenctl_cast WHERE back IS NOT orig OR typeof(back) != "
                                "typeof(orig)").fetchone()[0]
        finally:
            conn.execute("DROP TABLE temp.zenctl_cast")
    import psycopg

    try:
        row = conn.execute(f"SELECT count(*) FROM {qi(ds.table)} WHERE {col} IS NOT NULL AND "
                           f"{col}::{new_type}::{old_type} IS DISTINCT FROM {col}").fetchone()
        conn.commit()
        return row[0]
    except psycopg.Error:
        conn.rollback()
        return None


def _orphans(conn, sqlite: bool, table: str, cols, ref_table: str, ref_cols) -> int | None:
    present = " AND ".join(f"c.{qi(c)} IS NOT NULL" for c in cols)
    match = " AND ".join(f"p.{qi(r)} = c.{qi(c)}" for c, r in zip(cols, ref_cols))
    query = (f"SELECT count(*) FROM {qi(table)} c WHERE {present} AND NOT EXISTS (SELECT 1 FROM {qi(ref_table)} p "
             f"WHERE {match})")
    try:
        return _count(conn, sqlite, query)
    except Exception:  # sqlite3.Error or psycopg.Error: the referenced table or a column is missing
        if not sqlite:
            conn.rollback()
        return None


# --- SQLite rebuild -------------------------------------------------------------------------------------------

TEMP = "zenctl_rebuild"


def _rebuild_steps(table: str, definition: TableDef, columns: list[dict], pk: list[str], fks: list[tuple],
                   extra: list[dict]) -> tuple[list[str], list[str]]:
    """(forward statements, inverse statements) of a rebuild; both run between PRAGMA foreign_keys=OFF and ON,
    in one transaction, with a foreign_key_check before the commit."""
    new = f"{TEMP}_{table}"
    parts = []
    for c in columns:
        text = f"{qi(c['name'])} {c['type']}".rstrip()
        if c["notnull"]:
            text += " NOT NULL"
        if c["default"] is not None:
            text += f" DEFAULT {c['default']}"
        parts.append(text)
    if pk:
        parts.append(f"PRIMARY KEY ({', '.join(qi(n) for n in pk)})")
    for index in definition.indexes:  # UNIQUE constraints (CREATE UNIQUE INDEX ones are re-run below)
        if index["origin"] == "u" and all(n in [c["name"] for c in columns] for n in index["columns"]):
            parts.append(f"UNIQUE ({', '.join(qi(n) for n in index['columns'])})")
    for fk in definition.foreign_keys:
        if all(n in [c["name"] for c in columns] for n in fk["columns"]):
            parts.append(f"FOREIGN KEY ({', '.join(qi(n) for n in fk['columns'])}) REFERENCES {qi(fk['table'])} "
                         f"({', '.join(qi(n) for n in fk['ref_columns'])})")
    for cols, ref_table, ref_cols in fks:
        parts.append(f"FOREIGN KEY ({', '.join(qi(n) for n in cols)}) REFERENCES {qi(ref_table)} "
                     f"({', '.join(qi(n) for n in ref_cols)})")
    suffix = " WITHOUT ROWID" if not definition.rowid else ""
    create = f"CREATE TABLE {qi(new)} ({', '.join(parts)}){suffix}"
    copied = [c for c in columns if c["from"]]
    keep_rowid = definition.rowid
    forward = _rebuild(table, new, create, [c["name"] for c in copied], [c["from"] for c in copied], keep_rowid,
                       [i["sql"] for i in definition.indexes if i["sql"]] + [s["sql"] for s in extra]
                       + definition.triggers)
    body = _CREATE.sub("", definition.sql or "", count=1)
    back = [c for c in definition.columns if any(c.name == w["name"] for w in columns)]
    inverse = _rebuild(table, new, f"CREATE TABLE {qi(new)} {body}", [c.name for c in back], [c.name for c in back],
                       keep_rowid, [i["sql"] for i in definition.indexes if i["sql"]] + definition.triggers)
    return forward, inverse


def _rebuild(table: str, new: str, create: str, into: list[str], source: list[str], rowid: bool,
             indexes: list[str]) -> list[str]:
    into_sql = ", ".join((["rowid"] if rowid else []) + [qi(n) for n in into])
    from_sql = ", ".join((["rowid"] if rowid else []) + [qi(n) for n in source])
    return [create, f"INSERT INTO {qi(new)} ({into_sql}) SELECT {from_sql} FROM {qi(table)}",
            f"DROP TABLE {qi(table)}", f"ALTER TABLE {qi(new)} RENAME TO {qi(table)}", *indexes]


# --- applying -------------------------------------------------------------------------------------------------

def describe(conn, source: str, table: str) -> TableDef:
    if source == "sqlite":
        return tables.sqlite_describe(conn, table)
    definition = tables.pg_describe(conn, table)
    return definition


def run(params: dict, dsn: str | None, statements: list[str], expect: str, restore: dict | None = None,
        save: list[str] | None = None) -> dict:
    """Run `statements` in one transaction while the table's definition digest is `expect`; first save the
    values of the columns in `save` (by key), after it put back the `restore`d ones. Returns {"saved": ...,
    "definition": the digest after}. MigrationError, nothing changed, otherwise."""
    if params["source"] == "sqlite":
        return _run_sqlite(params, statements, expect, restore, save)
    return _run_pg(params, dsn, statements, expect, restore, save)


def _saved_values(conn, table: str, key: list[str], columns: list[str], sqlite: bool) -> dict:
    keys = ", ".join("rowid" if k == "rowid" else qi(k) for k in key)
    out = {}
    for column in columns:
        cast = qi(column) if sqlite else f"{qi(column)}::text"
        rows = conn.execute(f"SELECT {keys}, {cast} FROM {qi(table)} WHERE {qi(column)} IS NOT NULL").fetchall()
        out[column] = [[list(r[:len(key)]), _plain(r[len(key)])] for r in rows]
    return out


def _plain(value):
    if isinstance(value, (bytes, memoryview)):
        return {"$hex": bytes(value).hex()}
    return value


def _restore_values(conn, table: str, key: list[str], restore: dict, sqlite: bool) -> None:
    where = " AND ".join(f"{'rowid' if k == 'rowid' else qi(k)} = {'?' if sqlite else '%s'}" for k in key)
    mark = "?" if sqlite else "%s"
    for column, rows in restore.items():
        for key_values, value in rows:
            if isinstance(value, dict) and "$hex" in value:
                value = bytes.fromhex(value["$hex"])
            conn.execute(f"UPDATE {qi(table)} SET {qi(column)} = {mark} WHERE {where}", (value, *key_values))


def _run_sqlite(params: dict, statements: list[str], expect: str, restore, save) -> dict:
    import sqlite3

    try:
        conn = tables.sqlite_connect(params["db"], write=True)
    except tables.DatabaseError as exc:
        raise MigrationError(str(exc)) from None
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set before BEGIN
        conn.execute("PRAGMA legacy_alter_table = ON")  # the rename must not re-check views naming the old table
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = tables.sqlite_describe(conn, params["table"])
            if before.digest() != expect:
                raise MigrationError(f"table {params['table']} changed since the migration was planned; nothing "
                                     "changed")
            saved = _saved_values(conn, params["table"], params["key"], save or [], True) if save else {}
            for statement in statements:
                conn.execute(statement)
            if restore:
                _restore_values(conn, params["table"], params["key"], restore, True)
            problems = conn.execute("PRAGMA foreign_key_check").fetchmany(5)
            if problems:
                raise MigrationError(f"foreign_key_check after the change: {problems[0]}; nothing changed")
            after = tables.sqlite_describe(conn, params["table"]).digest()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA legacy_alter_table = OFF")
    except sqlite3.Error as exc:
        raise MigrationError(f"{params['db']}: {exc}; nothing changed") from None
    finally:
        conn.close()
    return {"saved": saved, "definition": after}


def _run_pg(params: dict, dsn: str | None, statements: list[str], expect: str, restore, save) -> dict:
    import psycopg

    if not dsn:
        raise MigrationError("the database's DSN is not known to this process")
    try:
        conn = tables.pg_connect(dsn, write=True)
    except tables.DatabaseError as exc:
        raise MigrationError(str(exc)) from None
    try:
        with conn.transaction():
            conn.execute(f"LOCK TABLE {qi(params['table'])} IN ACCESS EXCLUSIVE MODE")
            if tables.pg_describe(conn, params["table"]).digest() != expect:
                raise MigrationError(f"table {params['table']} changed since the migration was planned; nothing "
                                     "changed")
            saved = _saved_values(conn, params["table"], params["key"], save or [], False) if save else {}
            for statement in statements:
                conn.execute(statement)
            if restore:
                _restore_values(conn, params["table"], params["key"], restore, False)
            after = tables.pg_describe(conn, params["table"]).digest()
    except psycopg.Error as exc:
        raise MigrationError(f"{params['table']}: {tables.first_line(exc)}; nothing changed") from None
    finally:
        conn.close()
    return {"saved": saved, "definition": after}
