"""The audit chain: appends verify, and any single edit, insertion or deletion of a past entry is caught."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zenctl.core import audit
from zenctl.core.audit import Entry
from zenctl.core.state import open_state

COLUMNS = ["ts", "agent", "run_id", "event", "message", "data", "prev_hash", "hash"]


@pytest.fixture
def state(tmp_path):
    s = open_state(tmp_path / "z.db")
    audit.append(s, [Entry("system_health", "finding", f"entry {i}", "run1", {"i": i}) for i in range(8)])
    return s


def test_intact_chain_verifies(state):
    result = audit.verify(state)
    assert result.ok and result.checked == 8


def test_appends_from_separate_calls_chain_on(state):
    audit.append(state, [Entry("x", "run.start", "more")])
    assert audit.verify(state).ok and audit.verify(state).checked == 9


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, 8), column=st.sampled_from(COLUMNS), junk=st.text(min_size=1, max_size=12))
def test_any_single_edit_is_detected(tmp_path_factory, seq, column, junk):
    s = open_state(tmp_path_factory.mktemp("a") / "z.db")
    audit.append(s, [Entry("system_health", "finding", f"entry {i}", "run1", {"i": i}) for i in range(8)])
    old = s.conn.execute(f"SELECT {column} FROM audit WHERE seq = ?", (seq,)).fetchone()[0]
    new = (old or "") + junk
    s.conn.execute(f"UPDATE audit SET {column} = ? WHERE seq = ?", (new, seq))
    result = audit.verify(s)
    assert not result.ok
    # the edited entry, or (for its hash column) the one that links to it, is named
    assert result.bad_seq in (seq, seq + 1) if column == "hash" else result.bad_seq == seq


def test_deleting_a_middle_entry_is_detected(state):
    state.conn.execute("DELETE FROM audit WHERE seq = 4")
    result = audit.verify(state)
    assert not result.ok and result.bad_seq == 5 and "entry 4 is missing" in result.problem


def test_deleting_the_last_entries_is_detected(state):
    state.conn.execute("DELETE FROM audit WHERE seq >= 7")
    result = audit.verify(state)
    assert not result.ok and "deleted" in result.problem


def test_inserting_an_entry_is_detected(state):
    row = state.conn.execute("SELECT * FROM audit WHERE seq = 8").fetchone()
    state.conn.execute("UPDATE audit SET seq = 9 WHERE seq = 8")
    state.conn.execute("INSERT INTO audit VALUES (8, ?, ?, ?, ?, ?, ?, ?, ?)", row[1:])
    assert not audit.verify(state).ok


def test_secrets_are_scrubbed(tmp_path):
    s = open_state(tmp_path / "z.db")
    audit.append(s, [Entry("a", "e", "connect postgres://app:hunter2@db/x password=hunter2",
                           data={"dsn": "redis://:hunter2@h:6379"})])
    row = s.conn.execute("SELECT message, data FROM audit").fetchone()
    assert "hunter2" not in row[0] and "hunter2" not in row[1]


def test_query_filters(state):
    audit.append(state, [Entry("other", "run.start", "x")])
    assert [e["agent"] for e in audit.query(state, agent="other")] == ["other"]
    assert len(audit.query(state, event="finding")) == 8
    assert len(audit.query(state, event="run")) == 1  # `run` matches run.*
    assert [e["seq"] for e in audit.query(state, limit=2)] == [8, 9]
    assert audit.query(state, since="2999-01-01T00:00:00.000000Z") == []


def test_verify_reads_a_consistent_snapshot(state):
    # a writer holding the lock does not make verify fail or block
    other = sqlite3.connect(state.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert audit.verify(state).ok
    finally:
        other.execute("ROLLBACK")


def test_time_filtered_queries_use_the_ts_index(state, monkeypatch):
    plans = []
    real = state.conn

    class Spy:
        def execute(self, sql, args=()):
            plans.extend(row[-1] for row in real.execute("EXPLAIN QUERY PLAN " + sql, args))
            return real.execute(sql, args)

    monkeypatch.setattr(state, "conn", Spy())
    audit.query(state, since="2026-01-01T00:00:00.000000Z")
    assert any("audit_ts" in step for step in plans), plans
