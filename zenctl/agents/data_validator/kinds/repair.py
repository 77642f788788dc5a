"""Data repairs as action kinds: data.normalize_encoding, data.trim, data.missing_values, data.dedupe, data.dates,
data.numbers, data.quarantine, and data.restore_rows (a table repair's undo).

A file repair's plan (its parameters, which approvals pin) carries the file's size, mtime and SHA-256 when
planned, the expected result, and the schema it reads the cells by; it runs only on exactly that file, writes a
new one beside it and renames it into place (see repairs.py); the runtime keeps the original in the snapshot
store, so `zenctl rollback` puts it back byte for byte. A table repair runs in one transaction, each cell updated
only while it still holds the planned value; the cells and rows it changed are its parameters, from which
rollback builds a data.restore_rows action. A PostgreSQL DSN travels in the proposal's context (it may hold a
password); the stored plan has it masked.

Parameters: dataset, repair, source (file | sqlite | postgres); files: path, encoding, delimiter, quote,
header_rows, schema, expect {size, sha256}, output {size, sha256}, counts, samples (the first repair of a
chain also checks the file's mtime when planned, from the proposal's context); tables: db,
table, key (columns identifying a row: rowid or the primary key), columns, definition (digest), schema,
text_columns, nullable, batch_rows, digest (of the exact cells and rows it changes: recomputed in the
transaction, which goes ahead only if it matches), counts, samples. The changed cells and removed rows are the
action's before-data (for data.restore_rows), not its parameters.
"""

import hashlib
import os

from zenctl.agents.data_validator import repairs, tables
from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.untrusted import line, name as shown

WHAT = {
    "normalize_encoding": "re-encode as UTF-8 without BOM, LF line endings",
    "trim": "trim whitespace around cells",
    "missing_values": "NA tokens to empty",
    "dedupe": "remove exact duplicate rows",
    "dates": "unambiguous dates to ISO 8601",
    "numbers": "thousands separators out of numbers",
    "quarantine": "move rows that still fail to the quarantine file",
}


def options(p: dict) -> repairs.Options:
    """The chain's options rebuilt from a plan's parameters."""
    from zenctl.agents.data_validator.schema import load_schema

    schema = load_schema(p["schema"], name=f"dataset {p['dataset']} schema")
    return repairs.Options(delimiter=p["delimiter"], quote=p["quote"], header_rows=p["header_rows"],
                           encoding=p.get("encoding"), fields=schema.fields,
                           missing_values=frozenset(schema.missing_values),
                           row_fails=row_failure(schema) if p["repair"] == "quarantine" else None)


def row_failure(schema):
    """Does a row break its own cells' rules (count, type, constraint)? Cross-row rules (unique, keys) are not
    a row's fault alone and do not quarantine it."""
    fields = schema.fields

    def fails(cells: list[str]) -> bool:
        if len(cells) != len(fields):
            return True
        for fld, cell in zip(fields, cells):
            missing_values = fld.missing_values if fld.missing_values is not None else schema.missing_values
            if cell in missing_values:
                if fld.constraints.get("required") or fld.name in schema.primary_key:
                    return True
                continue
            value, note = fld.cast(cell)
            if note or fld.check(value, cell):
                return True
        return False

    return fails


def _counts(p: dict) -> str:
    c = p["counts"]
    parts = []
    if c.get("changed_cells"):
        parts.append(f"{c['changed_cells']} cell(s) in {c['changed_rows']} row(s)")
    elif c.get("changed_rows"):
        parts.append(f"{c['changed_rows']} row(s)")
    if c.get("removed_rows"):
        parts.append(f"{c['removed_rows']} row(s) removed")
    return ", ".join(parts) or "no rows"


def _samples(p: dict) -> str:
    shown_rows = []
    for s in p.get("samples", [])[:repairs.SAMPLES]:
        after = "(removed)" if s["after"] is None else repr(line(s["after"]))
        shown_rows.append(f"row {s['row']}: {line(s['before'])!r} -> {after}")
    return "; ".join(shown_rows)


def where(p: dict) -> str:
    if p["source"] == "file":
        return shown(p["path"])
    return f"{p['source']} {shown(p['db'])} table {p['table']}"


class Repair(ActionKind):
    """One repair of a file or a table (the subclasses name it)."""

    reversible = True
    repair: str

    def changes(self, proposal: Proposal) -> list[str]:
        p = proposal.params
        if p["source"] != "file":
            return []
        return [p["path"], repairs.quarantine_path(p["path"])] if p["repair"] == "quarantine" else [p["path"]]

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        text = f"{WHAT[p['repair']]} in {where(p)}: {_counts(p)}"
        if p["repair"] == "quarantine":
            text += f" to {shown(repairs.quarantine_path(p['path']))}"
        if p.get("samples"):
            text += f"; first: {_samples(p)}"
        if p["source"] == "file":
            text += f" (planned on {p['expect']['size']} bytes, sha256 {p['expect']['sha256'][:12]})"
        return text

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        if p["source"] == "file":
            expect = {k: v for k, v in p["expect"].items() if k in ("size", "sha256", "mtime_ns")}
            if "mtime_ns" in proposal.context:  # the first repair of a chain: the file's mtime when planned
                expect["mtime_ns"] = proposal.context["mtime_ns"]
            try:
                repairs.apply(p["path"], p["repair"], options(p), p["encoding"], expect, p["output"])
            except repairs.RepairError as exc:
                raise ActionFailed(line(str(exc))) from None
            except OSError as exc:
                raise ActionFailed(f"{shown(p['path'])}: {exc.strerror or exc}") from None
            return Applied(f"{WHAT[p['repair']]}: done in {where(p)}: {_counts(p)}")
        changes = apply_rows(proposal, planned=True)
        return Applied(f"{WHAT[p['repair']]}: done in {where(p)}: {_counts(p)}",
                       {"updates": changes["updates"], "deletes": changes["deletes"]})

    def verify(self, proposal: Proposal) -> str | None:
        p = proposal.params
        if p["source"] != "file":
            return None  # the transaction committed every planned row or none
        try:
            opened = repairs.open_file(p["path"])
        except repairs.RepairError as exc:
            return str(exc)
        try:
            digest = hashlib.sha256()
            while chunk := os.read(opened.fd, 1 << 20):
                digest.update(chunk)
        finally:
            opened.close()
        return None if digest.hexdigest() == p["output"]["sha256"] else \
            f"{shown(p['path'])} does not hold the repaired content (changed again since?)"

    def undo(self, action: dict, check: bool = True) -> Proposal | str | None:
        p, before = action["params"], action.get("before") or {}
        if p["source"] == "file":
            return None  # the snapshot store has the original
        if "updates" not in before:
            return f"action {action['id']} recorded no changed rows; nothing to put back"
        params = {"undo": action["id"], "dataset": p["dataset"], "source": p["source"], "db": p["db"],
                  "table": p["table"], "key": p["key"], "columns": p["columns"], "repair": p["repair"],
                  "updates": [{**u, "old": u["new"], "new": u["old"]} for u in before["updates"]],
                  "inserts": before["deletes"]}
        return Proposal("data.restore_rows", action["target"], params,
                        f"rollback of {action['id']} ({action['kind']} {action['target']}, {action['finished']})",
                        f"rollback:{action['id']}", context=db_context(p))


def db_context(p: dict) -> dict:
    """The real DSN of a PostgreSQL plan (its stored form is masked): from the config's dataset of that name
    when the masked forms match, else the stored one (a password then comes from ~/.pgpass or PGPASSWORD)."""
    if p["source"] != "postgres":
        return {}
    try:
        from zenctl.core.config import load_config

        for dataset in load_config().config.agents.data_validator.datasets:
            if dataset.name == p["dataset"] and dataset.postgres and tables.mask_dsn(dataset.postgres) == p["db"]:
                return {"dsn": dataset.postgres}
    except Exception:  # no readable config here: the stored DSN may still do
        pass
    return {"dsn": p["db"]}


def _key_clause(key: list[str], placeholder: str) -> str:
    return " AND ".join(f"{'rowid' if k == 'rowid' else tables.qi(k)} = {placeholder}" for k in key)


def apply_rows(proposal: Proposal, planned: bool = False) -> dict:
    """Change a table in one transaction. `planned` (a repair): the changes are computed again from the table
    inside the transaction (writers locked out) and applied only if they hash as planned; else (an undo) the
    proposal's `updates` and `inserts`. Each update only where the cell still holds `old`, each delete only where
    the row is still exactly as read. ActionFailed, nothing changed, otherwise. Returns the changes made."""
    p = proposal.params
    if p["source"] == "sqlite":
        return _sqlite_rows(p, planned)
    return _pg_rows(proposal, planned)


def _recompute(p: dict, conn) -> dict:
    """The planned repair's changes as the table holds now (inside the caller's transaction)."""
    from zenctl.agents.data_validator.schema import load_schema

    schema = load_schema(p["schema"], name=f"dataset {p['dataset']} schema")
    rows, key_of = tables.keyed_rows(conn, p["source"], p["table"], p["key"], p["columns"], p["batch_rows"],
                                     commit=False)
    try:
        changes = repairs.plan_table(p["columns"], rows, key_of, p["repair"], schema.fields, set(p["text_columns"]),
                                     set(p["nullable"]), frozenset(schema.missing_values))
    except repairs.RepairError as exc:
        raise ActionFailed(str(exc)) from None
    if repairs.table_digest(changes) != p["digest"]:
        raise ActionFailed(f"table {p['table']} changed since the repair was planned; nothing changed")
    return changes


def _sqlite_rows(p: dict, planned: bool) -> dict:
    import sqlite3

    try:
        conn = tables.sqlite_connect(p["db"], write=True)
    except tables.DatabaseError as exc:
        raise ActionFailed(line(str(exc))) from None
    table, key = tables.qi(p["table"]), p["key"]
    try:
        conn.execute("BEGIN IMMEDIATE")
        changes = _recompute(p, conn) if planned else {"updates": p["updates"], "deletes": []}
        inserts = [] if planned else p["inserts"]
        for u in changes["updates"]:
            cur = conn.execute(f"UPDATE {table} SET {tables.qi(u['column'])} = ? WHERE {_key_clause(key, '?')} "
                               f"AND {tables.qi(u['column'])} IS ?", (u["new"], *u["key"], u["old"]))
            if cur.rowcount != 1:
                raise ActionFailed(f"row {u['key']} column {u['column']} changed since it was planned; nothing "
                                   "changed")
        columns = ["rowid", *p["columns"]] if key == ["rowid"] else p["columns"]
        for d in changes["deletes"]:
            conn.execute(f"DELETE FROM {table} WHERE {_key_clause(key, '?')}", d["key"])
        for i in inserts:
            values = ([*i["key"]] if key == ["rowid"] else []) + [repairs.from_jsonable(v) for v in i["row"]]
            marks = ", ".join("?" * len(columns))
            conn.execute(f"INSERT INTO {table} ({', '.join(tables.qi(c) if c != 'rowid' else c for c in columns)})"
                         f" VALUES ({marks})", values)
        conn.execute("COMMIT")
    except ActionFailed:
        conn.execute("ROLLBACK")
        raise
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise ActionFailed(f"{shown(p['db'])}: {exc}; nothing changed") from None
    finally:
        conn.close()
    return changes


def _pg_rows(proposal: Proposal, planned: bool) -> dict:
    import psycopg
    from psycopg import sql

    p = proposal.params
    dsn = proposal.context.get("dsn")
    if not dsn:
        raise ActionFailed("the database's DSN is not known to this process")
    try:
        conn = tables.pg_connect(dsn, write=True)
    except tables.DatabaseError as exc:
        raise ActionFailed(line(str(exc))) from None
    schema, name = tables.pg_split(p["table"])
    ident = sql.Identifier(schema, name)
    key_sql = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in p["key"])
    try:
        with conn.transaction():
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(ident))  # readers only
            changes = _recompute(p, conn) if planned else {"updates": p["updates"], "deletes": []}
            if changes["deletes"] or (not planned and p["inserts"]):
                raise ActionFailed("row deletion and insertion are not supported on PostgreSQL tables")
            for u in changes["updates"]:
                cur = conn.execute(sql.SQL("UPDATE {} SET {} = %s WHERE {} AND {} IS NOT DISTINCT FROM %s").format(
                    ident, sql.Identifier(u["column"]), key_sql, sql.Identifier(u["column"])),
                    (u["new"], *u["key"], u["old"]))
                if cur.rowcount != 1:
                    raise ActionFailed(f"row {u['key']} column {u['column']} changed since it was planned; "
                                       "nothing changed")
    except psycopg.Error as exc:
        raise ActionFailed(f"{p['table']}: {tables.first_line(exc)}; nothing changed") from None
    finally:
        conn.close()
    return changes


def _make(repair_name: str) -> type[Repair]:
    cls = type(f"Repair_{repair_name}", (Repair,), {
        "name": f"data.{repair_name}", "repair": repair_name,
        "summary": f"Data repair: {WHAT[repair_name]} (file: atomic rewrite, snapshot; table: one transaction)."})
    return register(cls)


for _repair in repairs.ORDER:
    _make(_repair)


@register
class RestoreRows(ActionKind):
    name = "data.restore_rows"
    summary = "Undo a table repair: put the changed cells and removed rows back, in one transaction."
    irreversible_why = "repair the table again instead"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return (f"undo {p['undo']}: in {where(p)} put back {len(p['updates'])} cell(s) and "
                f"{len(p['inserts'])} removed row(s)")

    def apply(self, proposal: Proposal) -> Applied:
        apply_rows(proposal)
        return Applied(self.preview(proposal).replace("undo", "undid", 1))

    def verify(self, proposal: Proposal) -> str | None:
        return None
