"""What a new user meets in the first minute (issue 14), through the installed zenctl in a subprocess."""

import json
import math
import os
import pty
import re
import subprocess
import time

import pytest

from tests.conftest import CALM, ZENCTL, shift_runs

pytestmark = pytest.mark.integration

# psutil.cpu_times() for a quiet first run: between the two readings only idle moves, and `total - idle` of these
# sums differs by a float rounding of -4.5e-10, which printed as "CPU -0.0% now" and stored -0.0.
QUIET_CPU = """\
import collections, psutil
_fields = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
_times = collections.namedtuple("scputimes", _fields)
_calls = []
def _cpu_times(percpu=False):
    _calls.append(1)
    idle = 6897.59 if len(_calls) == 1 else 6897.79
    return _times(758.38, 0.0, 2557.56, idle, 25.51, 0.0, 20.21, 1.31, 0.0, 0.0)
psutil.cpu_times = _cpu_times
"""


def test_a_quiet_first_run_reports_cpu_0_not_negative_zero(zenctl, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(QUIET_CPU)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    config = str(zenctl.config(CALM))
    shown = zenctl("health", "check", "-c", config, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "CPU 0.0% now" in shown.stdout and "-0" not in shown.stdout
    code, out = zenctl.json("health", "check", "-c", config, env={**env, "ZENCTL_DB": str(tmp_path / "fresh.db")})
    cpu = next(f for f in out["findings"] if f["check"] == "cpu")
    assert cpu["message"].startswith("CPU 0.0% now")
    for value in (cpu["value"], cpu["evidence"]["current_percent"]):
        assert value == 0 and math.copysign(1, value) == 1  # +0.0, never -0.0


def on_terminal(zenctl, *args: str) -> tuple[int, str, str]:
    """Run zenctl with stdout on a pseudo-terminal (stderr a pipe): exit code, what the terminal got, stderr."""
    master, slave = pty.openpty()
    try:
        done = subprocess.run([ZENCTL, *args], stdout=slave, stderr=subprocess.PIPE, text=True, cwd=zenctl.tmp,
                              env=zenctl.env, timeout=60)
        os.close(slave)
        slave = None
        seen = b""
        os.set_blocking(master, False)
        while True:
            try:
                chunk = os.read(master, 65536)
            except (BlockingIOError, OSError):  # nothing left, or EIO once the terminal's last writer closed
                break
            if not chunk:
                break
            seen += chunk
        return done.returncode, seen.decode(), done.stderr
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_an_empty_audit_window_says_so_on_a_terminal_only(zenctl):
    code, shown, err = on_terminal(zenctl, "audit", "--last", "1h")
    assert (code, shown) == (0, "") and err.startswith("zenctl: no audit entries since ")
    assert "no state file yet" in err and len(err.splitlines()) == 1
    assert zenctl("health", "check", "-c", str(zenctl.config(CALM))).returncode == 0
    time.sleep(1.1)  # the run's entries fall out of a one-second window
    code, shown, err = on_terminal(zenctl, "audit", "--last", "1s")
    assert (code, shown) == (0, "")
    assert re.fullmatch(r"zenctl: no audit entries since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(try --last 24h\)\n", err)
    code, shown, err = on_terminal(zenctl, "audit", "--last", "1h")
    assert code == 0 and "run.start" in shown and err == ""
    script = zenctl("audit", "--last", "1s")  # a script, not a terminal: nothing either side, exit 0
    assert (script.returncode, script.stdout, script.stderr) == (0, "", "")
    assert zenctl("audit", "--last", "1s", "--json").stdout.strip() == '{\n  "entries": []\n}'


def test_help_lists_the_agents_first_in_panels(zenctl):
    done = zenctl("--help")
    assert done.returncode == 0
    panels = re.findall(r"╭─ (.+?) ─", done.stdout)
    assert panels == ["Options", "Agents", "Governance", "Audit and status", "Configuration"]
    commands = re.findall(r"^│ ([a-z]+) ", done.stdout, re.MULTILINE)
    assert commands[:6] == ["health", "deps", "logs", "data", "run", "maintain"]
    assert sorted(commands) == sorted(["health", "deps", "logs", "data", "run", "maintain", "approve", "reject", "approvals", "stop",
                                       "resume", "rollback", "silence", "alerts", "status", "audit", "config",
                                       "schedule", "completion"])


def table(out: str) -> dict[str, list[str]]:
    """The rows of a printed table by first cell, each cell's wrapped lines joined by spaces."""
    rows: dict[str, list[str]] = {}
    current = None
    for text in out.splitlines():
        if not text.startswith("│"):
            continue
        cells = [c.strip() for c in text.split("│")[1:-1]]
        if cells[0]:
            current = rows.setdefault(cells[0], cells)
        elif current is not None:
            current[:] = [f"{a} {b}".strip() for a, b in zip(current, cells)]
    return rows


AGENT_KEYS = {"agent", "enabled", "last_run", "ago", "schedule", "run_as", "next_due", "judged", "stale"}
RUN_KEYS = {"id", "agent", "pid", "started", "ended", "status", "dry_run", "wall_seconds", "cpu_user_seconds",
            "cpu_system_seconds", "peak_rss_bytes", "message"}


def test_status_prints_times_for_a_person(zenctl):
    config = str(zenctl.config(CALM))
    env = {"TZ": "UTC"}
    assert zenctl("health", "check", "-c", config).returncode == 0
    shown = zenctl("status", "-c", config, env=env).stdout
    rows = table(shown)  # Agent, Enabled, Schedule, Last run, Result, Wall s, CPU s, Peak RSS, Run, Next due, ...
    assert re.fullmatch(r"\d\d:\d\d:\d\d \((just now|\d+s ago)\)", rows["system_health"][3])
    assert re.fullmatch(r"\d\d:\d\d:\d\d \((just now|in \d+[sm]|\d+s ago)\)", rows["system_health"][9])
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", shown)  # no microseconds anywhere
    for agent in ("dependency_manager", "log_analyzer", "data_validator"):
        assert rows[agent][1:4] == ["yes", rows[agent][2], "never"]

    shift_runs(zenctl, "system_health", 2 * 86400 + 600)
    code, out = zenctl.json("status", "-c", config)
    assert set(out) == {"stopped", "safe_mode", "notify_only_runs", "approvals", "circuits", "problems",
                        "undelivered_alerts", "agents"}
    row = next(a for a in out["agents"] if a["agent"] == "system_health")
    assert set(row) == AGENT_KEYS and set(row["last_run"]) == RUN_KEYS and row["ago"] == "2d"
    started = row["last_run"]["started"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", started)  # --json keeps full precision
    rows = table(zenctl("status", "-c", config, env=env).stdout)
    assert rows["system_health"][3] == f"{started[:10]} {started[11:16]} (2d ago)"
