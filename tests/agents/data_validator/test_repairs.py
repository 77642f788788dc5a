"""Each repair through `zenctl data check`: previewed under --dry-run (counts and the first rows before and
after, nothing changed), applied (the file rewritten atomically, owner and mode kept), and rolled back byte for
byte. A file that changed after it was planned is never touched; a symlink or a hard link is never followed."""

import os
import sqlite3

import pytest

from tests.agents.data_validator.helpers import SCHEMA, actions, approve_pending, check, config, finding, rollback
from zenctl.agents.data_validator import repairs

pytestmark = pytest.mark.integration

CASES = {
    # repair: (file bytes, what the repair leaves, counts in the preview)
    "normalize_encoding": (b"\xef\xbb\xbfid,name,day,amount\r\n1,Ann,2025-04-03,1\r\n2,Bob,2025-04-04,2\r\n",
                           b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,2025-04-04,2\n", "3 row(s)"),
    "trim": (b"id,name,day,amount\n1,  Ann ,2025-04-03, 1\n2,Bob,2025-04-04,2\n",
             b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,2025-04-04,2\n", "2 cell(s) in 1 row(s)"),
    "missing_values": (b"id,name,day,amount\n1,N/A,2025-04-03,-\n2,NA,null,2\n",
                       b"id,name,day,amount\n1,,2025-04-03,\n2,NA,,2\n", "3 cell(s) in 2 row(s)"),
    "dedupe": (b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,2025-04-04,2\n1,Ann,2025-04-03,1\n",
               b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,2025-04-04,2\n", "1 row(s) removed"),
    "dates": (b"id,name,day,amount\n1,Ann,13/04/2025,1\n2,Bob,03/04/2025,2\n3,Cy,2025/4/3,3\n4,Di,3 Apr 2025,4\n",
              b"id,name,day,amount\n1,Ann,2025-04-13,1\n2,Bob,03/04/2025,2\n3,Cy,2025-04-03,3\n4,Di,2025-04-03,4\n",
              "3 cell(s) in 3 row(s)"),
    "numbers": (b'id,name,day,amount\n1,Ann,2025-04-03,"1,234.5"\n2,Bob,2025-04-04,"1,5"\n3,Cy,2025-04-05,1 000\n',
                b'id,name,day,amount\n1,Ann,2025-04-03,1234.5\n2,Bob,2025-04-04,"1,5"\n3,Cy,2025-04-05,1000\n',
                "2 cell(s) in 2 row(s)"),
}


def dataset(path, repair: str, **extra) -> dict:
    return {"name": "orders", "path": str(path), "schema": SCHEMA, "repairs": [repair], **extra}


@pytest.mark.parametrize("repair", list(CASES))
def test_each_repair_is_previewed_applied_and_rolled_back_byte_for_byte(zenctl, tmp_path, repair):
    original, repaired, counts = CASES[repair]
    data = tmp_path / "data" / "orders.csv"
    data.parent.mkdir()
    data.write_bytes(original)
    os.chmod(data, 0o640)
    cfg = config(zenctl, [dataset(data, repair)])

    _, preview = check(zenctl, cfg, "--dry-run")
    (action,) = actions(preview, f"data.{repair}")
    assert action["status"] == "previewed" and counts in action["preview"]
    assert "row 2" in action["preview"] or "row 1" in action["preview"] or "row 4" in action["preview"]
    assert data.read_bytes() == original

    _, run = check(zenctl, cfg)
    (action,) = actions(run, f"data.{repair}")
    assert action["status"] == "applied", action
    assert data.read_bytes() == repaired
    assert oct(data.stat().st_mode & 0o777) == oct(0o640)
    assert not [p for p in data.parent.iterdir() if p.name.startswith(".")]  # no temporary file left

    code, undone = rollback(zenctl, cfg, action["id"])
    assert code == 0 and undone["actions"][0]["status"] == "applied", undone
    assert data.read_bytes() == original


def test_a_latin1_file_is_reencoded_as_utf8(zenctl, tmp_path):
    data = tmp_path / "people.csv"
    original = "id,name,day,amount\r\n1,Café,2025-04-03,1\r\n".encode("latin-1")
    data.write_bytes(original)
    cfg = config(zenctl, [dataset(data, "normalize_encoding")])
    _, run = check(zenctl, cfg)
    assert actions(run)[0]["status"] == "applied"
    assert data.read_bytes() == "id,name,day,amount\n1,Café,2025-04-03,1\n".encode()
    rollback(zenctl, cfg, actions(run)[0]["id"])
    assert data.read_bytes() == original


def test_a_chain_of_repairs_applies_in_order_in_one_run_and_rolls_back(zenctl, tmp_path):
    data = tmp_path / "orders.csv"
    original = b'id,name,day,amount\r\n1, Ann ,13/04/2025,"1,234"\r\n2,Bob,2025-04-04,N/A\r\n2,Bob,2025-04-04,N/A\r\n'
    data.write_bytes(original)
    cfg = config(zenctl, [{**dataset(data, "trim"),
                           "repairs": ["normalize_encoding", "trim", "missing_values", "numbers", "dates", "dedupe"]}],
                 "policy:\n  max_auto_repairs_per_hour: 20\n")  # six repairs: more than the default 5 an hour
    _, run = check(zenctl, cfg)
    assert [a["status"] for a in run["actions"]] == ["applied"] * 6, run["actions"]
    assert data.read_bytes() == b"id,name,day,amount\n1,Ann,2025-04-13,1234\n2,Bob,2025-04-04,\n"
    code, undone = rollback(zenctl, cfg, "--since", "1h")
    assert code == 0 and len(undone["actions"]) == 6
    assert data.read_bytes() == original
    _, again = check(zenctl, cfg, "--dry-run")
    assert finding(again, "data:orders:repairs")["status"] == "warning"


def test_quarantine_needs_approval_and_moves_failing_rows_beside_the_file(zenctl, tmp_path):
    data = tmp_path / "orders.csv"
    original = b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,someday,2\nx,Cy,2025-04-05,3\n"
    data.write_bytes(original)
    cfg = config(zenctl, [{**dataset(data, "trim"), "repairs": [], "quarantine": True}])
    _, run = check(zenctl, cfg)
    (action,) = actions(run, "data.quarantine")
    assert action["status"] == "awaiting_approval" and "2 row(s) removed" in action["preview"]
    assert data.read_bytes() == original
    approved = approve_pending(zenctl, cfg)
    assert approved["approval"]["status"] == "executed", approved
    assert data.read_bytes() == b"id,name,day,amount\n1,Ann,2025-04-03,1\n"
    quarantine = tmp_path / "orders.quarantine.csv"
    assert quarantine.read_bytes() == b"id,name,day,amount\n2,Bob,someday,2\nx,Cy,2025-04-05,3\n"
    applied = [a for a in approved["run"]["actions"] if a["kind"] == "data.quarantine"][0]
    rollback(zenctl, cfg, applied["id"])
    assert data.read_bytes() == original and not quarantine.exists()


def test_a_file_changed_after_planning_is_not_touched(zenctl, tmp_path):
    data = tmp_path / "orders.csv"
    data.write_bytes(b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,someday,2\n")
    cfg = config(zenctl, [{**dataset(data, "trim"), "repairs": [], "quarantine": True}])
    check(zenctl, cfg)  # the quarantine waits for approval, its plan pinned
    changed = b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Bob,someday,2\n3,Cy,never,3\n"
    data.write_bytes(changed)
    approved = approve_pending(zenctl, cfg)
    assert approved["approval"]["status"] == "void"  # the plan changed: not carried out
    assert data.read_bytes() == changed


def test_the_kind_refuses_a_file_that_differs_from_its_plan(tmp_path):
    """Between the plan and apply (same run, or an approval's later run) someone rewrote the file."""
    from zenctl.agents.data_validator.kinds.repair import Repair  # noqa: F401  (registers the kinds)
    from zenctl.core.actions import ActionFailed, Proposal, get_kind

    data = tmp_path / "orders.csv"
    data.write_bytes(b"id,name,day,amount\n1, Ann ,2025-04-03,1\n")
    params = _planned(data, "trim")
    data.write_bytes(b"id,name,day,amount\n1, Ann ,2025-04-03,2\n")  # same size, other content
    os.utime(data, ns=(params["expect"]["mtime_ns"], params["expect"]["mtime_ns"]))
    with pytest.raises(ActionFailed, match="changed since it was planned"):
        get_kind("data.trim").apply(Proposal("data.trim", str(data), params, "test"))
    assert data.read_bytes() == b"id,name,day,amount\n1, Ann ,2025-04-03,2\n"


def _planned(path, repair: str) -> dict:
    from zenctl.agents.data_validator.schema import load_schema

    schema = load_schema(SCHEMA)
    options = repairs.Options(fields=schema.fields)
    steps, source, encoding = repairs.plan(str(path), [repair], options)
    step = steps[0]
    return {"dataset": "orders", "repair": repair, "source": "file", "path": str(path), "encoding": encoding,
            "delimiter": ",", "quote": '"', "header_rows": 1, "schema": SCHEMA,
            "expect": {**step.input, "mtime_ns": source["mtime_ns"]}, "output": step.output,
            "counts": {"changed_rows": step.changed_rows, "changed_cells": step.changed_cells, "removed_rows": 0},
            "samples": step.samples}


def test_a_symlink_or_a_hard_link_is_never_rewritten(tmp_path):
    target = tmp_path / "secret.csv"
    target.write_bytes(b"id\n 1 \n")
    link = tmp_path / "orders.csv"
    link.symlink_to(target)
    with pytest.raises(repairs.RepairError, match="symlink"):
        repairs.open_file(str(link))
    link.unlink()
    os.link(target, link)
    with pytest.raises(repairs.RepairError, match="hard link"):
        repairs.open_file(str(link))
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(repairs.RepairError, match="not a regular file"):
        repairs.open_file(str(fifo))


def test_ambiguous_dates_are_never_guessed():
    assert repairs.parse_date("03/04/2025") is None
    assert repairs.parse_date("04/13/2025").isoformat() == "2025-04-13"
    assert repairs.parse_date("13.04.2025").isoformat() == "2025-04-13"
    assert repairs.parse_date("2025-02-30") is None
    assert repairs.parse_date("April 3, 2025").isoformat() == "2025-04-03"
    assert repairs.parse_date("3 Foo 2025") is None


def test_numbers_follow_the_schema_decimal_char():
    from zenctl.agents.data_validator.schema import Field

    plain = Field(name="n", type="number")
    comma = Field(name="n", type="number", decimal_char=",")
    assert repairs.number("1,234,567.89", plain) == "1234567.89"
    assert repairs.number("1,5", plain) == "1,5"  # a decimal comma or a group? not guessed
    assert repairs.number("1.234,5", comma) == "1234,5"
    assert repairs.number("1,234", Field(name="s", type="string")) == "1,234"


def test_a_table_repair_runs_in_one_transaction_and_rolls_back(zenctl, tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", [(1, " Ann ", "Oslo"), (2, "Bob", " Rome"),
                                                                 (3, "Cy", "Paris")])
    schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
                         {"name": "city", "type": "string"}], "primaryKey": ["id"]}
    cfg = config(zenctl, [{"name": "people", "sqlite": str(db), "table": "people", "schema": schema,
                           "repairs": ["trim"]}])
    _, preview = check(zenctl, cfg, "--dry-run")
    (action,) = actions(preview, "data.trim")
    assert "2 cell(s) in 2 row(s)" in action["preview"] and "' Ann '" not in action["preview"]
    _, run = check(zenctl, cfg)
    (action,) = actions(run, "data.trim")
    assert action["status"] == "applied", action
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name, city FROM people ORDER BY id").fetchall() == [
            ("Ann", "Oslo"), ("Bob", "Rome"), ("Cy", "Paris")]
    code, undone = rollback(zenctl, cfg, action["id"])
    assert code == 0 and undone["actions"][0]["kind"] == "data.restore_rows", undone
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name, city FROM people ORDER BY id").fetchall() == [
            (" Ann ", "Oslo"), ("Bob", " Rome"), ("Cy", "Paris")]


def test_a_sqlite_dedupe_removes_exact_duplicates_and_rollback_puts_them_back(zenctl, tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (at TEXT, what TEXT, payload BLOB)")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?)", [("1", "a", b"\x00\x01"), ("2", "b", None),
                                                                 ("1", "a", b"\x00\x01"), ("1", "a", b"\x00\x02")])
    before = _rows(db, "SELECT rowid, * FROM events ORDER BY rowid")
    schema = {"fields": [{"name": "at", "type": "string"}, {"name": "what", "type": "string"},
                         {"name": "payload", "type": "any"}]}
    cfg = config(zenctl, [{"name": "events", "sqlite": str(db), "table": "events", "schema": schema,
                           "repairs": ["dedupe"], "migrate": False}])
    _, run = check(zenctl, cfg)
    (action,) = actions(run, "data.dedupe")
    assert action["status"] == "applied" and "1 row(s) removed" in action["preview"], action
    assert [r[0] for r in _rows(db, "SELECT rowid FROM events ORDER BY rowid")] == [1, 2, 4]
    code, undone = rollback(zenctl, cfg, action["id"])
    assert code == 0, undone
    assert _rows(db, "SELECT rowid, * FROM events ORDER BY rowid") == before


def _rows(db, query: str) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def test_a_postgres_table_repair_and_its_undo(zenctl, pg_dsn):
    import uuid

    import psycopg

    table = f"dv_people_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, city varchar(20) NOT NULL)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'N/A', 'Oslo'), (2, 'Bob', 'N/A'), (3, 'Cy', 'Rome')")
    try:
        schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
                             {"name": "city", "type": "string"}], "primaryKey": ["id"]}
        cfg = config(zenctl, [{"name": "people", "postgres": pg_dsn, "table": table, "schema": schema,
                               "repairs": ["missing_values"], "migrate": False}])
        _, run = check(zenctl, cfg)
        (action,) = actions(run, "data.missing_values")
        assert action["status"] == "applied" and "1 cell(s) in 1 row(s)" in action["preview"], action
        with psycopg.connect(pg_dsn) as conn:  # city is NOT NULL: its N/A stays
            assert conn.execute(f"SELECT name, city FROM {table} ORDER BY id").fetchall() == [
                (None, "Oslo"), ("Bob", "N/A"), ("Cy", "Rome")]
        code, undone = rollback(zenctl, cfg, action["id"])
        assert code == 0 and undone["actions"][0]["kind"] == "data.restore_rows", undone
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute(f"SELECT name FROM {table} ORDER BY id").fetchall() == [("N/A",), ("Bob",), ("Cy",)]
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_a_table_changed_after_planning_is_not_repaired(zenctl, tmp_path):
    from zenctl.core.actions import ActionFailed, Proposal, get_kind

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(1, " Ann "), (2, "Bob ")])
    schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}]}
    cfg = config(zenctl, [{"name": "people", "sqlite": str(db), "table": "people", "schema": schema,
                           "repairs": ["trim"], "migrate": False}])
    _, preview = check(zenctl, cfg, "--dry-run")
    params = actions(preview, "data.trim")[0]["params"]
    assert "updates" not in params  # the cells are recomputed at apply time, not carried (and logged) each run
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET name = ' Cy ' WHERE id = 2")
    with pytest.raises(ActionFailed, match="changed since the repair was planned"):
        get_kind("data.trim").apply(Proposal("data.trim", "people:people", params, "test"))
    assert _rows(db, "SELECT name FROM people ORDER BY id") == [(" Ann ",), (" Cy ",)]


def test_a_chain_stops_where_a_repair_waits_and_goes_on_next_run(zenctl, tmp_path):
    """A repair that will not apply now (approve mode, the hourly budget) ends the chain for this run: what
    follows would find the file not as planned. The next run plans it on what was left."""
    data = tmp_path / "orders.csv"
    data.write_bytes(b"id,name,day,amount\n1, Ann ,13/04/2025,N/A\n")
    cfg = config(zenctl, [{**dataset(data, "trim"), "repairs": ["trim", "missing_values", "dates"]}],
                 "policy:\n  modes:\n    data.missing_values: approve\n")
    _, run = check(zenctl, cfg)
    assert [(a["kind"], a["status"]) for a in run["actions"]] == [("data.trim", "applied"),
                                                                  ("data.missing_values", "awaiting_approval")]
    assert "then, planned again on what they leave: dates" in finding(run, "data:orders:repairs")["message"]
    assert not [a for a in run["actions"] if a["status"] == "failed"]
    approve_pending(zenctl, cfg)
    _, run = check(zenctl, cfg)
    assert [(a["kind"], a["status"]) for a in run["actions"]] == [("data.dates", "applied")]
    assert data.read_bytes() == b"id,name,day,amount\n1,Ann,2025-04-13,\n"

    budget = config(zenctl, [{**dataset(data, "trim"), "repairs": ["trim", "missing_values"]}],
                    "policy:\n  max_auto_repairs_per_hour: 2\n", name="budget.yaml")  # 2 applied in this hour
    data.write_bytes(b"id,name,day,amount\n1, Ann ,2025-04-13,N/A\n")
    _, run = check(zenctl, budget)
    assert [(a["kind"], a["status"]) for a in run["actions"]] == [("data.trim", "deferred")]


def test_an_unclosed_quote_does_not_take_the_whole_file_into_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(repairs, "MAX_RECORD", 1000)
    data = tmp_path / "orders.csv"
    data.write_bytes(b'id,name\n1,"open\n' + b"2,x\n" * 1000)
    with pytest.raises(repairs.RepairError, match="unclosed quote"):
        repairs.plan(str(data), ["trim"], repairs.Options())


def test_a_file_swapped_for_a_symlink_after_planning_is_not_followed(tmp_path):
    """The dataset's directory belongs to someone else, who swaps the planned file for a link to root's file."""
    from zenctl.core.actions import ActionFailed, Proposal, get_kind

    data = tmp_path / "orders.csv"
    data.write_bytes(b"id,name,day,amount\n1, Ann ,2025-04-03,1\n")
    params = _planned(data, "trim")
    victim = tmp_path / "victim.csv"
    victim.write_bytes(data.read_bytes())
    data.unlink()
    data.symlink_to(victim)
    with pytest.raises(ActionFailed, match="symlink"):
        get_kind("data.trim").apply(Proposal("data.trim", str(data), params, "test"))
    assert victim.read_bytes() == b"id,name,day,amount\n1, Ann ,2025-04-03,1\n" and data.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root to chown")
def test_a_repaired_file_keeps_its_owner_and_rollback_too(zenctl, tmp_path):
    data = tmp_path / "orders.csv"
    original = b"id,name,day,amount\n1, Ann ,2025-04-03,1\n"
    data.write_bytes(original)
    os.chown(data, 65534, 65534)
    os.chmod(data, 0o604)
    cfg = config(zenctl, [dataset(data, "trim")])
    _, run = check(zenctl, cfg)
    st = data.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o604)
    rollback(zenctl, cfg, actions(run)[0]["id"])
    st = data.stat()
    assert data.read_bytes() == original and (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o604)


def test_a_json_lines_file_is_reencoded_line_by_line(zenctl, tmp_path):
    data = tmp_path / "events.jsonl"
    original = '\ufeff{"id": 1, "name": "say \\"hi\\""}\r\n{"id": 2, "name": "Café"}\r\n'.encode("utf-8")
    data.write_bytes(original)
    schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}]}
    cfg = config(zenctl, [{"name": "events", "path": str(data), "schema": schema,
                           "repairs": ["normalize_encoding", "trim"], "quarantine": True}])
    _, run = check(zenctl, cfg)
    assert [a["kind"] for a in run["actions"]] == ["data.normalize_encoding"]
    assert data.read_bytes() == '{"id": 1, "name": "say \\"hi\\""}\n{"id": 2, "name": "Café"}\n'.encode()
    rollback(zenctl, cfg, run["actions"][0]["id"])
    assert data.read_bytes() == original


def test_the_files_of_a_glob_are_repaired_under_one_finding(zenctl, tmp_path):
    clean = b"id\tname\tday\tamount\n1\tAnn\t2025-04-03\t1\n"
    padded = clean.replace(b"\tAnn", b"\t Ann")
    for day in ("01", "02", "03"):
        (tmp_path / f"sales-{day}.tsv").write_bytes(clean if day == "02" else padded)
    cfg = config(zenctl, [{"name": "sales", "path": str(tmp_path / "sales-*.tsv"), "schema": SCHEMA,
                           "repairs": ["trim"]}])
    _, run = check(zenctl, cfg)
    assert [f["check"] for f in run["findings"]].count("data:sales:repairs") == 1
    assert sorted(a["target"].rsplit("/", 1)[1] for a in actions(run, "data.trim")) == ["sales-01.tsv", "sales-03.tsv"]
    assert (tmp_path / "sales-03.tsv").read_bytes() == clean


def test_the_parse_hints_never_skip_a_record_a_repair_would_change(tmp_path, monkeypatch):
    """The shortcut (not parsing records a repair cannot change) gives the same bytes as parsing every record."""
    import csv as csvmod
    import io

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from zenctl.agents.data_validator.schema import load_schema

    cell = st.one_of(st.sampled_from(sorted(repairs.NA_TOKENS) + ["", " ", "1,234", "1 234", "13/04/2025", "x y"]),
                     st.text(alphabet=' ,"\t\nab1-/.N\u00a0', max_size=6))
    fields = load_schema(SCHEMA).fields

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.lists(cell, min_size=4, max_size=4), min_size=1, max_size=6), st.sampled_from([",", "\t"]))
    def check_same(rows, delimiter):
        out = io.StringIO()
        writer = csvmod.writer(out, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["id", "name", "day", "amount"])
        writer.writerows(rows)
        data = tmp_path / "h.csv"
        data.write_text(out.getvalue())
        wanted = ["trim", "missing_values", "numbers", "dates"]
        options = repairs.Options(delimiter=delimiter, fields=fields)
        with_hints = [s.output for s in repairs.plan(str(data), wanted, options)[0]]
        monkeypatch.setattr(repairs, "_hints", lambda o: {})
        without = [s.output for s in repairs.plan(str(data), wanted, options)[0]]
        monkeypatch.undo()
        assert with_hints == without

    check_same()
