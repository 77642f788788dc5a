"""`zenctl run` and `zenctl schedule` through the installed zenctl: due runs, concurrent ticks, missed runs,
the user's real crontab, /etc/cron.d, and a real cron daemon firing an agent."""

import json
import os
import shutil
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import CALM, OTHERS_OFF, ZENCTL, shift_runs

pytestmark = pytest.mark.integration
IN_CI = os.environ.get("CI") == "true"
# system_health alone: the other agents are disabled, so each test is about one agent's slots
DAILY = CALM.replace("  system_health:\n", "  system_health:\n    interval: 86400\n") + OTHERS_OFF


def _runs(zenctl, agent: str = "system_health") -> int:
    with sqlite3.connect(zenctl.db) as conn:
        return conn.execute("SELECT COUNT(*) FROM runs WHERE agent = ? AND dry_run = 0", (agent,)).fetchone()[0]


def test_run_due_runs_an_agent_once_per_slot(zenctl):
    zenctl.config(DAILY)
    code, out = zenctl.json("run", "--due")
    assert code == 0, out
    outcomes = {a["agent"]: a["outcome"] for a in out["agents"]}
    assert outcomes == {"system_health": "ran", "dependency_manager": "disabled", "log_analyzer": "disabled",
                        "data_validator": "disabled"}
    assert out["agents"][0]["run"]["status"] == "ok"
    code, out = zenctl.json("run", "--due")
    assert code == 0 and out["agents"][0]["outcome"] == "not_due" and out["agents"][0]["next_due"]
    quiet = zenctl("run", "--due", "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert _runs(zenctl) == 1
    shift_runs(zenctl, "system_health", 86400)
    code, out = zenctl.json("run", "system_health", "--due")
    assert code == 0 and out["status"] == "ok" and out["run_id"]
    assert _runs(zenctl) == 2


def test_dry_runs_and_disabled_agents(zenctl):
    zenctl.config(DAILY)
    code, out = zenctl.json("run", "--due", "--dry-run")
    assert out["agents"][0]["run"]["dry_run"] is True
    code, out = zenctl.json("run", "--due", "--dry-run")
    assert out["agents"][0]["outcome"] == "ran"  # a dry-run does not use up the slot
    code, out = zenctl.json("run", "--due", env={"AGENT_SYSTEM_HEALTH_ENABLED": "false"})
    assert out["agents"][0]["outcome"] == "disabled" and _runs(zenctl) == 0


def test_run_errors_are_one_line(zenctl):
    for args, message in [((), "name an AGENT or give --due"),
                          (("nosuch",), "unknown agent 'nosuch'")]:
        done = zenctl("run", *args)
        assert done.returncode == 3 and message in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr


def test_ten_concurrent_ticks_run_each_due_agent_exactly_once(zenctl):
    zenctl.config(DAILY)
    for round_number in (1, 2):
        procs = [subprocess.Popen([ZENCTL, "run", "--due", "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=zenctl.tmp, env=zenctl.env)
                 for _ in range(10)]
        outcomes = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, stderr
            outcomes.append(json.loads(stdout)["agents"][0]["outcome"])
        assert outcomes.count("ran") == 1, outcomes
        assert set(outcomes) <= {"ran", "not_due", "running"}
        assert _runs(zenctl) == round_number
        with sqlite3.connect(zenctl.db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'overlap'").fetchone()[0] == 0
        shift_runs(zenctl, "system_health", 86400)  # the next round is a new slot


def test_stale_agents_in_status_and_as_a_health_finding(zenctl):
    zenctl.config(CALM)
    assert zenctl("health", "check").returncode == 0
    _, report = zenctl.json("status")
    health = report["agents"][0]
    assert health["schedule"] == "every 300 s" and health["stale"] is None and health["next_due"]
    assert health["judged"] and not report["agents"][1]["judged"]  # dependency_manager never ran
    shift_runs(zenctl, "system_health", 700)
    _, report = zenctl.json("status")
    assert "no run since" in report["agents"][0]["stale"]
    # another agent that ran once and then stopped running: the health check reports it, alertably
    with sqlite3.connect(zenctl.db) as conn:
        conn.execute("INSERT INTO runs (id, agent, started, ended, status, dry_run) VALUES "
                     "('old1', 'log_analyzer', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:01.000000Z', "
                     "'ok', 0)")
    code, out = zenctl.json("health", "check")
    stale = [f for f in out["findings"] if f["check"] == "schedule:log_analyzer"]
    assert code == 2 and stale[0]["status"] == "critical" and "log_analyzer is stale" in stale[0]["message"]
    _, problems = zenctl.json("status")
    assert any(p["check_name"] == "schedule:log_analyzer" for p in problems["problems"])
    zenctl("stop", "--reason", "maintenance")
    _, report = zenctl.json("status")
    assert all(a["stale"] is None for a in report["agents"])  # a stopped agent is stopped, not stale


def _crontab_available() -> bool:
    return shutil.which("crontab") is not None


needs_crontab = pytest.mark.skipif(not _crontab_available() and not IN_CI,
                                   reason="crontab is not installed (Debian: apt-get install cron)")


@pytest.fixture
def user_crontab():
    """The real crontab of the user running the tests, restored afterwards."""
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    yield before.stdout if before.returncode == 0 else None
    if before.returncode == 0:
        subprocess.run(["crontab", "-"], input=before.stdout, text=True, check=True)
    else:
        subprocess.run(["crontab", "-r"], capture_output=True)


def _crontab() -> str:
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


@needs_crontab
def test_schedule_install_is_idempotent_and_remove_restores_the_crontab_exactly(zenctl, user_crontab):
    mine = "MAILTO=''\n# keep me\n17 4 * * * /bin/true backup\n"
    subprocess.run(["crontab", "-"], input=mine, text=True, check=True)
    config = zenctl.config(CALM)
    shown = zenctl("schedule", "show")
    assert shown.returncode == 0
    line = shown.stdout.splitlines()[1]
    assert line.startswith("*/5 * * * * PATH=") and f"ZENCTL_CONFIG={config}" in line
    assert f"ZENCTL_DB={zenctl.db}" in line and line.endswith("run system_health --due --quiet")
    preview = zenctl("schedule", "install", "--dry-run")
    assert preview.returncode == 0 and "+*/5 * * * *" in preview.stdout and _crontab() == mine
    done = zenctl("schedule", "install")
    assert done.returncode == 0, done.stderr
    installed = _crontab()
    assert installed.startswith(mine) and installed[len(mine):] == shown.stdout.split("# not scheduled")[0]
    again = zenctl("schedule", "install")
    assert "no change" in again.stdout and _crontab() == installed
    subprocess.run(["crontab", "-"], input=installed + "0 5 * * * /bin/true after\n", text=True, check=True)
    assert zenctl("schedule", "remove").returncode == 0
    assert _crontab() == mine + "0 5 * * * /bin/true after\n"
    _, audit = zenctl.json("audit", "--event", "action.applied")
    assert [e["message"].split()[0] for e in audit["entries"]] == ["cron.crontab", "cron.crontab"]
    assert audit["entries"][0]["data"]["before"] == {"crontab": mine}  # what was there, for a person to undo


@needs_crontab
def test_schedule_remove_of_a_crontab_zenctl_created_leaves_none(zenctl, user_crontab):
    subprocess.run(["crontab", "-r"], capture_output=True)
    zenctl.config(CALM)
    assert zenctl("schedule", "install").returncode == 0 and "BEGIN zenctl" in _crontab()
    assert zenctl("schedule", "remove").returncode == 0
    assert subprocess.run(["crontab", "-l"], capture_output=True, text=True).returncode != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="writes /etc/cron.d: needs root")
def test_system_schedule_has_a_user_column_and_can_be_rolled_back(zenctl):
    path = "/etc/cron.d/zenctl"
    saved = open(path).read() if os.path.exists(path) else None
    try:
        if saved is not None:
            os.unlink(path)
        zenctl.config(CALM.replace("  system_health:\n", '  system_health:\n    schedule: "0 4 1 1 *"\n'))
        preview = zenctl("schedule", "install", "--system", "--dry-run")
        assert preview.returncode == 0 and "+0 4 1 1 * root PATH=" in preview.stdout
        assert not os.path.exists(path)
        code, out = zenctl.json("schedule", "install", "--system")
        assert code == 0 and out["changed"], out
        assert oct(os.stat(path).st_mode & 0o777) == "0o644"
        assert "0 4 1 1 * root PATH=" in open(path).read()
        action = out["run"]["actions"][0]["id"]
        assert zenctl("rollback", action).returncode == 0  # cron.file is snapshotted: rollback removes it
        assert not os.path.exists(path)
        assert zenctl("schedule", "install", "--system").returncode == 0
        assert zenctl("schedule", "remove", "--system").returncode == 0 and not os.path.exists(path)
    finally:
        if saved is not None:
            with open(path, "w") as handle:
                handle.write(saved)
        elif os.path.exists(path):
            os.unlink(path)


def _cron_running() -> bool:
    return subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_real_cron_daemon_fires_the_installed_schedule(zenctl, user_crontab):
    if not (_crontab_available() and _cron_running()):
        if IN_CI:
            pytest.fail("CI=true but no cron daemon is running (.ci/run installs and starts Debian's cron)")
        pytest.skip("no cron daemon running (Debian: apt-get install cron && cron)")
    subprocess.run(["crontab", "-r"], capture_output=True)
    zenctl.config(CALM.replace("  system_health:\n", "  system_health:\n    interval: 60\n"))
    assert zenctl("schedule", "install").returncode == 0
    deadline = time.time() + 150
    started = []
    while time.time() < deadline and not started:
        time.sleep(3)
        if zenctl.db.exists():
            _, out = zenctl.json("audit", "--event", "run.start")
            started = [e for e in out["entries"] if e["agent"] == "system_health"]
    assert started, "cron did not start the agent within 150 s"
    _, runs = zenctl.json("status")
    assert runs["agents"][0]["last_run"]["status"] in ("ok", "running")
    assert zenctl("schedule", "remove").returncode == 0
    assert subprocess.run(["crontab", "-l"], capture_output=True, text=True).returncode != 0
