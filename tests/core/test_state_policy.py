"""The state file's safety rules and the policy mode table."""

import os
import sqlite3
import stat

import pytest
from pydantic import ValidationError

from zenctl.agents.health.config import SystemHealthConfig
from zenctl.core.config import Config
from zenctl.core.policy import Decision, mode_for
from zenctl.core.state import SCHEMA_VERSION, open_state
from zenctl.errors import StateError


def test_created_on_first_use_with_mode_0600_and_wal(tmp_path):
    state = open_state(tmp_path / "sub" / "z.db")
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "z.db").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "sub").st_mode) == 0o700
    assert state.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert state.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in state.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "metric_samples", "findings", "actions", "audit", "meta"} <= tables


def test_migration_applies_once_and_reopen_is_a_no_op(tmp_path):
    open_state(tmp_path / "z.db").close()
    state = open_state(tmp_path / "z.db")
    assert state.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == SCHEMA_VERSION


def test_not_sqlite_is_refused_and_left_byte_for_byte(tmp_path):
    path = tmp_path / "z.db"
    path.write_bytes(b"precious data, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StateError, match="not a SQLite database"):
        open_state(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["z.db"]


def test_directory_is_refused(tmp_path):
    with pytest.raises(StateError, match="is a directory"):
        open_state(tmp_path)


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "z.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StateError, match="newer zenctl"):
        open_state(path)
    assert path.read_bytes() == before


def test_missing_file_is_not_created_for_readers(tmp_path):
    assert open_state(tmp_path / "z.db", create=False) is None and not (tmp_path / "z.db").exists()


def test_seed_default_modes():
    config, agent = Config(), SystemHealthConfig()
    assert mode_for("fs.chmod", config, agent).mode == "auto"
    assert mode_for("logs.rotate", config, agent).mode == "auto"
    assert mode_for("schema.alter", config, agent).mode == "approve"
    assert mode_for("something.new", config, agent).mode == "approve"  # when unsure, ask


def test_the_seeds_dependency_keys_are_the_modes_of_the_dependency_kinds():
    config, agent = Config(), SystemHealthConfig()
    assert [mode_for(f"deps.upgrade_{k}", config, agent) for k in ("security", "minor", "patch", "major")] == [
        Decision("auto", "agents.dependency_manager.security_updates"),
        Decision("notify", "agents.dependency_manager.minor_updates"),
        Decision("notify", "agents.dependency_manager.minor_updates"),
        Decision("disabled", "agents.dependency_manager.major_updates")]
    mine = Config.model_validate({"agents": {"dependency_manager": {"major_updates": "approve"}}})
    assert mode_for("deps.upgrade_major", mine, agent) == Decision("approve",
                                                                   "agents.dependency_manager.major_updates")
    with pytest.raises(ValidationError, match="a major upgrade always needs a person"):
        Config.model_validate({"agents": {"dependency_manager": {"major_updates": "auto"}}})


def test_no_agent_may_make_a_guarded_kind_automatic_by_default():
    from zenctl.core import registry

    before = registry.specs()
    bad = registry.AgentSpec(name="rogue", title="Rogue", config="x:y", modes=(("schema.*", "auto", "migrations"),))
    with pytest.raises(ValueError, match="schema.* may not default to auto"):
        registry.install([*before, bad])
    assert registry.specs() == before  # refused whole: the registry is as it was
    for kind in ("schema.alter", "config.write", "security.patch", "deps.upgrade_major"):
        assert mode_for(kind, Config(), SystemHealthConfig()).mode != "auto"


def test_policy_modes_override_by_kind_then_family_and_auto_mitigate():
    config = Config.model_validate({"policy": {"modes": {"fs.*": "notify", "fs.chown": "disabled"}}})
    agent = SystemHealthConfig()
    assert mode_for("fs.chown", config, agent).mode == "disabled"
    assert mode_for("fs.chmod", config, agent) .rule == "policy.modes.fs.*"
    decision = mode_for("fs.mkdir", Config(), SystemHealthConfig(auto_mitigate=False))
    assert decision.mode == "notify" and "auto_mitigate" in decision.rule
