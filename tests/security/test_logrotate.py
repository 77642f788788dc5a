"""logs.rotate against a local user who owns a log directory (findings 6, 7, 11, 13 and 20 of issue 12), and what
held up before (disk full while compressing), run for real: a second user, real processes, real kill -9.

Each test works in a 0755 directory in /tmp (the pytest tmp_path is under a 0700 directory the intruder cannot
reach) holding `logs`, owned by the intruder as /var/log/app is owned by app, and `root`, a directory anyone may
enter holding files only root may read. Finding 6 is a race between a check and an open: the test lets the
intruder win it every time by running the intruder's swap at the moment root is about to open the file (a hook on
the open functions), instead of looping until the timing happens to fit.
"""

import contextlib
import grp
import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.housekeeping.test_logs import numbers, write_lines
from tests.security.conftest import ROOT_ONLY, as_user, as_user_python
from zenctl.housekeeping.log_actions import RotateLogs
from zenctl.housekeeping import plans as housekeeping, logrotate
from zenctl.housekeeping.config import LogSet

pytestmark = [ROOT_ONLY]
SECRET = b"TOP-SECRET: only root may read this line\n" * 2000  # 82 KB: longer than any log the tests cut


@pytest.fixture
def area(intruder):
    """/tmp/zx-logs-*/ with `logs` (the intruder's log directory) and `root` (root's files, 0600)."""
    base = Path(tempfile.mkdtemp(prefix="zx-logs-", dir="/tmp"))
    base.chmod(0o755)
    try:
        (base / "logs").mkdir()
        os.chown(base / "logs", intruder.pw_uid, intruder.pw_gid)
        (base / "root").mkdir()
        for name, data in (("secret", SECRET), ("secret.gz", gzip.compress(SECRET))):
            (base / "root" / name).write_bytes(data)
            (base / "root" / name).chmod(0o600)
        yield base
    finally:
        shutil.rmtree(base)


def owned(intruder, path: Path, first: int = 0, count: int = 100) -> Path:
    """A log file of the intruder with `count` numbered lines."""
    write_lines(path, first, count)
    os.chown(path, intruder.pw_uid, intruder.pw_gid)
    return path


def leaked(intruder, directory: Path) -> list[str]:
    """Files of `directory` the intruder can read (gunzipped where compressed) that hold root's secret."""
    code = ("import gzip, os, sys\n"
            "for n in os.listdir(sys.argv[1]):\n"
            "    try:\n"
            "        data = open(os.path.join(sys.argv[1], n), 'rb').read()\n"
            "        data = gzip.decompress(data) if n.endswith('.gz') else data\n"
            "    except Exception:\n"
            "        continue\n"
            "    if b'TOP-SECRET' in data:\n"
            "        print(n)\n")
    done = as_user(intruder, ["/usr/bin/python3", "-c", code, str(directory)])
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def config(zenctl, **entry) -> Path:
    entry.setdefault("name", "app")
    return zenctl.config("agents:\n  system_health:\n    logs: " + json.dumps([entry]) + "\n")


def spec(**entry) -> LogSet:
    return LogSet(**{"name": "app", "size": 1, "keep": 5, **entry})


def rotate_in_process(entry) -> dict:
    """Plan and apply the set as `zenctl maintain logs` would, in this process; the steps applied."""
    _, (proposal,), _ = housekeeping.logs_plan(entry, {}, time.time())
    return RotateLogs().apply(proposal).before


@contextlib.contextmanager
def intruder_swaps(monkeypatch, intruder, path: Path, to: Path, how: str = "symlink"):
    """The intruder replaces `path` with a symlink (or hard link) to `to` just before root opens `path` for reading:
    after every check root makes by name, before the open. Yields the list of swaps done (one at most)."""
    done: list[str] = []

    def swap() -> None:
        code = f"import os; os.{how}({str(to)!r}, {str(path) + '.new'!r}); os.rename({str(path) + '.new'!r}, " \
               f"{str(path)!r})"
        result = as_user_python(intruder, code)
        assert result.returncode == 0, result.stderr
        done.append(how)

    def hooked(real, reading):
        def opener(file, *args, **kw):
            if not done and isinstance(file, (str, bytes, os.PathLike)) \
                    and os.path.basename(os.fsdecode(file)) == path.name and reading(args, kw):
                swap()
            return real(file, *args, **kw)
        return opener

    by_flags = lambda args, kw: not (args[0] if args else kw["flags"]) & (os.O_WRONLY | os.O_RDWR)  # noqa: E731
    by_mode = lambda args, kw: not set(args[0] if args else kw.get("mode", "r")) & set("wa+")  # noqa: E731
    monkeypatch.setattr(os, "open", hooked(os.open, by_flags))
    monkeypatch.setattr(gzip, "open", hooked(gzip.open, by_mode))
    monkeypatch.setattr(logrotate, "open", hooked(open, by_mode), raising=False)
    yield done
    monkeypatch.undo()


def refusal(call) -> str:
    """Why `call` was refused ('' when it was not)."""
    try:
        call()
    except logrotate.StepFailed as exc:
        return str(exc)
    return ""


@contextlib.contextmanager
def hard_links_unprotected():
    """fs.protected_hardlinks=0 (as on many older hosts): any user may hard-link a file they cannot read."""
    knob = Path("/proc/sys/fs/protected_hardlinks")
    was = knob.read_text()
    knob.write_text("0")
    try:
        yield
    finally:
        knob.write_text(was)


@pytest.mark.parametrize("how", ["symlink", "link"])
def test_6_a_generation_swapped_before_gzip_opens_it_is_refused(area, intruder, monkeypatch, how):
    logs = area / "logs"
    owned(intruder, logs / "app.log")
    owned(intruder, logs / "app.log.1", -100)  # shifted to .2, then compressed
    entry = spec(paths=[str(logs / "*.log")])
    with hard_links_unprotected() if how == "link" else contextlib.nullcontext():
        with intruder_swaps(monkeypatch, intruder, logs / "app.log.2", area / "root" / "secret", how) as swapped:
            before = rotate_in_process(entry)
    assert swapped == [how]
    assert leaked(intruder, logs) == [], "root's secret came out readable by the intruder"
    assert (area / "root" / "secret").read_bytes() == SECRET
    gzipped = [s for s in before["steps"] if s["op"] == "gzip"]
    assert gzipped == [], "a generation that was swapped for a link was compressed"
    assert numbers(logs / "app.log.1") == list(range(100))


@pytest.mark.parametrize("undo", ["decompress", "put back in front"])
def test_6_a_file_swapped_before_rollback_reads_it_is_refused(area, intruder, monkeypatch, undo):
    logs = area / "logs"
    if undo == "decompress":  # app.log.2.gz, decompressed by the rollback
        owned(intruder, logs / "app.log")
        owned(intruder, logs / "app.log.1", -100)
        entry, name, secret = spec(paths=[str(logs / "*.log")]), "app.log.2.gz", "secret.gz"
    else:  # app.log.1 of a copytruncate, put back in front of the live file by the rollback
        owned(intruder, logs / "app.log", 0, 1000)  # 54 KB: whole blocks to collapse
        entry = spec(paths=[str(logs / "*.log")], copytruncate=True, compress=False)
        name, secret = "app.log.1", "secret"
    steps = rotate_in_process(entry)["steps"]
    assert (logs / name).exists()
    assert all(s.get("method", "collapse") == "collapse" for s in steps), "the test needs ext4 or xfs under /tmp"
    with intruder_swaps(monkeypatch, intruder, logs / name, area / "root" / secret) as swapped:
        refused = refusal(lambda: logrotate.revert(steps))
    assert swapped == ["symlink"]
    assert leaked(intruder, logs) == [], "root's secret came out readable by the intruder"
    assert f"{name} was replaced since it was observed" in refused


def test_7_globs_do_not_follow_directories_the_intruder_can_redirect(zenctl, area, intruder):
    apps = area / "logs"  # the intruder's: paths [logs/*/*.log]
    (apps / "web").mkdir()
    os.chown(apps / "web", intruder.pw_uid, intruder.pw_gid)
    owned(intruder, apps / "web" / "web.log")
    vault = area / "vault"  # root's logs, in a directory only root may enter
    vault.mkdir(mode=0o700)
    for suffix in ("", ".1", ".2", ".3", ".4"):
        (vault / f"root.log{suffix}").write_bytes(SECRET)
    (apps / "svc").mkdir()  # root's directory inside the intruder's: the intruder can swap it for another
    (apps / "svc" / "svc.log").write_bytes(SECRET)
    done = as_user_python(intruder, f"import os; os.symlink({str(vault)!r}, {str(apps / 'evil')!r})")
    assert done.returncode == 0, done.stderr

    code, out = zenctl.json("maintain", "logs", "-c", str(config(zenctl, paths=[str(apps / "*" / "*.log")],
                                                                 size=1, keep=2)))
    assert sorted(p.name for p in vault.iterdir()) == ["root.log", "root.log.1", "root.log.2", "root.log.3",
                                                       "root.log.4"]
    assert all(p.read_bytes() == SECRET for p in vault.iterdir()), "root's files were rotated"
    assert sorted(p.name for p in (apps / "svc").iterdir()) == ["svc.log"]
    (finding,) = out["findings"]
    assert code == 1 and finding["status"] == "warning", finding
    errors = " ".join(finding["evidence"]["errors"])
    assert f"{apps / 'evil'} is a symlink in a directory user {intruder.pw_name} can change; refused" in errors
    assert f"{apps} is writable by user {intruder.pw_name}; refused" in errors
    (action,) = out["actions"]  # the intruder's own log in the intruder's own directory is still rotated
    assert action["status"] == "applied" and (apps / "web" / "web.log.1").exists()


def test_11_a_log_name_that_is_not_utf8_is_rotated_and_printed_escaped(zenctl, area, intruder):
    logs = area / "logs"
    name = b"bad\xff\n$(id).log"
    done = as_user_python(intruder, f"open({os.fsencode(logs) + b'/' + name!r}, 'wb').write(b'x' * 100)")
    assert done.returncode == 0, done.stderr
    cfg = config(zenctl, paths=[str(logs / "*.log")], size=1)
    code, out = zenctl.json("maintain", "logs", "-c", str(cfg))
    assert code == 0, out
    (action,) = out["actions"]
    assert action["status"] == "applied", action
    assert "bad\\xff\\x0a$(id).log" in action["preview"]
    assert sorted(os.listdir(os.fsencode(logs))) == [name, name + b".1"]
    shown = zenctl("audit", "--limit", "20")  # printed for a terminal, escaped
    assert shown.returncode == 0 and "bad\\xff\\x0a$(id).log" in shown.stdout, shown.stdout + shown.stderr


def test_13_a_log_that_is_a_symlink_is_refused_and_says_why(zenctl, area, intruder):
    logs = area / "logs"
    done = as_user_python(intruder, f"import os; os.symlink({str(area / 'root' / 'secret')!r}, "
                                    f"{str(logs / 'app.log')!r})")
    assert done.returncode == 0, done.stderr
    code, out = zenctl.json("maintain", "logs", "-c", str(config(zenctl, paths=[str(logs / "*.log")], size=1)))
    assert out["actions"] == [] and (area / "root" / "secret").read_bytes() == SECRET
    (finding,) = out["findings"]
    assert f"{logs / 'app.log'} is a symlink; refused" in finding["message"], finding["message"]
    assert code == 1 and finding["status"] == "warning"


KILL_AT = """
import os, signal, sys
what, name = sys.argv[1], sys.argv[2]
real = getattr(os, what)
def dying(target, *args, **kw):
    path = os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else os.fsdecode(target)
    if os.path.basename(path) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(target, *args, **kw)
setattr(os, what, dying)
sys.argv = ["zenctl", *sys.argv[3:]]
from zenctl.cli import main
main()
"""


def test_20_leftovers_of_rotations_killed_mid_way_never_block_the_next(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = config(zenctl, paths=[str(logs / "*.log")], size=1, keep=9)
    write_lines(logs / "app.log.1", 0, 100)
    write_lines(logs / "app.log", 100, 100)

    def killed(what: str, name: str) -> None:
        run = subprocess.run([sys.executable, "-c", KILL_AT, what, name, "maintain", "logs", "-c", str(cfg)],
                             env=zenctl.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == -signal.SIGKILL, run.stderr

    killed("fsync", ".app.log.2.gz.zenctl-tmp")  # while compressing: a partial .gz left beside app.log.2
    write_lines(logs / "app.log", 200, 100)
    killed("unlink", "app.log.3")  # compressed, the plain one not yet removed: app.log.3 and app.log.3.gz
    assert {"app.log.3", "app.log.3.gz"} <= set(os.listdir(logs))
    for first in (300, 400):
        write_lines(logs / "app.log", first, 100)
        code, out = zenctl.json("maintain", "logs", "-c", str(cfg))
        (action,) = out["actions"]
        assert action["status"] == "applied", action
    assert sorted(os.listdir(logs)) == ["app.log", "app.log.1", "app.log.2.gz", "app.log.3.gz", "app.log.4.gz",
                                        "app.log.5.gz"]
    every = sorted(logs.glob("app.log.*"), key=lambda p: -int(p.name.split(".")[2]))
    assert numbers(*every) == list(range(500)), "lines lost or repeated across the generations"


def test_kept_a_disk_full_while_compressing_loses_nothing_and_leaves_no_partial(zenctl, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(small)], check=True)
    try:
        noise = os.urandom(600 * 1024)  # incompressible: its .gz needs as much room again
        (small / "app.log.1").write_bytes(noise)
        write_lines(small / "app.log", 0, 100)
        code, out = zenctl.json("maintain", "logs", "-c", str(config(zenctl, paths=[str(small / "*.log")],
                                                                     size=1)))
        assert len(out["actions"]) == 1, out["findings"]
        (action,) = out["actions"]
        assert "app.log.2 left uncompressed" in action["message"] and "No space left" in action["message"]
        assert sorted(os.listdir(small)) == ["app.log", "app.log.1", "app.log.2"]
        assert (small / "app.log.2").read_bytes() == noise and numbers(small / "app.log.1") == list(range(100))
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


# logrotate's su: a log directory a group can write (Ubuntu's /var/log is root:syslog 0775) ------------------------

@pytest.fixture
def shared(intruder):
    """/tmp/zx-su-*/ with `logs`, root:GROUP 0775 (GROUP made by the test, `member` in it), and `root` (root's
    files, 0600). Yields (base, group name, member)."""
    from tests.security.conftest import drop_user, make_user

    group = f"zg{os.urandom(4).hex()}"
    subprocess.run(["groupadd", "--system", group], check=True)
    member, base = None, Path(tempfile.mkdtemp(prefix="zx-su-", dir="/tmp"))
    try:
        member = make_user(groups=[group])
        base.chmod(0o755)
        (base / "logs").mkdir()
        os.chown(base / "logs", 0, grp.getgrnam(group).gr_gid)
        (base / "logs").chmod(0o775)
        (base / "root").mkdir()
        (base / "root" / "secret").write_bytes(SECRET)
        (base / "root" / "secret").chmod(0o600)
        yield base, group, member
    finally:
        shutil.rmtree(base)
        if member is not None:
            drop_user(member)
        subprocess.run(["groupdel", group], check=False)


def log_of(path: Path, uid: int, gid: int, first: int = 0, count: int = 100) -> Path:
    write_lines(path, first, count)
    os.chown(path, uid, gid)
    path.chmod(0o640)
    return path


def owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.mark.parametrize("as_member", [False, True], ids=["su root GROUP", "su MEMBER GROUP"])
def test_su_a_log_directory_a_group_can_write_is_rotated_only_with_su(zenctl, shared, as_member):
    base, group, member = shared
    logs, gid = base / "logs", grp.getgrnam(group).gr_gid
    uid = member.pw_uid if as_member else 0
    log_of(logs / "app.log", uid, gid)
    log_of(logs / "app.log.1", uid, gid, -100)
    entry = {"paths": [str(logs / "*.log")], "size": 1, "keep": 5}

    code, out = zenctl.json("maintain", "logs", "-c", str(config(zenctl, **entry)))
    (finding,) = out["findings"]
    assert code == 1 and finding["status"] == "warning" and out["actions"] == [], out
    assert f"{logs} is writable by group {group}; refused" in finding["message"]
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1"]

    su = f"{member.pw_name if as_member else 'root'} {group}"
    code, out = zenctl.json("maintain", "logs", "-c", str(config(zenctl, su=su, **entry)))
    (action,) = out["actions"]
    assert code == 0 and action["status"] == "applied", out
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1", "app.log.2.gz"]
    assert {owner(p) for p in logs.iterdir()} == {(uid, gid, 0o640)}, "a generation lost the live log's owner"
    assert numbers(logs / "app.log.2.gz", logs / "app.log.1") == list(range(-100, 100))

    code, result = zenctl.json("rollback", action["id"])
    assert code == 0 and result["actions"][0]["status"] == "applied", result
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1"]
    assert {owner(p) for p in logs.iterdir()} == {(uid, gid, 0o640)}
    assert numbers(logs / "app.log.1", logs / "app.log") == list(range(-100, 100))


@contextlib.contextmanager
def member_links_before_open(monkeypatch, member, path: Path, to: Path):
    """The member replaces `path` with a hard link to `to` just before root opens `path` (any mode)."""
    done: list[str] = []
    real = os.open

    def opener(file, *args, **kw):
        if not done and isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(file) == path.name:
            result = as_user_python(member, f"import os; os.link({str(to)!r}, {str(path) + '.new'!r}); "
                                            f"os.rename({str(path) + '.new'!r}, {str(path)!r})",
                                   groups=os.getgrouplist(member.pw_name, member.pw_gid))
            assert result.returncode == 0, result.stderr
            done.append("link")
        return real(file, *args, **kw)

    with hard_links_unprotected():
        monkeypatch.setattr(os, "open", opener)
        try:
            yield done
        finally:
            monkeypatch.setattr(os, "open", real)


@pytest.mark.parametrize("operation", ["compress", "copytruncate"])
def test_su_a_missed_check_does_no_more_than_the_su_account_could(shared, monkeypatch, operation):
    """With every check of the files the rotation opens switched off (a check missed), the member's swap of a log
    for a hard link to root's file makes root neither copy it (compress) nor cut it (copytruncate): acting as the
    member, the open is refused by the kernel, as it would be for the member."""
    base, group, member = shared
    logs, gid, secret = base / "logs", grp.getgrnam(group).gr_gid, base / "root" / "secret"
    log_of(logs / "app.log", member.pw_uid, gid, 0, 1000)  # 54 KB: whole blocks to cut
    if operation == "compress":
        log_of(logs / "app.log.1", member.pw_uid, gid, -100)  # shifted to .2, then compressed
        entry, swapped = spec(paths=[str(logs / "*.log")]), logs / "app.log.2"
    else:
        entry, swapped = spec(paths=[str(logs / "*.log")], copytruncate=True, compress=False), logs / "app.log"
    entry = entry.model_copy(update={"su": f"{member.pw_name} {group}"})
    _, (proposal,), _ = housekeeping.logs_plan(entry, {}, time.time())
    monkeypatch.setattr(logrotate, "_check", lambda st, *args, **kw: st)  # the missed check
    with member_links_before_open(monkeypatch, member, swapped, secret) as done:
        applied = RotateLogs().apply(proposal)
    assert done == ["link"]
    assert secret.read_bytes() == SECRET, "root's file was cut"
    for path in logs.iterdir():
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert b"TOP-SECRET" not in data or path.samefile(secret), f"root's secret was copied into {path.name}"
    assert "Permission denied" in applied.message, applied.message
    assert logrotate._fs_ids() == (0, 0), "the thread kept the su identity"


def test_su_an_account_that_cannot_own_the_logs_is_refused_and_leaves_them(zenctl, shared):
    """su MEMBER GROUP for a log root owns: the member cannot give the new live log to root (no CAP_CHOWN once the
    file-system uid is not 0). The plan refuses the log (a warning, no action); a rotation applied anyway (planned
    as root) fails at that step and puts the log back, rather than recreating it with another owner."""
    base, group, member = shared
    logs, gid = base / "logs", grp.getgrnam(group).gr_gid
    log_of(logs / "app.log", 0, gid)
    as_member = f"acting as su {member.pw_name} {group}"
    cfg = config(zenctl, paths=[str(logs / "*.log")], size=1, su=f"{member.pw_name} {group}")
    code, out = zenctl.json("maintain", "logs", "-c", str(cfg))
    (finding,) = out["findings"]
    assert code == 1 and finding["status"] == "warning" and out["actions"] == [], out
    assert f"{logs / 'app.log'}: owned by root:{group}, an owner zenctl cannot give its new files {as_member}; " \
           f"refused" in finding["message"]

    _, (proposal,), _ = housekeeping.logs_plan(spec(paths=[str(logs / "*.log")], su=f"root {group}"), {}, time.time())
    proposal.params["su"] = [member.pw_uid, gid]
    applied = RotateLogs().apply(proposal)
    assert f"cannot give {logs / 'app.log'} the owner root:{group} of the file it comes from {as_member}; " \
           f"refused" in applied.message, applied.message
    assert sorted(p.name for p in logs.iterdir()) == ["app.log"] and owner(logs / "app.log") == (0, gid, 0o640)
    assert numbers(logs / "app.log") == list(range(100))


def test_su_root_group_does_not_follow_a_symlink_a_group_member_placed(zenctl, shared):
    """su root GROUP trusts the group's directory, not where a member points a symlink in it: acting as root, the
    rotation would otherwise rename and delete root's files wherever the link leads (finding 7 again)."""
    base, group, member = shared
    logs, gid = base / "logs", grp.getgrnam(group).gr_gid
    vault = base / "vault"  # root's logs, in a directory only root may enter
    vault.mkdir(mode=0o700)
    for suffix in ("", ".1", ".2"):
        (vault / f"root.log{suffix}").write_bytes(SECRET)
    (logs / "web").mkdir()
    os.chown(logs / "web", 0, gid)
    log_of(logs / "web" / "web.log", 0, gid)
    done = as_user_python(member, f"import os; os.symlink({str(vault)!r}, {str(logs / 'evil')!r})",
                          groups=os.getgrouplist(member.pw_name, member.pw_gid))
    assert done.returncode == 0, done.stderr
    cfg = config(zenctl, paths=[str(logs / "*" / "*.log")], size=1, keep=1, su=f"root {group}")
    code, out = zenctl.json("maintain", "logs", "-c", str(cfg))
    assert sorted(p.name for p in vault.iterdir()) == ["root.log", "root.log.1", "root.log.2"]
    assert all(p.read_bytes() == SECRET for p in vault.iterdir()), "root's files were rotated"
    (finding,) = out["findings"]
    assert f"{logs / 'evil'} is a symlink in a directory group {group} can change; refused" in \
        " ".join(finding["evidence"]["errors"]) and finding["status"] == "warning"
    (action,) = out["actions"]  # the group's real directory is rotated
    assert action["status"] == "applied" and (logs / "web" / "web.log.1").exists(), action
