"""Incremental reading through rotation, with real writer processes (tests/logwriter.py) appending throughout:
Debian's logrotate (rename with create, delaycompress; copytruncate with compress) and zenctl's own logs.rotate
(rename with a postrotate HUP; copytruncate by collapse), with reads before, between and after rotations.
Every line the writer wrote is read exactly once. Plus the bad input a log can hold, and the attacks on paths."""

import gzip
import json
import os
import pwd
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.housekeeping.test_logs import Writer
from zenctl.agents.log_analyzer.sources import Reader

LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


class Follower:
    """Runs the reader the way the agent does: a fresh Reader per run, its state through JSON in between."""

    def __init__(self, pattern: str, max_lines: int = 10**9):
        self.pattern, self.max_lines = pattern, max_lines
        self.max_line_bytes = 65536
        self.state = None
        self.seen: list[int] = []
        self.lost: list = []

    def run(self) -> Reader:
        reader = Reader(self.pattern, self.state, self.max_lines, self.max_line_bytes)
        for chunk in reader.chunks():
            for _, text in chunk.lines:
                self.seen.append(int(text.split()[0]))
        self.state = json.loads(json.dumps(reader.state()))
        self.lost += reader.stats.lost
        return reader

    def check(self, written: int) -> None:
        assert not self.lost, self.lost
        duplicates = sorted(n for n, count in Counter(self.seen).items() if count > 1)[:10]
        assert not duplicates, f"read twice: {duplicates}"
        missing = sorted(set(range(written)) - set(self.seen))[:10]
        assert not missing, f"never read: {missing} of {written}"
        assert len(self.seen) == written


def logrotate(tmp_path: Path, body: str) -> None:
    conf = tmp_path / "logrotate.conf"
    conf.write_text(body)
    done = subprocess.run([LOGROTATE, "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def settle(follower: Follower, rounds: int = 3) -> None:
    for _ in range(rounds):
        time.sleep(0.05)
        follower.run()


@pytest.mark.parametrize("mode", ["rename", "copytruncate", "dateext"])
def test_debian_logrotate_with_a_writer_loses_no_line_and_reads_none_twice(tmp_path, mode):
    assert os.path.exists(LOGROTATE), "Debian's logrotate is needed (apt-get install logrotate)"
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    writer = Writer(log, 3000)
    follower = Follower(str(log))
    if mode in ("rename", "dateext"):
        dated = "  dateext\n  dateformat -%Y%m%d-%s\n" if mode == "dateext" else ""
        body = (f"{log} {{\n  rotate 50\n  create\n  compress\n  delaycompress\n  missingok\n{dated}"
                f"  postrotate\n    kill -HUP $(cat {writer.pidfile})\n  endscript\n}}\n")
    else:
        body = f"{log} {{\n  rotate 50\n  copytruncate\n  compress\n  missingok\n}}\n"
    rng = random.Random(16)
    try:
        time.sleep(0.2)
        follower.run()
        for round_ in range(4 if mode == "dateext" else 8):
            time.sleep(rng.uniform(0.05, 0.25) + (1.0 if mode == "dateext" else 0))  # one dated name a second
            logrotate(tmp_path, body)
            if round_ % 3 == 2:
                time.sleep(1.0 if mode == "dateext" else 0)
                logrotate(tmp_path, body)  # twice between two reads
            if round_ % 2:
                follower.run()
            follower.run()
    finally:
        written = writer.stop()
    settle(follower)
    if mode == "copytruncate":
        # logrotate's own copytruncate loses what arrives between its copy and its truncate; count what is on disk
        on_disk = []
        for path in logs.glob("app.log*"):
            data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            on_disk += [int(line.split()[0]) for line in data.splitlines() if line[:8].isdigit()]
        missing = sorted(set(on_disk) - set(follower.seen))
        assert not missing, missing
        assert len(follower.seen) == len(set(follower.seen)), "a line was read twice"
        assert not follower.lost
    else:
        follower.check(written)
    assert any(p.suffix == ".gz" for p in logs.iterdir())
    if mode == "dateext":
        assert len(list(logs.glob("app.log-*"))) >= 4, sorted(p.name for p in logs.iterdir())


@pytest.mark.parametrize("mode", ["rename", "copytruncate", "dateext"])
def test_zenctl_logs_rotate_with_a_writer_loses_no_line_and_reads_none_twice(zenctl, tmp_path, mode):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    writer = Writer(log, 3000)
    entry = {"name": "app", "paths": [str(log)], "size": 1, "keep": 50, "compress": True}
    if mode == "rename":
        entry.update(delaycompress=True, postrotate=f"kill -HUP $(cat {writer.pidfile})")
    elif mode == "dateext":  # app.log-20261125-101500.gz: a generation named by its time
        entry.update(delaycompress=False, dateext=True, postrotate=f"kill -HUP $(cat {writer.pidfile})")
    else:
        entry.update(delaycompress=False, copytruncate=True)
    cfg = zenctl.config("agents:\n  system_health:\n    logs: " + json.dumps([entry]) + "\n")
    follower = Follower(str(log))
    try:
        time.sleep(0.1)
        follower.run()  # a first run reads the live file only: the generations before it are history
        for round_ in range(6):
            time.sleep(1.05 if mode == "dateext" else 0.15)  # dated names: one rotation a second
            done = zenctl("maintain", "logs", "-c", str(cfg), "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            if round_ != 3:
                follower.run()
    finally:
        written = writer.stop()
    settle(follower)
    follower.check(written)
    if mode == "dateext":
        assert len(list(logs.glob("app.log-*"))) >= 2, sorted(p.name for p in logs.iterdir())


def test_max_lines_per_run_carries_the_rest_over_and_reports_the_backlog(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"%08d line\n" % n for n in range(1000)))
    follower = Follower(str(log), max_lines=300)
    reader = follower.run()
    assert reader.stats.limited and reader.stats.backlog_bytes == 700 * 14
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"".join(b"%08d line\n" % n for n in range(1000, 1100)))
    for _ in range(5):
        follower.run()
    follower.check(1100)


def test_a_partial_last_line_waits_and_gzip_generations_are_read_once(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"00000000 one\n00000001 tw")
    follower = Follower(str(log))
    follower.run()
    assert follower.seen == [0]
    with open(log, "ab") as handle:
        handle.write(b"o\n00000002 three\n")
    os.rename(log, tmp_path / "app.log.1")
    subprocess.run(["gzip", str(tmp_path / "app.log.1")], check=True)
    log.write_bytes(b"00000003 four\n")
    follower.run()
    (tmp_path / "app.log.1.gz").rename(tmp_path / "app.log.2.gz")  # renamed again: still read once
    os.utime(tmp_path / "app.log.2.gz")
    follower.run()
    follower.check(4)


def test_bad_bytes_are_counted_never_fatal(tmp_path):
    log = tmp_path / "app.log"
    huge = b"x" * (10 * 1024 * 1024)
    log.write_bytes(b"00000000 fine\n00000001 " + huge + b"\n00000002 \xff\xfe bad utf-8\n00000003 \x00\x01 nul\n"
                    b"00000004 after\n")
    reader = Reader(str(log), None, 100, max_line_bytes=4096)
    got = [(n, text) for chunk in reader.chunks() for n, text in chunk.lines]
    assert [n for n, _ in got] == [1, 2, 3, 4, 5]
    assert len(got[1][1]) == 4096 and got[2][1] == "00000002 \\xff\\xfe bad utf-8"
    assert (reader.stats.truncated, reader.stats.invalid_utf8, reader.stats.binary) == (1, 1, 1)


def _nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_links_planted_by_a_log_directory_owner_are_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root:hash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    logs = tmp_path / "logs"
    logs.mkdir()
    uid, gid = _nobody()
    os.chown(logs, uid, gid)
    tmp_path.chmod(0o755)
    (logs / "app.log").symlink_to(secret)
    reader = Reader(str(logs / "app.log"), None, 100)
    assert [line for chunk in reader.chunks() for _, line in chunk.lines] == []
    assert reader.stats.refused and "symlink" in reader.stats.refused[0][1]
    (logs / "app.log").unlink()
    os.link(secret, logs / "app.log")  # (root makes the link: protected_hardlinks stops the user, not root)
    os.chown(logs / "app.log", uid, gid, follow_symlinks=False)
    reader = Reader(str(logs / "app.log"), None, 100)
    assert [line for chunk in reader.chunks() for _, line in chunk.lines] == []
    assert "more than one name" in reader.stats.refused[0][1]
    (logs / "app.log").unlink()
    os.mkfifo(logs / "app.log")  # a FIFO would block a reader that waited for it
    reader = Reader(str(logs / "app.log"), None, 100)
    assert [line for chunk in reader.chunks() for _, line in chunk.lines] == []
    assert reader.stats.refused


def test_a_glob_skips_generations_and_each_file_has_its_own_cursor(tmp_path):
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_bytes(b"00000000 x\n")
    (tmp_path / "a.log.1").write_bytes(b"00000009 old\n")
    (tmp_path / "a.log.2.gz").write_bytes(gzip.compress(b"00000008 older\n"))
    follower = Follower(str(tmp_path / "*"))
    follower.run()
    assert follower.seen == [0, 0]


def test_a_long_line_still_being_written_waits_for_its_end(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"00000000 short\n00000001 " + b"y" * 300_000)
    follower = Follower(str(log))
    follower.max_line_bytes = 1024
    follower.run()
    assert follower.seen == [0]
    with open(log, "ab") as handle:
        handle.write(b"y" * 300_000 + b"\n00000002 after\n")
    reader = follower.run()
    assert reader.stats.truncated == 1
    follower.check(3)


@pytest.mark.skipif(os.geteuid() != 0, reason="the directory must be root's")
def test_a_symlinked_log_in_a_directory_only_root_can_change_is_followed(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "app.log").write_bytes(b"00000000 x\n00000001 y\n")
    (tmp_path / "app.log").symlink_to(real / "app.log")
    follower = Follower(str(tmp_path / "app.log"))
    follower.run()
    with open(real / "app.log", "ab") as handle:
        handle.write(b"00000002 z\n")
    os.rename(real / "app.log", real / "app.log.1")  # rotated where it lives: the generations are the target's
    (real / "app.log").write_bytes(b"00000003 new\n")
    follower.run()
    follower.check(4)


def test_a_damaged_cursor_state_reads_the_file_as_new(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"00000000 x\n")
    for state in ({"paths": {str(log): {"cursors": [{"dev": "x", "offset": -1}], "done": [[1, "a"]]}}},
                  {"paths": [1, 2]}, "junk", {"paths": {str(log): {"cursors": "no"}}}):
        reader = Reader(str(log), state, 100)
        assert [n for chunk in reader.chunks() for n, _ in chunk.lines] == [1]


def test_two_rotations_between_runs_read_in_order(tmp_path):
    log = tmp_path / "app.log"

    def write(path: Path, first: int, count: int) -> None:
        with open(path, "ab") as handle:
            handle.write(b"".join(b"%08d line\n" % n for n in range(first, first + count)))

    write(log, 0, 10)
    follower = Follower(str(log))
    follower.run()
    write(log, 10, 5)
    os.rename(log, tmp_path / "app.log.1")
    write(log, 15, 5)
    time.sleep(0.01)
    os.rename(tmp_path / "app.log.1", tmp_path / "app.log.2")
    subprocess.run(["gzip", str(tmp_path / "app.log.2")], check=True)  # delaycompress's turn, after the rename
    os.rename(log, tmp_path / "app.log.1")
    write(log, 20, 5)
    follower.run()
    assert follower.seen == list(range(25))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another account")
def test_a_log_the_account_may_not_read_is_refused_with_the_reason(tmp_path):
    import zenctl.core.dirwalk  # noqa: F401  (loaded before the child drops to an account that cannot read it)
    import zenctl.core.untrusted  # noqa: F401

    tmp_path.chmod(0o755)
    log = tmp_path / "secret.log"
    log.write_text("00000000 secret\n")
    log.chmod(0o600)
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: as nobody (as `run_as` makes the agent), never returns
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            reader = Reader(str(log), None, 100)
            lines = [text for chunk in reader.chunks() for _, text in chunk.lines]
            os.write(write_end, json.dumps({"lines": lines, "refused": reader.stats.refused}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        got = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert got["lines"] == []
    assert got["refused"] == [[str(log), "permission denied (reading logs needs root or the adm group)"]]


def test_a_consumer_that_stops_early_keeps_what_it_took(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"%08d line\n" % n for n in range(10)))
    reader = Reader(str(log), None, 100)
    for chunk in reader.chunks():
        for number, _ in chunk.lines:
            if number == 4:
                break
        break
    reader2 = Reader(str(log), json.loads(json.dumps(reader.state())), 100)
    assert [n for chunk in reader2.chunks() for n, _ in chunk.lines] == [5, 6, 7, 8, 9, 10]


def test_a_directory_full_of_planted_generations_costs_a_bounded_number_of_files(tmp_path):
    from zenctl.agents.log_analyzer.sources import MAX_GENERATIONS

    log = tmp_path / "app.log"
    log.write_bytes(b"00000000 x\n")
    follower = Follower(str(log))
    follower.run()
    for n in range(1, 3000):
        (tmp_path / f"app.log.{n}").write_bytes(b"%08d planted\n" % n)
    before = len(os.listdir("/proc/self/fd"))
    reader = Reader(str(log), follower.state, 10**6)
    seen = []
    for chunk in reader.chunks():
        seen.append(len(os.listdir("/proc/self/fd")) - before)
        for _ in chunk.lines:
            pass
    assert len(seen) == MAX_GENERATIONS + 1 and max(seen) <= MAX_GENERATIONS + 4


def test_copytruncate_twice_between_runs_joins_the_lines_the_cuts_split(tmp_path):
    log = tmp_path / "app.log"

    def copytruncate(then: bytes) -> None:  # logrotate's copytruncate without compression, cut mid-line
        if (tmp_path / "app.log.1").exists():
            os.rename(tmp_path / "app.log.1", tmp_path / "app.log.2")
        shutil.copyfile(log, tmp_path / "app.log.1")
        with open(log, "r+b") as handle:
            handle.truncate(0)
            handle.write(then)

    log.write_bytes(b"00000000 a\n00000001 b\n00000002 c\n")
    follower = Follower(str(log))
    follower.run()
    with open(log, "ab") as handle:
        handle.write(b"00000003 li")
    copytruncate(b"ne\n00000004 x\n00000005 pa")
    time.sleep(0.01)
    copytruncate(b"rt\n00000006 y\n")
    follower.run()
    follower.check(7)
