"""Privilege boundaries with `run_as`: a member of the state's group (or the service account itself) writes the
SQLite file and the snapshot store, and root must not act on what it wrote with root's privileges (issue 12,
findings 1 to 5 and 21)."""

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import CALM, ZENCTL, Zenctl
from tests.core.test_accounts import reachable_python  # noqa: F401  (a fixture)
from tests.security.conftest import ROOT_ONLY, as_user, as_user_python, drop_user, make_user
from zenctl.core import seals
from zenctl.core.snapshots import fingerprint
from zenctl.core.timeutil import iso

pytestmark = [ROOT_ONLY]


@pytest.fixture
def svc():
    """The service account an agent runs as (`run_as`); its group is the state's group."""
    entry = make_user()
    try:
        yield entry
    finally:
        drop_user(entry)


@pytest.fixture
def member(svc):
    """Another user in the service account's group: can write the shared state, has no key."""
    entry = make_user(groups=[svc.pw_name])
    try:
        yield entry
    finally:
        drop_user(entry)


@pytest.fixture
def shared(svc, reachable_python):  # noqa: F811
    """A state in a directory of its own, shared with svc's group by a first run as svc."""
    base = Path(tempfile.mkdtemp(prefix="zenctl-sec-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    runner = Zenctl(base)
    try:
        runner.config(_config(svc.pw_name))
        done = runner("health", "check")
        assert not done.stderr and os.stat(runner.db).st_gid == svc.pw_gid, done.stdout + done.stderr
        yield runner
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _config(run_as: str | None, extra: str = "") -> str:
    return CALM.replace("  system_health:\n", "  system_health:\n" + (f"    run_as: {run_as}\n" if run_as else "")) \
        + extra


def _attack(who, svc, runner: Zenctl, code: str) -> None:
    """Run `code` as `who` with the state's group; it gets `db` (the state path) and `seal(table, values)`, which
    seals with who's own key when who has one (the service account), else returns None."""
    prelude = f"""
import hashlib, hmac, json, os, sqlite3
db = {str(runner.db)!r}
def seal(table, values):
    try:
        key = open(f"{{db}}.keys/{{os.geteuid()}}.key", "rb").read()
    except OSError:
        return None
    payload = json.dumps([table, *values], default=str, separators=(",", ":")).encode()
    return f"{{os.geteuid()}}:" + hmac.new(key, payload, hashlib.sha256).hexdigest()
conn = sqlite3.connect(db, timeout=30)
def set_seal(table, values, key):  # a state without seals (older zenctl) has no column to write
    try:
        conn.execute(f"UPDATE {{table}} SET seal = ? WHERE id = ?", (seal(table, values), key))
    except sqlite3.OperationalError:
        pass
"""
    done = as_user_python(who, prelude + code + "\nconn.commit()\n", groups=[svc.pw_gid])
    assert done.returncode == 0, done.stderr


def _forge_rollback(who, svc, runner: Zenctl, planted: Path, victim: Path) -> None:
    """An `applied` fs.chmod action whose snapshots say: `planted` was a setuid root program (blob written into
    the group-writable store), `victim` was mode 0666 owned by the attacker."""
    content = b"#!/bin/sh\nid > /tmp/zenctl-pwned\n"
    digest = hashlib.sha256(content).hexdigest()
    now = iso()
    code = f"""
content, digest, now = {content!r}, {digest!r}, {now!r}
store = f"{{db}}.snapshots/{{digest[:2]}}"
os.makedirs(store, exist_ok=True)
open(f"{{store}}/{{digest[2:]}}", "wb").write(content)
params = "{{}}"
conn.execute("INSERT INTO actions (id, run_id, agent, kind, target, params, mode, status, reason, created, finished) "
             "VALUES ('deadbeef', 'forged', 'system_health', 'fs.chmod', 'x', ?, 'auto', 'applied', 'forged', ?, ?)",
             (params, now, now))
set_seal("actions", ("deadbeef", "system_health", "fs.chmod", "x", params, "applied", None, None, now, now),
         "deadbeef")
rows = [({str(planted)!r}, 1, "file", 0o4755, 0, 0, digest, None, json.dumps({{"exists": False}})),
        ({str(victim)!r}, 1, "other", 0o666, {who.pw_uid}, {who.pw_gid}, None, None, {json.dumps(json.dumps(fingerprint(str(victim))))})]
for row in rows:
    cur = conn.execute("INSERT INTO snapshots (action_id, path, existed, ftype, mode, uid, gid, blob, link, after) "
                       "VALUES ('deadbeef', ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    set_seal("snapshots", (cur.lastrowid, "deadbeef", *row), cur.lastrowid)
"""
    _attack(who, svc, runner, code)


@pytest.mark.parametrize("forger", ["member", "svc"])
def test_1_a_forged_snapshot_is_never_restored_with_roots_privileges(shared, svc, member, forger):
    who = member if forger == "member" else svc
    planted, victim = shared.tmp / "planted", shared.tmp / "victim"
    victim.write_text("root's\n")
    victim.chmod(0o644)
    shared.config(_config(None))  # root's own runs from now on; the state stays shared
    _forge_rollback(who, svc, shared, planted, victim)

    done = shared("rollback", "--since", "1h", "--json")
    assert not planted.exists(), "root created a file where the forged snapshot said"
    st = victim.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o644, 0), "root chmod/chowned a file for the forger"
    out = json.loads(done.stdout)
    assert done.returncode != 0
    if forger == "member":  # no key: refused outright
        assert any("not sealed by one account zenctl trusts" in f["message"] for f in out["findings"]), out
    else:  # sealed by the service account: root acted as that account, which may not write there
        assert [a["status"] for a in out["actions"]] == ["failed"], out
        assert "as uid" in out["actions"][0]["message"]


def test_2_emergency_stop_signals_only_zenctl_runs_of_the_recorded_account(shared, svc, member):
    daemon = subprocess.Popen(["sleep", "300"])  # an unrelated root daemon
    try:
        started = psutil.Process(daemon.pid).create_time()
        for who, run_id in ((member, "forged1"), (svc, "forged2")):
            _attack(who, svc, shared, f"""
conn.execute("INSERT INTO runs (id, agent, pid, proc_start, started, status, dry_run) "
             "VALUES (?, 'system_health', ?, ?, ?, 'running', 0)", ({run_id!r}, {daemon.pid}, {started!r}, {iso()!r}))
set_seal("runs", ({run_id!r}, "system_health", {daemon.pid}, {started!r}), {run_id!r})
""")
        done = shared("stop", "--emergency", "--reason", "test", "--json")
        assert done.returncode == 0, done.stderr
        assert daemon.poll() is None, "zenctl stop --emergency killed a root daemon named in a forged runs row"
        assert json.loads(done.stdout)["terminated"] == []
        _, out = shared.json("audit", "--event", "security.refused_signal")
        assert len(out["entries"]) == 2
    finally:
        daemon.kill()
        daemon.wait()
        shared("resume")


def test_3_a_fifo_planted_in_the_snapshot_store_does_not_hang_root(shared, svc, member):
    outside = shared.tmp / "outside"
    outside.write_text("root's\n")
    _attack(member, svc, shared, f"""
store = db + ".snapshots"
os.mkfifo(f"{{store}}/trap")
os.symlink({str(outside)!r}, f"{{store}}/link")
conn.close()
# a copy of the state file that is not group-shared sends root's next run down the full sharing walk
import shutil
shutil.copy(db, db + ".copy")
os.chmod(db + ".copy", 0o640)
os.rename(db + ".copy", db)
conn = sqlite3.connect(db)
""")
    done = shared("health", "check", timeout=60)  # on f99e80d: blocked forever in open() of the FIFO
    assert done.returncode == 0, done.stderr
    assert outside.stat().st_gid == 0, "the group was given to a file a symlink pointed at"


def test_4_an_approval_written_by_sql_is_not_acted_on(shared, svc, member):
    target = shared.tmp / "data"
    target.mkdir(mode=0o700)
    config = shared.config(_config(None, f"    paths:\n      - path: {target}\n        mode: \"0750\"\n"
                                         "policy:\n  approvers: [alice]\n  modes:\n    fs.chmod: approve\n"))
    code, first = shared.json("health", "check", "-c", str(config))
    request = first["actions"][0]["approval_id"]
    assert first["actions"][0]["status"] == "awaiting_approval"
    _attack(member, svc, shared, f"""
conn.execute("UPDATE approvals SET status = 'approved', decided_by = 'alice', decided_at = ?, expires = ? "
             "WHERE id = ?", ({iso()!r}, {iso(time.time() + 86400)!r}, {request!r}))
""")
    code, second = shared.json("health", "check", "-c", str(config))
    assert stat.S_IMODE(target.stat().st_mode) == 0o700, "a forged approval was carried out"
    assert second["actions"][0]["status"] == "awaiting_approval"
    _, forged = shared.json("audit", "--event", "security.forged_approval")
    assert len(forged["entries"]) == 1 and request in forged["entries"][0]["message"]

    # the real thing still works: alice decides through sudo as root
    fresh = second["actions"][0]["approval_id"]
    assert fresh != request
    approved = shared("approve", fresh, "-c", str(config), env={"SUDO_USER": "alice"})
    assert approved.returncode == 0, approved.stderr
    code, third = shared.json("health", "check", "-c", str(config))
    assert third["actions"][0]["status"] == "applied" and stat.S_IMODE(target.stat().st_mode) == 0o750


def test_5_an_account_that_cannot_reach_python_is_told_before_the_drop(svc):
    interpreter = os.path.realpath(Path(ZENCTL).with_name("python"))
    blocked = next((p for p in Path(interpreter).parents if p != Path("/")
                    and not os.stat(p).st_mode & stat.S_IXOTH), None)
    if blocked is None:
        pytest.skip("this interpreter is reachable by every account; nothing to refuse")
    base = Path(tempfile.mkdtemp(prefix="zenctl-sec-", dir="/var/tmp"))
    try:
        runner = Zenctl(base)
        runner.config(_config(svc.pw_name))
        done = runner("health", "check")
        assert done.returncode == 3
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "internal error" not in lines[0], done.stderr
        assert f"account {svc.pw_name!r} cannot run zenctl: {blocked} is 0" in lines[0]
        assert not (base / "state").exists() or not os.listdir(base / "state")  # refused before sharing anything
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_21_concurrent_rollbacks_undo_each_action_once(zenctl, tmp_path):
    files = [tmp_path / f"f{n}" for n in range(40)]
    for f in files:  # content to copy back makes each undo take long enough for the runs to overlap
        f.write_bytes(os.urandom(1 << 18))
        f.chmod(0o644)
    entries = "".join(f"      - path: {f}\n        ensure: file\n        mode: \"0600\"\n" for f in files)
    zenctl.config(CALM + "    paths:\n" + entries + "policy:\n  max_auto_repairs_per_hour: 100\n")
    code, run = zenctl.json("health", "check")
    originals = {a["id"] for a in run["actions"] if a["status"] == "applied"}
    assert len(originals) == len(files)

    procs = [subprocess.Popen([ZENCTL, "rollback", "--since", "1h", "--force", "--json"], env=zenctl.env,
                              cwd=zenctl.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(15)]
    undone: dict[str, int] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        for action in json.loads(out)["actions"]:
            if action["status"] == "applied":
                undone[action["params"]["undo"]] = undone.get(action["params"]["undo"], 0) + 1
    assert undone == {action_id: 1 for action_id in originals}
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in files)


def test_17_an_absurd_busy_timeout_is_a_one_line_error(zenctl):
    for value in ("inf", "1e309", "nan", "-1"):
        done = zenctl("health", "check", env={"ZENCTL_BUSY_TIMEOUT": value})
        assert done.returncode == 3, (value, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"zenctl: environment variable ZENCTL_BUSY_TIMEOUT={value!r}: must be a number of seconds from 0 to "
            "86400"]






def test_a_fifo_as_a_pid_file_does_not_hang_the_check(zenctl, intruder):
    run_dir = Path(tempfile.mkdtemp(prefix="zenctl-run-", dir="/var/tmp"))
    try:
        os.chmod(run_dir, 0o755)
        os.chown(run_dir, intruder.pw_uid, intruder.pw_gid)  # /run/app, owned by the service
        assert as_user_python(intruder, f"import os; os.mkfifo({str(run_dir / 'app.pid')!r})").returncode == 0
        zenctl.config(CALM + f"    services:\n      - name: app\n        type: process\n"
                             f"        pidfile: {run_dir / 'app.pid'}\n")
        code, out = zenctl.json("health", "check", timeout=60)  # f99e80d waited out the deadline in open()
        assert code == 2 and next(f for f in out["findings"] if f["check"] == "service:app")["status"] == "critical"
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test_a_symlink_in_place_of_the_locks_directory_is_not_walked(shared, svc, member):
    """Review of this issue's fix: `share()` walked `<state>.locks` with os.walk, which follows a symlink at its
    top, and gave everything below (with .locks -> /etc: /etc/shadow) the state's group, mode 0660."""
    vault = shared.tmp / "vault"
    vault.mkdir(mode=0o700)
    (vault / "secret").write_text("root's\n")
    (vault / "secret").chmod(0o600)
    _attack(member, svc, shared, f"""
import shutil
locks = db + ".locks"
shutil.rmtree(locks)
os.symlink({str(vault)!r}, locks)
conn.close()
shutil.copy(db, db + ".copy")  # not group-shared: root's next run takes the full sharing walk
os.chmod(db + ".copy", 0o640)
os.rename(db + ".copy", db)
conn = sqlite3.connect(db)
""")
    done = shared("health", "check")
    for path in (vault, vault / "secret"):
        st = path.stat()
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0o700 if path == vault else 0o600), path
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and ".locks" in done.stderr, done.stderr


def test_a_rollback_taken_as_an_account_is_undone_as_that_account(shared, svc):
    """Review of this issue's fix: root undid the service account's action as the account, but sealed the rollback
    step with its own key, so rolling the rollback back ran as root, through a directory the account had swapped
    for a symlink: root wrote the account's file into a root directory."""
    data = shared.tmp / "svcdata"
    (data / "d").mkdir(parents=True)
    os.chown(data, svc.pw_uid, svc.pw_gid)
    os.chown(data / "d", svc.pw_uid, svc.pw_gid)
    payload = data / "d" / "payload"
    payload.write_text("/tmp/evil.so\n")
    os.chown(payload, svc.pw_uid, svc.pw_gid)
    vault = shared.tmp / "vault"
    vault.mkdir(mode=0o755)
    shared.config(_config(None))
    now = iso()
    _attack(svc, svc, shared, f"""
params = "{{}}"
conn.execute("INSERT INTO actions (id, run_id, agent, kind, target, params, mode, status, reason, created, finished) "
             "VALUES ('beef0002', 'r', 'system_health', 'fs.touch', 'x', ?, 'auto', 'applied', 'x', ?, ?)",
             (params, {now!r}, {now!r}))
set_seal("actions", ("beef0002", "system_health", "fs.touch", "x", params, "applied", None, None, {now!r}, {now!r}),
         "beef0002")
row = ({str(payload)!r}, 0, None, None, None, None, None, None, json.dumps({{"exists": True}}))
cur = conn.execute("INSERT INTO snapshots (action_id, path, existed, ftype, mode, uid, gid, blob, link, after) "
                   "VALUES ('beef0002', ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
set_seal("snapshots", (cur.lastrowid, "beef0002", *row), cur.lastrowid)
""")
    code, undone = shared.json("rollback", "beef0002", "--force")
    step = undone["actions"][0]
    assert step["status"] == "applied" and not payload.exists(), undone
    with sqlite3.connect(shared.db) as conn:
        assert set(seals.row_signers(conn, shared.db, "actions", "id", step["id"])) == {svc.pw_uid}
        assert set(seals.row_signers(conn, shared.db, "snapshots", "action_id", step["id"])) == {svc.pw_uid}
    as_user(svc, ["/bin/sh", "-c", f"rmdir {data / 'd'} && ln -s {vault} {data / 'd'}"])
    shared("rollback", step["id"], "--force")
    assert not (vault / "payload").exists(), "root wrote the account's file through its symlink"


def test_a_stopped_child_acting_as_an_account_holds_no_lock_and_is_bounded(shared, svc):
    """Review of this issue's fix: the account stopped (SIGSTOP) the child root had dropped to it, inside the state's
    write transaction: every other run failed on the lock, and the rollback waited forever."""
    from zenctl.core.accounts import call_as

    started = time.monotonic()
    with pytest.raises(OSError, match="did not finish within 1 s; killed"):
        call_as(svc.pw_uid, svc.pw_gid, time.sleep, 30, seconds=1)
    assert time.monotonic() - started < 10


def test_an_executed_approval_set_back_to_approved_is_not_replayed(shared, svc, member):
    """Review of this issue's fix: a seal proves who wrote a row, not that it is the newest; an executed approval
    set back to `approved` by SQL verified again and ran a second time."""
    target = shared.tmp / "data"
    target.mkdir(mode=0o700)
    config = shared.config(_config(None, f"    paths:\n      - path: {target}\n        mode: \"0750\"\n"
                                         "policy:\n  modes:\n    fs.chmod: approve\n"))
    _, first = shared.json("health", "check", "-c", str(config))
    request = first["actions"][0]["approval_id"]
    assert shared("approve", request, "--run", "-c", str(config)).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    target.chmod(0o700)
    _, again = shared.json("health", "check", "-c", str(config))
    assert again["actions"][0]["status"] == "awaiting_approval"
    _attack(member, svc, shared, f"""
conn.execute("DELETE FROM approvals WHERE id != ?", ({request!r},))
conn.execute("UPDATE approvals SET status = 'approved', action_id = NULL WHERE id = ?", ({request!r},))
""")
    _, third = shared.json("health", "check", "-c", str(config))
    assert stat.S_IMODE(target.stat().st_mode) == 0o700, "an executed approval ran again"
    assert third["actions"][0]["status"] == "awaiting_approval"
    _, replayed = shared.json("audit", "--event", "security.replayed_approval")
    assert len(replayed["entries"]) == 1
