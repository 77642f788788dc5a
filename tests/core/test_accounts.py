"""Service accounts for real: as root, with a user this test creates, an agent with `run_as` runs as that user
(checked from inside the run), and the state it shares with root stays writable by both."""

import json
import os
import pwd
import secrets
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CALM, OTHERS_OFF, ZENCTL, Zenctl, shift_runs

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                 reason="creating a user and dropping privileges needs root")]

WHOAMI = 'echo "$(id -un) $(id -u) $(id -g) [$(id -G)]"'


@pytest.fixture
def account():
    """A throwaway system user with its own group, removed afterwards."""
    assert os.geteuid() == 0, "CI=true: this test must run as root"
    name = f"zt{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
                    name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture
def reachable_python():
    """The account must be able to reach this Python: grant traverse (x) on /root while the test runs when the
    interpreter lives under a 0700 /root, as pyenv's does on the test machines. Real installs live in /usr or /opt."""
    real = os.path.realpath(ZENCTL)
    interpreter = os.path.realpath(Path(ZENCTL).with_name("python"))
    blocked = [p for p in ("/root",) if (interpreter.startswith(p + "/") or real.startswith(p + "/"))
               and not os.stat(p).st_mode & stat.S_IXOTH]
    modes = {p: os.stat(p).st_mode for p in blocked}
    for p in blocked:
        os.chmod(p, modes[p] | stat.S_IXOTH)
    yield
    for p, mode in modes.items():
        os.chmod(p, stat.S_IMODE(mode))


@pytest.fixture
def shared(account, reachable_python):
    """A Zenctl whose state lives in a directory of its own that the account can reach."""
    base = Path(tempfile.mkdtemp(prefix="zenctl-accounts-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    runner = Zenctl(base)
    try:
        yield runner
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _config(runner: Zenctl, run_as: str | None, interval: int = 300) -> None:
    text = CALM.replace("  system_health:\n", f"  system_health:\n    interval: {interval}\n"
                        + (f"    run_as: {run_as}\n" if run_as else ""))
    runner.config(text + f"    services:\n      - name: whoami\n        command: {json.dumps(WHOAMI)}\n" + OTHERS_OFF)


def _whoami(out: dict) -> str:
    return next(f["message"] for f in out["findings"] if f["check"] == "service:whoami").removeprefix("whoami: ")


def test_agent_runs_as_its_account_and_shares_the_state(shared, account):
    _config(shared, account.pw_name)
    code, out = shared.json("health", "check")
    assert code == 0, out
    assert _whoami(out) == f"{account.pw_name} {account.pw_uid} {account.pw_gid} [{account.pw_gid}]"
    directory, db = shared.db.parent, shared.db
    for path, mode in ((directory, 0o2770), (db, 0o660), (Path(f"{db}.locks"), 0o2770),
                       (Path(f"{db}.locks") / "system_health.lock", 0o660)):
        st = os.stat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (mode, account.pw_gid), path
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE agent = 'system_health'").fetchone()[0] == 1

    # root runs the same agent without run_as, then the account again: both can still write the shared state
    _config(shared, None)
    code, out = shared.json("health", "check")
    assert code == 0 and _whoami(out).startswith("root 0 0")
    _config(shared, account.pw_name, interval=86400)
    shift_runs(shared, "system_health", 86400)
    code, out = shared.json("run", "--due")  # the forked child drops; the parent stays root
    assert code == 0, out
    ran = out["agents"][0]
    assert ran["outcome"] == "ran" and _whoami(ran["run"]).startswith(account.pw_name)
    assert os.geteuid() == 0


def test_a_non_root_user_cannot_run_an_agent_as_another_account(shared, account):
    _config(shared, account.pw_name)
    assert shared("health", "check").returncode == 0  # root shares the state with the account
    _config(shared, "nobody")
    done = subprocess.run([ZENCTL, "health", "check"], capture_output=True, text=True, cwd=shared.tmp,
                          env={**shared.env, "HOME": "/"}, user=account.pw_uid, group=account.pw_gid,
                          extra_groups=[])
    assert done.returncode == 3
    assert done.stderr.strip() == (f"zenctl: agents.system_health.run_as is 'nobody' but zenctl runs as "
                                   f"'{account.pw_name}': run it as root (it then switches to nobody) or as nobody "
                                   "itself")


def test_an_unknown_account_and_a_shared_tmp_are_clear_errors(zenctl, reachable_python):
    zenctl.config(CALM.replace("  system_health:\n", "  system_health:\n    run_as: no-such-user\n"))
    done = zenctl("health", "check")
    assert done.returncode == 3 and "agents.system_health.run_as: no such user 'no-such-user'" in done.stderr
    zenctl.config(CALM.replace("  system_health:\n", "  system_health:\n    run_as: nobody\n"))
    done = zenctl("health", "check", "--db", "/tmp/zenctl-test-shared.db")
    assert done.returncode == 3 and "/tmp: is world-writable" in done.stderr
    assert not os.path.exists("/tmp/zenctl-test-shared.db")
    (zenctl.tmp / "notes.txt").write_text("not zenctl's")
    done = zenctl("health", "check", "--db", str(zenctl.tmp / "zenctl.db"))
    assert done.returncode == 3 and "holds other files too (" in done.stderr
    assert stat.S_IMODE(os.stat(zenctl.tmp).st_mode) == 0o700  # left as it was
