"""schema.migrate on real SQLite files and PostgreSQL tables: proposed with its DDL and inverse, approve by
default, applied in one transaction only while the table is as planned, rolled back by the inverse (dropped
values put back), and a change that loses data refused unless the dataset allows it."""

import sqlite3
import uuid

import pytest

from tests.agents.data_validator.helpers import actions, approve_pending, check, config, finding, rollback
from zenctl.agents.data_validator import migrate

pytestmark = pytest.mark.integration

SCHEMA = {"fields": [{"name": "id", "type": "integer", "constraints": {"required": True}},
                     {"name": "customer", "type": "integer", "constraints": {"required": True}},
                     {"name": "amount", "type": "number"},
                     {"name": "email", "type": "string", "constraints": {"unique": True}},
                     {"name": "placed", "type": "date"}],
          "primaryKey": ["id"],
          "foreignKeys": [{"fields": ["customer"], "reference": {"resource": "customers", "fields": ["id"]}}]}


def _sqlite_db(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
            INSERT INTO customers VALUES (1, 'a'), (2, 'b');
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, amount TEXT, email TEXT, legacy TEXT);
            INSERT INTO orders VALUES (1, 1, '10', 'a@x', 'keep me'), (2, 2, '20.5', 'b@x', NULL),
                                      (3, 1, '7', NULL, 'me too');
            CREATE VIEW big AS SELECT id, email FROM orders WHERE amount > 8;
            CREATE TABLE audit (id INTEGER);
            CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN INSERT INTO audit VALUES (new.id); END;
        """)


def _sqlite_state(path) -> tuple:
    with sqlite3.connect(path) as conn:
        return (conn.execute("PRAGMA table_info(orders)").fetchall(),
                conn.execute("PRAGMA foreign_key_list(orders)").fetchall(),
                sorted(conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'orders'").fetchall()),
                conn.execute("SELECT *, typeof(amount) FROM orders ORDER BY id").fetchall())


def test_sqlite_migration_is_approved_applied_by_rebuild_and_rolled_back(zenctl, tmp_path):
    db = tmp_path / "app.db"
    _sqlite_db(db)
    before = _sqlite_state(db)
    cfg = config(zenctl, [{"name": "orders", "sqlite": str(db), "table": "orders", "schema": SCHEMA,
                           "allow_data_loss": True}])
    _, run = check(zenctl, cfg)
    (action,) = actions(run, "schema.migrate")
    assert action["status"] == "awaiting_approval" and action["mode"] == "approve"
    preview = action["preview"]
    assert "SQLite table rebuild" in preview and "inverse:" in preview and 'DROP TABLE "orders"' in preview
    assert "dropping column legacy loses its values" in preview
    assert _sqlite_state(db) == before

    approved = approve_pending(zenctl, cfg)
    assert approved["approval"]["status"] == "executed", approved
    applied = [a for a in approved["run"]["actions"] if a["kind"] == "schema.migrate"][0]
    with sqlite3.connect(db) as conn:
        columns = {r[1]: (r[2], r[3]) for r in conn.execute("PRAGMA table_info(orders)")}
        assert "legacy" not in columns and columns["placed"] == ("TEXT", 0) and columns["customer"] == ("INTEGER", 1)
        assert conn.execute("PRAGMA foreign_key_list(orders)").fetchall()[0][2] == "customers"
        assert conn.execute("SELECT amount FROM orders ORDER BY id").fetchall() == [(10.0,), (20.5,), (7.0,)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT id FROM big ORDER BY id").fetchall() == [(1,), (2,)]  # the view still works
        conn.execute("INSERT INTO orders (id, customer) VALUES (9, 1)")  # the trigger is back
        assert conn.execute("SELECT id FROM audit").fetchall() == [(9,)]
        conn.execute("DELETE FROM orders WHERE id = 9")
        conn.execute("DELETE FROM audit")
    _, again = check(zenctl, cfg)
    assert finding(again, "data:orders:schema")["status"] == "ok"

    code, undone = rollback(zenctl, cfg, applied["id"])
    assert code == 0 and undone["actions"][0]["kind"] == "schema.revert", undone
    assert _sqlite_state(db)[0] == before[0] and _sqlite_state(db)[3] == before[3]  # '10' is text '10' again


def test_a_change_that_loses_data_is_refused_unless_allowed(zenctl, tmp_path):
    db = tmp_path / "app.db"
    _sqlite_db(db)
    cfg = config(zenctl, [{"name": "orders", "sqlite": str(db), "table": "orders", "schema": SCHEMA}])
    _, run = check(zenctl, cfg)
    assert not actions(run, "schema.migrate")
    found = finding(run, "data:orders:schema")
    assert found["status"] == "warning" and "dropping column legacy loses its values" in found["message"]
    assert "allow_data_loss" in found["message"]


def test_a_table_changed_since_the_plan_is_not_migrated(zenctl, tmp_path):
    db = tmp_path / "app.db"
    _sqlite_db(db)
    cfg = config(zenctl, [{"name": "orders", "sqlite": str(db), "table": "orders", "schema": SCHEMA,
                           "allow_data_loss": True}])
    _, run = check(zenctl, cfg)
    params = actions(run, "schema.migrate")[0]["params"]
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE INDEX other ON orders (email)")
    with pytest.raises(migrate.MigrationError, match="changed since the migration was planned"):
        migrate.run(params, None, params["statements"], params["definition"], save=params["save"])
    with sqlite3.connect(db) as conn:
        assert "legacy" in [r[1] for r in conn.execute("PRAGMA table_info(orders)")]
    approved = approve_pending(zenctl, cfg)
    assert approved["approval"]["status"] == "void"  # its plan hash pinned the old definition


@pytest.fixture
def pg_tables(pg_dsn):
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    names = {"orders": f"dv_orders_{suffix}", "customers": f"dv_customers_{suffix}"}
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {names['customers']} (id int PRIMARY KEY, name text)")
        conn.execute(f"INSERT INTO {names['customers']} VALUES (1, 'a'), (2, 'b')")
        conn.execute(f"CREATE TABLE {names['orders']} (id int PRIMARY KEY, customer int, amount text, email text, "
                     "legacy text)")
        conn.execute(f"INSERT INTO {names['orders']} VALUES (1, 1, '10', 'a@x', 'keep me'), (2, 2, '20.5', 'b@x', "
                     "NULL), (3, 1, '7', NULL, 'me too')")
    yield names
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {names['orders']}, {names['customers']}")


def _pg_state(dsn: str, table: str) -> tuple:
    import psycopg

    with psycopg.connect(dsn) as conn:
        columns = conn.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE "
                               "table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
        constraints = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1",
                                   (table,)).fetchall()
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", (table,)).fetchall()
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    return columns, constraints, indexes, rows


def test_postgres_migration_is_approved_applied_and_rolled_back(zenctl, pg_dsn, pg_tables):
    schema = {**SCHEMA, "foreignKeys": [{"fields": ["customer"], "reference": {"resource": pg_tables["customers"],
                                                                                "fields": ["id"]}}]}
    table = pg_tables["orders"]
    before = _pg_state(pg_dsn, table)
    cfg = config(zenctl, [{"name": "orders", "postgres": pg_dsn, "table": table, "schema": schema,
                           "allow_data_loss": True}])
    _, run = check(zenctl, cfg)
    (action,) = actions(run, "schema.migrate")
    assert action["status"] == "awaiting_approval"
    assert f'ALTER TABLE "{table}" DROP COLUMN "legacy"' in action["preview"]
    assert f'inverse: ALTER TABLE "{table}" ADD COLUMN "legacy" text' in action["preview"]
    approved = approve_pending(zenctl, cfg)
    assert approved["approval"]["status"] == "executed", approved
    columns, constraints, indexes, rows = _pg_state(pg_dsn, table)
    assert ("customer", "integer", "NO") in columns and ("amount", "numeric", "YES") in columns
    assert "legacy" not in [c[0] for c in columns] and (f"{table}_email_key",) in constraints
    assert (f"{table}_customer_fkey",) in constraints and (f"{table}_customer_idx",) in indexes

    applied = [a for a in approved["run"]["actions"] if a["kind"] == "schema.migrate"][0]
    code, undone = rollback(zenctl, cfg, applied["id"])
    assert code == 0 and undone["actions"][0]["status"] == "applied", undone
    assert _pg_state(pg_dsn, table) == before


def test_postgres_refuses_without_allow_data_loss(zenctl, pg_dsn, pg_tables):
    schema = {**SCHEMA, "foreignKeys": []}
    cfg = config(zenctl, [{"name": "orders", "postgres": pg_dsn, "table": pg_tables["orders"], "schema": schema}])
    _, run = check(zenctl, cfg)
    assert not actions(run, "schema.migrate")
    assert "allow_data_loss" in finding(run, "data:orders:schema")["message"]
