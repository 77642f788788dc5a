"""Shared fixtures: the installed `zenctl` run as a real subprocess against temporary config and state."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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


def shift_runs(zenctl, agent: str, seconds: float) -> None:
    """Move the agent's recorded runs back in time, as if they had happened `seconds` earlier."""
    from zenctl.core.timeutil import epoch, iso

    with sqlite3.connect(zenctl.db) as conn:
        for run_id, started in conn.execute("SELECT id, started FROM runs WHERE agent = ?", (agent,)).fetchall():
            conn.execute("UPDATE runs SET started = ? WHERE id = ?", (iso(epoch(started) - seconds), run_id))
