"""Chaos: what happens when repairs fail or hang, a run is killed mid-action, an operator pulls the emergency stop,
another process holds the state file, and many runs race the rate limit. Real processes and files throughout."""

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.conftest import ZENCTL
from tests.core.test_governance import db_rows, service_config

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _marker_processes(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
            and p.pid != os.getpid()]


def _applying(zenctl):
    if not zenctl.db.exists():
        return None
    try:
        rows = db_rows(zenctl, "SELECT id FROM actions WHERE status = 'applying'")
    except sqlite3.OperationalError:
        return None
    return rows[0][0] if rows else None


def test_a_failing_repair_is_recorded_and_retried_later(zenctl):
    config = zenctl.config(service_config("exit 2", restart="echo 'unit web not found' >&2; exit 5"))
    code, run = zenctl.json("health", "check", "-c", str(config))
    action = run["actions"][0]
    assert code == 2 and action["status"] == "failed"
    assert action["message"] == "restart command exited 5: unit web not found"
    code, run = zenctl.json("health", "check", "-c", str(config))
    assert run["actions"][0]["gate"] == "backoff" and "waits for backoff until" in run["actions"][0]["reason"]


def test_a_hanging_repair_is_killed_at_its_timeout(zenctl):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}.5"
    config = zenctl.config(service_config("exit 2", restart=f"sleep {marker}", restart_timeout=1))
    started = time.monotonic()
    code, run = zenctl.json("health", "check", "-c", str(config))
    assert time.monotonic() - started < 10
    assert run["actions"][0]["status"] == "failed"
    assert run["actions"][0]["message"] == "restart command timed out after 1 s (killed)"
    assert not _marker_processes(f"sleep {marker}"), "the whole process group is killed"


def test_kill_9_in_the_middle_of_an_action(zenctl):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}.25"
    config = zenctl.config(service_config("exit 2", restart=f"sleep {marker}", restart_timeout=60))
    run = subprocess.Popen([ZENCTL, "health", "check", "-c", str(config)], env=zenctl.env, cwd=zenctl.tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    action_id = _wait_for(lambda: _applying(zenctl), what="the action to start")
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    for child in _marker_processes(f"sleep {marker}"):
        child.kill()  # the restart command outlives a SIGKILLed parent; a real one would finish or hang
    assert db_rows(zenctl, "SELECT status FROM actions WHERE id = ?", (action_id,)) == [("applying",)]

    code, after = zenctl.json("health", "check", "-c", str(zenctl.config(service_config("exit 0"), "ok.yaml")))
    interrupted = [f for f in after["findings"] if f["check"] == f"action:{action_id}"]
    assert interrupted and interrupted[0]["status"] == "warning" and "interrupted" in interrupted[0]["message"]
    assert code == 1
    assert db_rows(zenctl, "SELECT status FROM actions WHERE id = ?", (action_id,)) == [("interrupted",)]
    assert ("killed",) in db_rows(zenctl, "SELECT status FROM runs")
    assert zenctl("audit", "verify").returncode == 0, "nothing half-recorded: the chain is intact"


def test_emergency_stop_terminates_running_runs_and_blocks_new_ones(zenctl):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}.75"
    config = zenctl.config(service_config("exit 2", restart=f"sleep {marker}", restart_timeout=60))
    run = subprocess.Popen([ZENCTL, "health", "check", "-c", str(config)], env=zenctl.env, cwd=zenctl.tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    action_id = _wait_for(lambda: _applying(zenctl), what="the action to start")
    code, stopped = zenctl.json("stop", "--emergency", "--reason", "runaway restarts")
    assert code == 0 and [t["how"] for t in stopped["terminated"]] == ["SIGTERM"]
    assert run.wait(10) == 3
    assert not _marker_processes(f"sleep {marker}"), "the restart in flight was killed with its run"
    assert db_rows(zenctl, "SELECT status FROM actions WHERE id = ?", (action_id,)) == [("failed",)]
    stops = zenctl.json("audit", "--event", "control.emergency_stop")[1]["entries"]
    assert stops and "runaway restarts" in stops[0]["message"]

    blocked = zenctl("health", "check", "-c", str(config))
    assert blocked.returncode == 3 and "emergency-stopped" in blocked.stderr and "zenctl resume" in blocked.stderr
    _, status = zenctl.json("status")
    assert len(status["stopped"]) == 4

    fixed = zenctl.config(service_config("exit 2", restart="true"), "fixed.yaml")
    assert zenctl("resume", "--notify-only-runs", "1").returncode == 0
    _, first = zenctl.json("health", "check", "-c", str(fixed))
    assert [(a["status"], a["gate"]) for a in first["actions"]] == [("held", "notify_only")]
    _, second = zenctl.json("health", "check", "-c", str(fixed))
    assert second["actions"][0]["gate"] != "notify_only"


def test_plain_stop_blocks_new_runs_only(zenctl):
    assert zenctl("stop", "--reason", "maintenance").returncode == 0
    blocked = zenctl("health", "check")
    assert blocked.returncode == 3 and "stopped by" in blocked.stderr and "maintenance" in blocked.stderr
    resumed = zenctl("resume", "--agent", "system_health")
    assert resumed.returncode == 0
    assert zenctl("health", "check", "-c", str(zenctl.config(service_config("exit 0")))).returncode == 0
    _, status = zenctl.json("status")
    assert {s["agent"] for s in status["stopped"]} == {"dependency_manager", "log_analyzer", "data_validator"}


def test_state_file_locked_by_another_process(zenctl):
    assert zenctl("health", "check").returncode in (0, 1)
    before = db_rows(zenctl, "SELECT COUNT(*) FROM audit")[0][0]
    holder = sqlite3.connect(zenctl.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = zenctl("health", "check", env={"ZENCTL_BUSY_TIMEOUT": "1"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 3
    assert len(done.stderr.strip().splitlines()) == 1 and "locked by another process" in done.stderr
    assert "Traceback" not in done.stderr
    assert db_rows(zenctl, "SELECT COUNT(*) FROM audit")[0][0] == before, "nothing half-written"
    # a lock held briefly is waited out
    holder = sqlite3.connect(zenctl.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    later = subprocess.Popen([ZENCTL, "health", "check"], env={**zenctl.env, "ZENCTL_BUSY_TIMEOUT": "20"},
                             cwd=zenctl.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    holder.execute("ROLLBACK")
    holder.close()
    assert later.wait(30) in (0, 1), later.stderr.read()
    assert zenctl("audit", "verify").returncode == 0


def _racing_run(db: str, name: str, path: str, barrier) -> None:
    """One of 20 concurrent runs: an agent (its own name, so its own run lock) proposing one automatic fs.touch."""
    import zenctl.agents  # noqa: F401  (installs the registry, as the entry point does)
    from zenctl.core.actions import Proposal
    from zenctl.core.agent import Assessment, BaseAgent, Finding
    from zenctl.core.config import LoadedConfig, load_config
    from zenctl.core.runtime import run_agent
    from zenctl.core.state import open_state

    class Racer(BaseAgent):
        title = "racer"

        def assess(self, ctx):
            return Assessment([Finding(f"path:{path}", "warning", f"{path} is missing")],
                              [Proposal("fs.touch", path, {"path": path, "mode": 0o600, "uid": -1, "gid": -1},
                                        "missing", f"path:{path}")])

    Racer.name = name
    loaded: LoadedConfig = load_config(environ={"MAX_AUTO_REPAIRS_PER_HOUR": "5"})
    state = open_state(Path(db))
    barrier.wait(30)
    run_agent(Racer(), loaded, state, raise_errors=True)


def test_twenty_concurrent_runs_never_exceed_the_hourly_limit(tmp_path):
    db = tmp_path / "state" / "zenctl.db"
    from zenctl.core.state import open_state

    open_state(db).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(20)
    paths = [tmp_path / f"file{n}" for n in range(20)]
    procs = [context.Process(target=_racing_run, args=(str(db), f"racer_{n}", str(p), barrier))
             for n, p in enumerate(paths)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sum(p.exists() for p in paths) == 5
    with sqlite3.connect(db) as conn:
        statuses = sorted(conn.execute("SELECT status, COALESCE(gate, '') FROM actions").fetchall())
    assert statuses == [("applied", "")] * 5 + [("deferred", "rate_limit")] * 15
