"""The audit log: append-only, hash-chained entries in the state file.

Each entry's hash covers its own fields and the previous entry's hash, and the newest hash is kept as the head
in `meta`. Editing, inserting or deleting an entry (the last one too) breaks the chain, and `verify` names the
first entry that does not fit. This makes tampering evident, not impossible: whoever can write the file can
rewrite the whole chain, so ship entries off the host where that matters.
"""

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from zenctl.core.state import State
from zenctl.core.untrusted import storable
from zenctl.core.timeutil import iso

GENESIS = "0" * 64
_SECRETS = [
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|routing[_-]?key)(\s*[=:]\s*)(\S+)"), r"\1\2***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)"), r"\1***\3"),
]


@dataclass
class Entry:
    """One audit record before it is chained."""

    agent: str
    event: str
    message: str
    run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    bad_seq: int | None = None
    problem: str = ""


def scrub(text: str) -> str:
    """Mask passwords, tokens and URL credentials before they reach the log (and make the text storable)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return storable(text)


def _scrub_data(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_data(v) for v in value]
    return value


def entry_hash(prev_hash: str, seq: int, ts: str, agent: str, run_id: str | None, event: str, message: str,
               data: str) -> str:
    """SHA-256 over the previous hash and this entry's fields in a fixed JSON layout. surrogatepass: a lone
    surrogate hashes instead of raising (valid text encodes exactly as plain UTF-8, so old hashes still match)."""
    payload = json.dumps([seq, ts, agent, run_id, event, message, data], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + payload).encode("utf-8", "surrogatepass")).hexdigest()


def append(state: State, entries: Iterable[Entry], ts: str | None = None) -> list[int]:
    """Chain and store entries in one write transaction (or the caller's); returns their sequence numbers."""
    entries = list(entries)
    if not entries:
        return []
    with state.write() as conn:
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = row if row else (0, GENESIS)
        rows = []
        for entry in entries:
            seq += 1
            stamp = ts or iso()
            agent, event, message = storable(entry.agent), storable(entry.event), scrub(entry.message)
            run_id = storable(entry.run_id) if entry.run_id is not None else None
            # strings are scrubbed (storable); a key's lone surrogate is written \udcNN by ensure_ascii
            data = json.dumps(_scrub_data(entry.data), sort_keys=True, separators=(",", ":"), default=str)
            digest = entry_hash(prev, seq, stamp, agent, run_id, event, message, data)
            rows.append((seq, stamp, agent, run_id, event, message, data, prev, digest))
            prev = digest
        conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('audit_head', ?)", (f"{seq}:{prev}",))
    return [r[0] for r in rows]


def query(state: State, since: str | None = None, until: str | None = None, agent: str | None = None,
          event: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Entries in sequence order, filtered by time (ISO strings), agent and event (`action` matches
    `action` and `action.*`); with `limit`, the newest ones."""
    where, args = [], []
    if since:
        where.append("ts >= ?")
        args.append(since)
    if until:
        where.append("ts <= ?")
        args.append(until)
    if agent:
        where.append("agent = ?")
        args.append(agent)
    if event:
        where.append("(event = ? OR event LIKE ?)")
        args += [event, event + ".%"]
    sql = "SELECT seq, ts, agent, run_id, event, message, data FROM audit"
    if since or until:
        # without this the planner walks all of the table in seq order to skip a sort of a few rows
        sql += " INDEXED BY audit_ts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC" if limit else " ORDER BY seq"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = state.conn.execute(sql, args).fetchall()
    if limit:
        rows.reverse()
    return [
        {"seq": s, "ts": t, "agent": a, "run_id": r, "event": e, "message": m, "data": json.loads(d)}
        for s, t, a, r, e, m, d in rows
    ]


def _rows(conn: sqlite3.Connection) -> Iterator[tuple]:
    cursor = conn.execute(
        "SELECT seq, ts, agent, run_id, event, message, data, prev_hash, hash FROM audit ORDER BY seq"
    )
    while batch := cursor.fetchmany(10_000):
        yield from batch


def verify(state: State) -> VerifyResult:
    """Walk the chain from the first entry; the first entry that does not fit is reported."""
    expected_seq, prev = 1, GENESIS
    checked = 0
    conn = state.conn
    conn.execute("BEGIN")  # one consistent snapshot while concurrent runs append
    try:
        for seq, ts, agent, run_id, event, message, data, prev_hash, stored in _rows(conn):
            where = f"entry {seq} ({ts}, {event})"
            if seq != expected_seq:
                missing = f"entry {expected_seq}" if seq > expected_seq else f"entry {seq}"
                return VerifyResult(False, checked, seq, f"{missing} is missing or renumbered before {where}")
            if prev_hash != prev:
                return VerifyResult(False, checked, seq, f"{where} does not link to the entry before it")
            if entry_hash(prev, seq, ts, agent, run_id, event, message, data) != stored:
                return VerifyResult(False, checked, seq, f"{where} was changed after it was written")
            prev, expected_seq, checked = stored, expected_seq + 1, checked + 1
        head = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
        last = f"{expected_seq - 1}:{prev}" if checked else None
        if (head[0] if head else None) != last:
            head_seq = int(head[0].split(":")[0]) if head else 0
            if head_seq >= expected_seq:
                return VerifyResult(False, checked, expected_seq, f"entries from {expected_seq} on were deleted")
            return VerifyResult(False, checked, expected_seq - 1, "the log's head record does not match its last entry")
        return VerifyResult(True, checked)
    finally:
        conn.execute("COMMIT")
