"""logs.rotate and `zenctl maintain logs` on real files, with a real writer process that appends and reopens on
SIGHUP: numbered and dated generations, keep, gzip with delaycompress, postrotate, copytruncate without loss,
missing files, a broken rotation record, a failing postrotate, and rollback putting the files back."""

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
WRITER = str(Path(__file__).resolve().parent.parent / "logwriter.py")


def config(zenctl, **entry) -> Path:
    entry.setdefault("name", "app")
    return zenctl.config("agents:\n  system_health:\n    logs: " + json.dumps([entry]) + "\n")


def read(path: Path) -> bytes:
    return gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()


def numbers(*paths: Path) -> list[int]:
    """The line numbers of the files, concatenated in the order given (oldest generation first)."""
    data = b"".join(read(p) for p in paths)
    return [int(line.split()[0]) for line in data.splitlines() if line.strip()]


def write_lines(path: Path, first: int, count: int) -> None:
    with open(path, "ab") as handle:
        for number in range(first, first + count):
            handle.write(b"%08d a log line with some padding to look like one\n" % number)


def rotate(zenctl, cfg: Path, *extra: str) -> dict:
    code, out = zenctl.json("maintain", "logs", "-c", str(cfg), *extra)
    assert code == 0, out
    return out


class Writer:
    """tests/logwriter.py as a real process."""

    def __init__(self, path: Path, rate: float):
        self.pidfile = path.parent / "writer.pid"
        self.process = subprocess.Popen([sys.executable, WRITER, str(path), str(rate), str(self.pidfile)])
        deadline = time.monotonic() + 10
        while not self.pidfile.exists():
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.02)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)
        return int(Path(f"{self.pidfile}.count").read_text())


def test_rename_rotation_keeps_n_compresses_late_and_the_writer_reopens(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    writer = Writer(log, 200)
    cfg = config(zenctl, paths=[str(logs / "*.log"), str(logs / "missing-*.log")], size=1, keep=2,
                 postrotate=f"kill -HUP $(cat {writer.pidfile})")
    try:
        time.sleep(0.3)
        out = rotate(zenctl, cfg, "--dry-run")
        (action,) = out["actions"]
        assert action["status"] == "previewed" and "frees about" in action["preview"]
        assert sorted(p.name for p in logs.iterdir()) == ["app.log", "writer.pid"]
        for _ in range(3):
            out = rotate(zenctl, cfg)
            assert [a["status"] for a in out["actions"]] == ["applied"], out["actions"]
            time.sleep(0.3)
    finally:
        written = writer.stop()
    # keep 2: the newest generation plain (delaycompress), the one before gzipped, the oldest dropped
    assert sorted(p.name for p in logs.iterdir() if p.name.startswith("app")) == ["app.log", "app.log.1",
                                                                                 "app.log.2.gz"]
    got = numbers(logs / "app.log.2.gz", logs / "app.log.1", log)
    assert got == list(range(got[0], written)), "lines lost or out of order across generations"
    assert got[0] > 0  # the first generation was dropped by keep
    assert (log.stat().st_mode & 0o777) == 0o644


def test_rollback_puts_the_files_back_with_what_was_written_since(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    write_lines(log, 0, 1000)
    write_lines(logs / "app.log.1", -100, 50)  # an older generation, shifted to .2 and compressed
    cfg = config(zenctl, paths=[str(log)], size="10k", keep=5)
    out = rotate(zenctl, cfg)
    (action,) = out["actions"]
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1", "app.log.2.gz"]
    write_lines(log, 1000, 10)  # written after the rotation

    done = zenctl("rollback", action["id"], "--dry-run")
    assert done.returncode == 0 and "decompress" in done.stdout, done.stdout
    assert (logs / "app.log.2.gz").exists()
    code, result = zenctl.json("rollback", action["id"])
    assert code == 0, result
    assert result["actions"][0]["kind"] == "logs.unrotate" and result["actions"][0]["status"] == "applied"
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1"]
    assert numbers(logs / "app.log.1") == list(range(-100, -50))
    assert numbers(log) == list(range(1010))
    again = zenctl("rollback", action["id"])
    assert again.returncode != 0 and "already rolled back" in again.stderr


def test_dateext_names_generations_by_date_and_keeps_n(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    for day in ("20200101", "20200102", "20200103"):
        write_lines(logs / f"app.log-{day}", 0, 1)
    write_lines(log, 0, 10)
    cfg = config(zenctl, paths=[str(log)], size=1, keep=2, dateext=True, delaycompress=False)
    rotate(zenctl, cfg)
    today = time.strftime("%Y%m%d")
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log-20200103.gz", f"app.log-{today}.gz"]
    assert numbers(logs / f"app.log-{today}.gz") == list(range(10))
    write_lines(log, 10, 5)
    rotate(zenctl, cfg)  # same day again: the name gets the time
    names = sorted(p.name for p in logs.iterdir())
    assert names[0] == "app.log" and names[1] == f"app.log-{today}-" + names[1].split("-")[2] and len(names) == 3


def test_copytruncate_loses_no_line_and_rollback_puts_them_in_front(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    writer = Writer(log, 5000)
    cfg = config(zenctl, paths=[str(log)], size=1, keep=50, copytruncate=True, compress=False)
    ids = []
    try:
        for _ in range(5):
            time.sleep(0.2)
            (action,) = rotate(zenctl, cfg)["actions"]
            assert action["status"] == "applied", action
            ids.append(action["id"])
        time.sleep(0.2)
    finally:
        written = writer.stop()
    generations = sorted(logs.glob("app.log.*"), key=lambda p: -int(p.suffix[1:]))
    assert len(generations) == 5
    # the cut is at a block boundary: a line may continue in the next file, so count over the concatenation
    assert numbers(*generations, log) == list(range(written))
    with sqlite3.connect(zenctl.db) as conn:
        before = json.loads(conn.execute("SELECT before FROM actions WHERE id = ?", (ids[-1],)).fetchone()[0])
    (cut,) = [s for s in before["steps"] if s["op"] == "collapse"]
    assert cut["method"] == "collapse" and cut["bytes"] % 4096 == 0

    code, result = zenctl.json("rollback", "--since", "1h", "--dry-run")  # the older ones judged after the newer
    assert code == 0 and [a["status"] for a in result["actions"]] == ["previewed"] * 5, result
    code, result = zenctl.json("rollback", "--since", "1h")
    assert code == 0 and [a["status"] for a in result["actions"]] == ["applied"] * 5, result
    assert [p.name for p in logs.glob("app.log*")] == ["app.log"]
    assert numbers(log) == list(range(written))


def test_broken_or_missing_rotation_record_never_stops_rotation(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    write_lines(log, 0, 10)
    cfg = config(zenctl, paths=[str(log)], age="1h")
    (action,) = rotate(zenctl, cfg)["actions"]  # no record, no generation: due
    assert "no earlier rotation known" in action["preview"]
    write_lines(log, 10, 10)
    assert rotate(zenctl, cfg)["actions"] == []  # rotated a moment ago: not due
    with sqlite3.connect(zenctl.db) as conn:  # the record goes bad: garbage, then a time far in the future
        conn.execute("UPDATE actions SET before = 'not json' WHERE kind = 'logs.rotate'")
    assert rotate(zenctl, cfg)["actions"] == []  # falls back to the newest generation's mtime: still not due
    old = time.time() - 7200
    os.utime(logs / "app.log.1", (old, old))
    (action,) = rotate(zenctl, cfg)["actions"]
    assert action["status"] == "applied" and "last rotated 2h ago" in action["preview"]
    with sqlite3.connect(zenctl.db) as conn:
        conn.execute("UPDATE actions SET before = ? WHERE kind = 'logs.rotate'",
                     (json.dumps({"rotated": {str(log): time.time() + 10 * 86400}}),))
    for generation in logs.glob("app.log.*"):
        os.utime(generation, (old, old))
    write_lines(log, 20, 10)
    (action,) = rotate(zenctl, cfg)["actions"]  # a record in the future is not trusted
    assert action["status"] == "applied"


def test_leftovers_of_a_rotation_that_died_do_not_block_the_next(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    write_lines(log, 0, 10)
    write_lines(logs / "app.log.1", -20, 10)
    write_lines(logs / "app.log.2", -30, 10)
    (logs / ".app.log.2.gz.zenctl-tmp").write_bytes(b"half a gzip")  # died while compressing
    (logs / ".app.log.2.zenctl-drop").write_bytes(b"old")  # died before deleting a dropped generation
    cfg = config(zenctl, paths=[str(logs / "*")], size=1, keep=2)
    (action,) = rotate(zenctl, cfg)["actions"]
    assert action["status"] == "applied", action
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1", "app.log.2.gz"]
    assert numbers(logs / "app.log.2.gz", logs / "app.log.1") == list(range(-20, -10)) + list(range(10))


def test_failing_postrotate_puts_the_set_back(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_lines(logs / "a.log", 0, 100)
    write_lines(logs / "b.log", 0, 100)
    write_lines(logs / "a.log.1", -5, 5)
    cfg = config(zenctl, paths=[str(logs / "*.log")], size=1, postrotate="echo cannot reach the daemon; exit 3")
    code, out = zenctl.json("maintain", "logs", "-c", str(cfg))
    (action,) = out["actions"]
    assert action["status"] == "failed"
    assert "postrotate command exited 3: cannot reach the daemon" in action["message"]
    assert sorted(p.name for p in logs.iterdir()) == ["a.log", "a.log.1", "b.log"]
    assert numbers(logs / "a.log") == list(range(100)) and numbers(logs / "a.log.1") == list(range(-5, 0))


def test_missing_files_and_empty_logs_are_fine(zenctl, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "empty.log").touch()
    cfg = config(zenctl, paths=[str(tmp_path / "nowhere" / "*.log"), str(tmp_path / "logs" / "*.log")], size=1)
    out = rotate(zenctl, cfg)
    assert out["actions"] == [] and out["findings"][0]["status"] == "ok"
    assert "none due" in out["findings"][0]["message"]


def test_log_set_config_errors_name_the_key(zenctl, tmp_path):
    cfg = zenctl.config("agents:\n  system_health:\n    logs:\n      - paths: [relative/*.log]\n"
                        "        size: 10 parsecs\n")
    done = zenctl("maintain", "logs", "-c", str(cfg))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert "zenctl.yaml:4: agents.system_health.logs.0.paths: 'relative/*.log' must be an absolute" in done.stderr
    checked = zenctl("config", "validate", "-c", str(cfg))
    assert checked.returncode == 3 and 'zenctl.yaml:5: agents.system_health.logs.0.size: must be a size such as' \
        in checked.stderr + checked.stdout, checked


def test_a_generation_both_plain_and_compressed_with_different_contents_is_kept_and_said(zenctl, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_lines(logs / "app.log", 0, 10)
    write_lines(logs / "app.log.1", -10, 10)
    (logs / "app.log.1.gz").write_bytes(gzip.compress(b"%08d another copy\n" % -20))  # not app.log.1's content
    code, out = zenctl.json("maintain", "logs", "-c", str(config(zenctl, paths=[str(logs / "*.log")], size=1)))
    (action,) = out["actions"]
    assert action["status"] == "applied", action
    (finding,) = out["findings"]
    assert finding["status"] == "warning" and "app.log.2 and" not in finding["message"]
    assert f"{logs / 'app.log.1'} and {logs / 'app.log.1.gz'} both exist and differ" in finding["message"]
    assert sorted(p.name for p in logs.iterdir()) == ["app.log", "app.log.1", "app.log.2", "app.log.2.gz"]
    assert numbers(logs / "app.log.2", logs / "app.log.1") == list(range(-10, 10))
    assert numbers(logs / "app.log.2.gz") == [-20] and code == 1  # 1: a warning


def test_log_directories_others_can_write_are_refused_links_root_placed_are_followed(zenctl, tmp_path):
    shared = tmp_path / "shared"  # group-writable by a group that is not root's
    shared.mkdir()
    write_lines(shared / "a.log", 0, 10)
    os.chown(shared, 0, 65534)
    shared.chmod(0o775)
    real = tmp_path / "real"
    real.mkdir()
    write_lines(real / "b.log", 0, 10)
    (tmp_path / "link").symlink_to(real)  # in a directory only root can write: root placed it, like /var/run
    cfg = config(zenctl, paths=[str(shared / "*.log"), str(tmp_path / "link" / "*.log")], size=1)
    code, out = zenctl.json("maintain", "logs", "-c", str(cfg))
    (finding,) = out["findings"]
    assert code == 1 and f"{shared} is writable by group " in finding["message"] and finding["status"] == "warning"
    assert sorted(p.name for p in shared.iterdir()) == ["a.log"]
    assert sorted(p.name for p in real.iterdir()) == ["b.log", "b.log.1"]


def test_su_config_errors_name_the_key_and_the_value(zenctl):
    for su, why in (("nosuchuser0 root", "no such user 'nosuchuser0' on this host"),
                    ("root nosuchgroup0", "no such group 'nosuchgroup0' on this host"),
                    ("root", "must be a user and a group, as in logrotate")):
        cfg = zenctl.config("agents:\n  system_health:\n    logs:\n      - paths: [/var/log/app/*.log]\n"
                            f"        su: {su}\n")
        done = zenctl("maintain", "logs", "-c", str(cfg))
        assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
        assert f"zenctl.yaml:5: agents.system_health.logs.0.su: '{su}'" in done.stderr and why in done.stderr, \
            done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="su switches to another account: needs root")
def test_su_rotates_as_its_account_and_postrotate_still_runs_as_root(zenctl):
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="zenctl-su-", dir="/tmp"))  # pytest's tmp_path is 0700: nobody can't enter
    try:
        base.chmod(0o755)
        logs = base / "logs"
        logs.mkdir()
        os.chown(logs, 0, 65534)
        logs.chmod(0o775)  # root:nogroup 0775, like Ubuntu's /var/log (root:syslog)
        write_lines(logs / "app.log", 0, 10)
        os.chown(logs / "app.log", 65534, 65534)
        marker = base / "reopened"  # only root can create it: base is root's 0755
        import grp
        import pwd

        su = f"{pwd.getpwuid(65534).pw_name} {grp.getgrgid(65534).gr_name}"  # nobody nogroup
        cfg = config(zenctl, paths=[str(logs / "*.log")], size=1, su=su,
                     postrotate=f"touch {marker}")
        out = rotate(zenctl, cfg)
        (action,) = out["actions"]
        assert action["status"] == "applied" and action["params"]["su"] == [65534, 65534], action
        assert marker.exists(), "postrotate did not run as root"
        assert {(p.stat().st_uid, p.stat().st_gid) for p in logs.iterdir()} == {(65534, 65534)}
        assert numbers(logs / "app.log.1") == list(range(10))
    finally:
        shutil.rmtree(base)
