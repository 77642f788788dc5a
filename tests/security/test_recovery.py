"""State and recovery: a file system filled by another user, and a clock that was ahead (issue 12, findings 18-19).

The file system is a real 3 MB tmpfs holding both the state and a tmp root that a throwaway user fills; the clock
that was ahead is zenctl itself run with `time.time` shifted a year forward, so the records are what a real run
writes.
"""

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CALM
from tests.security.conftest import ROOT_ONLY, as_user, tmpfs_with_tmp
from zenctl.core.timeutil import iso

pytestmark = [ROOT_ONLY]

YEAR = 365 * 86400

# Fill the file system as the user: 64 KiB files, then smaller ones, until nothing fits; old ones when asked.
FILL = """
import os, sys
root, old, n = sys.argv[1], sys.argv[2] == "old", 0
for size in (65536, 4096, 512, 1):
    while True:
        path = os.path.join(root, f"{os.getpid()}-{n}")
        try:
            with open(path, "wb") as handle:
                handle.write(b"x" * size)
        except OSError:
            if os.path.exists(path) and os.path.getsize(path) == 0:
                os.unlink(path)
            break
        n += 1
        if old:
            os.utime(path, (1_000_000_000, 1_000_000_000))
print(n)
"""


@pytest.fixture
def full_mount():
    """A 3 MB tmpfs with `state/` (root's) and `tmp/` (1777) on it, reachable by any user."""
    with tmpfs_with_tmp("3m", "zenctl-full-") as base:
        (base / "state").mkdir(mode=0o700)
        yield base


def _fill(intruder, root: Path, old: bool) -> int:
    done = as_user(intruder, ["/usr/bin/python3", "-c", FILL, str(root), "old" if old else "new"])
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_full_state_file_system_still_cleans_and_names_what_is_full(zenctl, intruder, full_mount):
    """Finding 18: the run that finds the state's file system full still records and cleans the user's old files;
    when even that room is gone, one line names the full mount and its free bytes, exit 3."""
    zenctl.env["ZENCTL_DB"] = str(full_mount / "state" / "zenctl.db")
    config = zenctl.config(f"agents: {{system_health: {{tmp: [{{root: '{full_mount / 'tmp'}', age: 1d, "
                           "age_by: [mtime]}]}}\n")
    assert zenctl("maintain", "tmp", "-c", str(config)).returncode == 0  # the state exists before the disk fills

    planted = _fill(intruder, full_mount / "tmp", old=True)
    assert planted > 20
    done = zenctl("maintain", "tmp", "-c", str(config), "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    action = run["actions"][0]
    assert (action["kind"], action["status"]) == ("tmp.clean", "applied")
    assert any(f"file system ({full_mount}) is full" in note for note in run["notes"]), run["notes"]
    assert list((full_mount / "tmp").iterdir()) == [], "the user's old files were cleaned"
    with sqlite3.connect(zenctl.env["ZENCTL_DB"]) as conn:
        assert conn.execute("SELECT status FROM actions WHERE id = ?", (action["id"],)).fetchone() == ("applied",)

    # The user keeps filling with new files (nothing to clean): once no room is left, say what is full.
    for _ in range(3):
        _fill(intruder, full_mount / "tmp", old=False)
        done = zenctl("maintain", "tmp", "-c", str(config))
        if done.returncode != 0:
            break
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert f"file system mounted at {full_mount} is full" in done.stderr and "bytes free" in done.stderr


# zenctl with its clock a given number of seconds ahead (argv[1]), the rest of argv as the command line.
AHEAD = ("import sys, time; real = time.time; ahead = float(sys.argv.pop(1)); time.time = lambda: real() + ahead; "
         "from zenctl.cli import main; sys.argv[0] = 'zenctl'; main()")


def test_times_from_a_clock_that_was_ahead_do_not_hold_repairs(zenctl, tmp_path):
    """Finding 19: repairs that failed while the clock was a year ahead (backoff until then, a circuit opened then,
    the hour's repair budget spent then) do not hold the repair once the clock is right again."""
    flag, check = tmp_path / "up", tmp_path / "check"
    check.write_text(f"#!/bin/sh\ntest -e {flag} || exit 2\n")  # CRITICAL (down) until the flag exists
    check.chmod(0o755)
    service = "    services: [{{name: web, command: '%s', restart: '{}', restart_wait: 1}}]\n" % check
    failing = zenctl.config(CALM + service.format("false"), "failing.yaml")
    env = {"MAX_AUTO_REPAIRS_PER_HOUR": "3"}
    ahead = YEAR
    for wait in (0, 61, 121):  # past each backoff, so each run makes a (failing) attempt
        ahead += wait
        done = subprocess.run([sys.executable, "-c", AHEAD, str(ahead), "health", "check", "-c", str(failing),
                               "--json"], capture_output=True, text=True, cwd=tmp_path, env={**zenctl.env, **env},
                              timeout=60)
        assert [a["status"] for a in json.loads(done.stdout)["actions"]] == ["failed"], done.stderr
    with sqlite3.connect(zenctl.db) as conn:
        assert conn.execute("SELECT state FROM circuits").fetchall() == [("open",)]

    working = zenctl.config(CALM + service.format(f"touch {flag}"), "working.yaml")
    code, run = zenctl.json("health", "check", "-c", str(working), env=env)
    assert [(a["kind"], a["status"], a["gate"]) for a in run["actions"]] == [("service.restart", "applied", "")]
    assert code == 0 and flag.exists()


def test_an_approval_dated_by_a_clock_that_was_ahead_neither_blocks_nor_lasts(zenctl, tmp_path):
    target = tmp_path / "data"
    target.mkdir(mode=0o700)
    zenctl.config(CALM + f"    paths:\n      - path: {target}\n        mode: \"0750\"\n"
                  "policy:\n  modes:\n    fs.chmod: approve\n")
    _, first = zenctl.json("health", "check")
    request = first["actions"][0]["approval_id"]
    with sqlite3.connect(zenctl.db) as conn:  # rejected while the clock was a year ahead
        conn.execute("UPDATE approvals SET status = 'rejected', decided_by = 'x', expires = ? WHERE id = ?",
                     (iso(time.time() + YEAR), request))
    _, second = zenctl.json("health", "check")
    assert second["actions"][0]["status"] == "awaiting_approval", second["actions"][0]
    assert second["actions"][0]["approval_id"] != request
