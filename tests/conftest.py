"""Shared fixtures: the installed `zenctl` run as a real subprocess against temporary config and state."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import zenctl.agents  # noqa: F401  (installs the agents' registry, as the entry point does)

ZENCTL = str(Path(sys.executable).with_name("zenctl"))


class Zenctl:
    """Runs the installed zenctl with an isolated HOME, XDG dirs and state file."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.db = tmp / "state" / "zenctl.db"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("ZENCTL_", "AGENT_", "ALERT_", "MAX_AUTO_REPAIRS"))}
        self.env.update(HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "xdg-config"),
                        XDG_STATE_HOME=str(tmp / "xdg-state"), ZENCTL_DB=str(self.db), COLUMNS="200")

    def config(self, text: str, name: str = "zenctl.yaml") -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([ZENCTL, *args], capture_output=True, text=True, cwd=self.tmp, timeout=timeout,
                              env={**self.env, **(env or {})})

    def json(self, *args: str, **kw) -> tuple[int, dict]:
        done = self(*args, "--json", **kw)
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
def zenctl(tmp_path: Path) -> Zenctl:
    return Zenctl(tmp_path)


# Thresholds no test machine reaches, so a run is OK unless a test says otherwise.
CALM = """\
agents:
  system_health:
    cpu_threshold: 100
    cpu_warning: 100
    memory_threshold: 100
    memory_warning: 100
    load_threshold: 1000
    load_warning: 1000
    disk_threshold: 100
    disk_warning: 100
    inode_threshold: 100
    inode_warning: 100
    swap_threshold: 100
    swap_warning: 100
"""

# Appended to a config (after its system_health section): the other agents off, for tests of `run --due` that are
# about one agent's slots (the dependency agent would otherwise scan zenctl's own interpreter against PyPI).
OTHERS_OFF = "".join(f"  {name}:\n    enabled: false\n" for name in ("dependency_manager", "log_analyzer",
                                                                      "data_validator"))


def shift_runs(zenctl, agent: str, seconds: float) -> None:
    """Move the agent's recorded runs back in time, as if they had happened `seconds` earlier."""
    from zenctl.core.timeutil import epoch, iso

    with sqlite3.connect(zenctl.db) as conn:
        for run_id, started in conn.execute("SELECT id, started FROM runs WHERE agent = ?", (agent,)).fetchall():
            conn.execute("UPDATE runs SET started = ? WHERE id = ?", (iso(epoch(started) - seconds), run_id))


def _service_or_skip(what: str, error: Exception) -> None:
    """A server the tests need is not there: skip with the reason, except under CI, where it is a failure."""
    message = f"{what} is not reachable ({error}); start it as the README says"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: not skipping)")
    pytest.skip(message)


@pytest.fixture
def pg_dsn() -> str:
    """The PostgreSQL server of ZENCTL_TEST_PG_DSN (default: local trust auth, database test)."""
    dsn = os.environ.get("ZENCTL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        _service_or_skip(f"PostgreSQL at {dsn}", exc)
    return dsn


@pytest.fixture
def redis_url() -> str:
    """The Redis server of ZENCTL_TEST_REDIS_URL (default: local, port 6379)."""
    url = os.environ.get("ZENCTL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _service_or_skip(f"Redis at {url}", exc)
    return url
