"""Database sources: SQLite files and PostgreSQL tables made by the tests, read in batches, validated with the
same engine as files, checked for integrity; a database that is down or a table that is missing is one clear
finding, never a traceback."""

import sqlite3
import uuid

import pytest

from tests.agents.data_validator.helpers import check, config, finding
from zenctl.agents.data_validator import tables

pytestmark = pytest.mark.integration

SCHEMA = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string",
                                                          "constraints": {"required": True}},
                     {"name": "score", "type": "number", "constraints": {"minimum": 0}}],
          "primaryKey": ["id"]}


def _db(path, rows) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", rows)


def test_sqlite_rows_stream_in_batches(tmp_path):
    db = tmp_path / "big.db"
    _db(db, [(i, f"n{i}", i / 2) for i in range(1, 2501)])
    conn = tables.sqlite_connect(str(db))
    header, rows = tables.sqlite_rows(conn, "people", None, batch=100)
    assert header == ["id", "name", "score"]
    seen = list(rows)
    assert len(seen) == 2500 and seen[0] == [1, "n1", 0.5]
    definition = tables.sqlite_describe(conn, "people")
    assert definition.primary_key == ["id"] and definition.rowid and definition.column("name").notnull
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM people")  # opened read-only


def test_a_sqlite_table_is_validated_with_frictionless_errors(zenctl, tmp_path):
    db = tmp_path / "app.db"
    _db(db, [(1, "a", 1.5), (2, "b", -3), (3, "c", "lots")])
    cfg = config(zenctl, [{"name": "people", "sqlite": str(db), "table": "people", "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    found = finding(run, "data:people")
    assert code == 2 and found["status"] == "critical"
    assert found["evidence"]["counts"] == {"constraint-error": 1, "type-error": 1}
    first = found["evidence"]["errors"][0]
    assert (first["type"], first["rowNumber"], first["fieldNumber"]) == ("constraint-error", 3, 3)
    assert finding(run, "data:people:integrity")["status"] == "ok"


def test_a_sqlite_query_source(zenctl, tmp_path):
    db = tmp_path / "app.db"
    _db(db, [(1, "a", 1.5), (2, "b", 2)])
    cfg = config(zenctl, [{"name": "people", "sqlite": str(db), "query": "SELECT id, name, score FROM people",
                           "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    assert code == 0 and finding(run, "data:people")["evidence"]["rows"] == 2


def test_sqlite_foreign_key_violations_and_corruption_are_found(zenctl, tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE people (id INTEGER PRIMARY "
                           "KEY, name TEXT NOT NULL, score REAL REFERENCES parent(id)); INSERT INTO parent VALUES (1);"
                           "INSERT INTO people VALUES (1, 'a', 1), (2, 'b', 7);")
    cfg = config(zenctl, [{"name": "people", "sqlite": str(db), "table": "people", "schema": SCHEMA,
                           "migrate": False}])
    _, run = check(zenctl, cfg)
    integrity = finding(run, "data:people:integrity")
    assert integrity["status"] == "warning" and "people rowid 2 has no parent in parent" in integrity["message"]

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    cfg = config(zenctl, [{"name": "people", "sqlite": str(broken), "table": "people", "schema": SCHEMA}],
                 name="b.yaml")
    code, run = check(zenctl, cfg)
    found = finding(run, "data:people")
    assert code == 3 and found["status"] == "unknown" and "cannot read" in found["message"]


def test_a_missing_table_or_file_is_one_clear_finding(zenctl, tmp_path):
    db = tmp_path / "app.db"
    _db(db, [])
    cfg = config(zenctl, [{"name": "people", "sqlite": str(db), "table": "nobody", "schema": SCHEMA},
                          {"name": "gone", "sqlite": str(tmp_path / "gone.db"), "table": "x", "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    assert code == 3 and not run["error"]
    assert "nobody" in finding(run, "data:people")["message"]
    assert "no such database file" in finding(run, "data:gone")["message"]


def test_a_postgres_server_that_is_down_is_one_clear_finding(zenctl, tmp_path):
    cfg = config(zenctl, [{"name": "remote", "postgres": "postgresql://nobody:secret@127.0.0.1:1/none",
                           "table": "t", "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    found = finding(run, "data:remote")
    assert code == 3 and found["status"] == "unknown" and "PostgreSQL" in found["message"]
    assert "secret" not in found["message"] and "***" in found["message"]


@pytest.fixture
def pg_table(pg_dsn):
    import psycopg

    name = f"dv_people_{uuid.uuid4().hex[:8]}"
    parent = f"{name}_parent"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {parent} (id int PRIMARY KEY)")
        conn.execute(f"INSERT INTO {parent} VALUES (1)")
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, name text NOT NULL, score numeric, parent int)")
        conn.execute(f"INSERT INTO {name} SELECT i, 'n' || i, i - 3, CASE WHEN i % 100 = 0 THEN 99 ELSE 1 END "
                     "FROM generate_series(1, 1000) i")
        conn.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_score CHECK (score < 900) NOT VALID")
        conn.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_parent FOREIGN KEY (parent) REFERENCES {parent} "
                     "(id) NOT VALID")
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}, {parent}")


def test_a_postgres_table_is_read_in_batches_and_validated(zenctl, pg_dsn, pg_table):
    conn = tables.pg_connect(pg_dsn)
    header, rows = tables.pg_rows(conn, pg_table, batch=100)
    assert header == ["id", "name", "score", "parent"] and sum(1 for _ in rows) == 1000
    conn.close()
    schema = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "parent", "type": "integer"}]}
    cfg = config(zenctl, [{"name": "people", "postgres": pg_dsn, "table": pg_table, "schema": schema,
                           "batch_rows": 100, "migrate": False}])
    code, run = check(zenctl, cfg)
    found = finding(run, "data:people")
    assert found["evidence"]["counts"] == {"constraint-error": 2}  # scores -2 and -1 (minimum 0)
    assert found["evidence"]["errors"][0]["rowNumber"] == 2
    integrity = finding(run, "data:people:integrity")
    assert integrity["status"] == "warning"
    assert "98 row(s) violate check constraint" in integrity["message"]
    assert "10 row(s) have no parent" in integrity["message"]
