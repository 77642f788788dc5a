"""tmp.clean against a local user who writes the tmp root (findings 8 to 12 of issue 12), and the attacks that
held up before, run for real: a second user, real mounts, real processes.

Each test mounts its own tmpfs under a 0755 directory in /tmp (the pytest tmp_path is under a 0700 directory the
intruder cannot reach) with a sticky, world-writable `tmp` root in it, like /tmp itself.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.agents.health.test_disk_pressure import only_this_mount
from tests.security.conftest import ROOT_ONLY, as_user_python, tmpfs_with_tmp
from zenctl.core import audit
from zenctl.core.audit import Entry
from zenctl.core.state import open_state

pytestmark = [ROOT_ONLY]
OLD = time.time() - 30 * 86400


@pytest.fixture
def shared():
    """A fresh 64 MiB tmpfs reachable by any user, with `tmp` (mode 1777) as the root to clean."""
    with tmpfs_with_tmp("64m", "zx-tmpclean-") as base:
        yield base


def old(*paths) -> None:
    for path in paths:
        os.utime(path, (OLD, OLD), follow_symlinks=False)


def clean(zenctl, root: Path, *args: str) -> tuple[int, dict]:
    entry = {"root": str(root), "age": "10d", "age_by": ["mtime"]}
    cfg = zenctl.config("agents:\n  system_health:\n    tmp: " + json.dumps([entry]) + "\n")
    return zenctl.json("maintain", "tmp", "-c", str(cfg), *args)


def spawn(entry, argv: list[str], **kw) -> subprocess.Popen:
    """A process of `entry` (its own group only) left running."""
    kw.setdefault("cwd", "/")
    return subprocess.Popen(argv, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                            env={"PATH": "/usr/bin:/bin"}, **kw)


def deep_tree(top: Path, levels: int) -> None:
    """`levels` nested old directories under `top`, made through descriptors (the path outgrows PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        os.utime("d", (OLD, OLD), dir_fd=fd)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)


def test_8_a_bind_mount_inside_the_root_is_not_entered(zenctl, shared):
    data = shared / "data"  # outside the root, same file system
    data.mkdir()
    for i in range(5):
        (data / f"record{i}").write_text("keep")
        old(data / f"record{i}")
    bound = shared / "tmp" / "bound"
    bound.mkdir()
    old(bound)
    subprocess.run(["mount", "--bind", str(data), str(bound)], check=True)
    try:
        code, out = clean(zenctl, shared / "tmp")
    finally:
        subprocess.run(["umount", str(bound)], check=True)
    assert sorted(p.name for p in data.iterdir()) == [f"record{i}" for i in range(5)]
    assert code == 0 and "1 on another file system" in out["findings"][0]["message"], out


def test_9_a_directory_renamed_out_of_the_root_during_a_clean_is_left_alone(zenctl, shared, intruder):
    outside = shared / "mine"  # the intruder's own directory, outside the root on the same file system
    outside.mkdir()
    os.chown(outside, intruder.pw_uid, intruder.pw_gid)
    # The intruder fills tmp/d with old files, waits for root to start deleting in it (a tmpfs directory's size
    # shrinks by 20 bytes per entry), moves it out and says how many entries it held right after the move.
    code = f"""
import os, sys, time
d, away = {str(shared / "tmp" / "d")!r}, {str(outside / "d")!r}
os.mkdir(d)
for i in range(20000):
    path = f"{{d}}/f{{i:05d}}"
    open(path, "w").close()
    os.utime(path, ({OLD}, {OLD}))
os.utime(d, ({OLD}, {OLD}))
empty = os.stat({str(outside)!r}).st_size
print("ready", flush=True)
full, deadline = os.stat(d).st_size, time.monotonic() + 60
while os.stat(d).st_size == full:
    if time.monotonic() > deadline:
        sys.exit("root never started deleting")
os.rename(d, away)
print((os.stat(away).st_size - empty) // 20, flush=True)
"""
    attack = spawn(intruder, ["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert attack.stdout.readline() == "ready\n"
        _, out = clean(zenctl, shared / "tmp")
        at_move = int(attack.stdout.readline())
    finally:
        attack.kill()
        attack.wait()
    left = len(os.listdir(outside / "d"))
    assert at_move > 100, "the move came too late to tell anything"
    assert left >= at_move - 40, (left, at_move)  # at most one re-check interval (RECHECK) after the move
    assert "d: moved out of the root while cleaning" in out["actions"][0]["message"], out["actions"]


def test_10_deep_trees_are_walked_without_recursion_and_the_rest_reported(zenctl, shared):
    root = shared / "tmp"
    (root / "deep").mkdir()
    deep_tree(root / "deep", 10_000)
    (root / "old").write_text("x")
    old(root / "old", root / "deep")
    code, out = clean(zenctl, root, "--dry-run")
    assert code == 0, out
    assert "kept: 1 directories deeper than" in out["findings"][0]["message"], out["findings"]

    # a full mount: the health check plans the clean with the same walk (600 levels were enough to kill it)
    small = shared / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    try:
        (small / "tmp").mkdir()
        deep_tree(small / "tmp", 600)
        (small / "tmp" / "big").write_bytes(os.urandom(3 << 20))
        old(small / "tmp" / "big")
        tmp = [{"root": str(small / "tmp"), "age": "10d", "age_by": ["mtime"]}]
        cfg = zenctl.config(only_this_mount(small, disk_threshold=50, disk_warning=40, suggest_scan_seconds=1)
                            + "    tmp: " + json.dumps(tmp) + "\n")
        code, out = zenctl.json("health", "check", "-c", str(cfg))
        assert [(a["kind"], a["status"]) for a in out["actions"]] == [("tmp.clean", "applied")], out
        assert not (small / "tmp" / "big").exists()
        assert "directories deeper than 128 levels" in out["actions"][0]["message"]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


def test_11_undecodable_file_names_are_stored_and_printed_losslessly(zenctl, shared, intruder, tmp_path):
    root = shared / "tmp"
    name = b"\xff\xfe-report"
    done = as_user_python(intruder, f"import os; os.mkdir({str(root).encode() + b'/d'!r}); "
                                    f"open({str(root).encode() + b'/d/' + name!r}, 'w').close()")
    assert done.returncode == 0, done.stderr
    victim = os.path.join(str(root).encode(), b"d", name)
    old(victim)
    # a file that cannot be deleted (a mount point: EBUSY) puts the name into the result's message
    spare = shared / "spare"
    spare.write_text("x")
    old(spare)
    subprocess.run(["mount", "--bind", str(spare), os.fsdecode(victim)], check=True)
    try:
        code, out = clean(zenctl, root)
    finally:
        subprocess.run(["umount", os.fsdecode(victim)], check=True)
    assert code == 0 and [a["status"] for a in out["actions"]] == ["applied"], out
    (action,) = out["actions"]
    assert "d/\\xff\\xfe-report: Device or resource busy" in action["message"]
    again = zenctl("maintain", "tmp", "-c", str(tmp_path / "zenctl.yaml"))
    assert again.returncode == 0 and "interrupted" not in again.stdout + again.stderr, again
    assert zenctl("audit", "verify").returncode == 0

    # the core half: every audited string may carry lone surrogates; the chain still verifies
    state = open_state(tmp_path / "surrogates.db")
    audit.append(state, [Entry("agent\udcff", "event\udcfe", "message \udcff\ud800", "run\udcff",
                               {"name\udcff": ["value\udcfe"]})])
    assert audit.verify(state).ok
    (row,) = audit.query(state)
    assert row["message"] == "message \\xff\\ud800" and row["data"] == {"name\udcff": ["value\\xfe"]}


def test_11_process_and_directory_names_do_not_stop_the_health_check(zenctl, shared, intruder):
    """The suggestions name processes (a zombie's parent) and directories of a full mount: anyone's to choose."""
    parent = spawn(intruder, ["/usr/bin/python3", "-c", "import ctypes, os, time\n"
                              "if os.fork() == 0:\n    os._exit(0)\n"
                              "ctypes.CDLL(None).prctl(15, b'\\xff\\x1b]0;x\\x07', 0, 0, 0)\n"
                              "print('zombie', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    small = shared / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    try:
        assert parent.stdout.readline() == "zombie\n"
        (small / os.fsdecode(b"\xff")).mkdir()
        (small / os.fsdecode(b"\xff") / "big").write_bytes(os.urandom(3 << 20))
        cfg = zenctl.config(only_this_mount(small, disk_threshold=50, disk_warning=40, suggest_scan_seconds=1))
        code, out = zenctl.json("health", "check", "-c", str(cfg))
    finally:
        parent.kill()
        parent.wait()
        subprocess.run(["umount", "-l", str(small)], check=True)
    assert code == 2, out
    by_check = {f["check"]: f["message"] for f in out["findings"]}
    assert f"\\xff\\x1b]0;x\\x07 (pid {parent.pid}, 1)" in by_check["suggest:zombies"]
    assert f"{small}/\\xff 3.0 MiB" in by_check[f"suggest:space:{small}"]


def test_12_running_programs_mapped_files_and_working_directories_are_kept(zenctl, shared, intruder):
    root = shared / "tmp"
    program, mapped, work = root / "prog", root / "mapped", root / "work"
    shutil.copy("/usr/bin/sleep", program)
    mapped.write_bytes(b"m" * 4096)
    work.mkdir()
    for path in (program, mapped, work):
        os.chown(path, intruder.pw_uid, intruder.pw_gid)
    running = [spawn(intruder, [str(program), "60"]),  # no descriptor of prog stays open
               spawn(intruder, ["/usr/bin/python3", "-c", f"import mmap, time; f = open({str(mapped)!r}, 'rb'); "
                                "m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); f.close(); "
                                "print('mapped', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True),
               spawn(intruder, ["/usr/bin/sleep", "60"], cwd=str(work))]
    try:
        assert running[1].stdout.readline() == "mapped\n"
        old(program, mapped, work)
        code, out = clean(zenctl, root)
        assert code == 0, out
    finally:
        for process in running:
            process.kill()
            process.wait()
    assert program.exists() and mapped.exists() and work.is_dir()
    assert "kept: 3 open" in out["findings"][0]["message"], out["findings"]


def test_held_up_symlink_swaps_and_hard_links_never_reach_outside(zenctl, shared, intruder):
    precious = shared / "precious"  # root's, outside the root
    precious.mkdir()
    for i in range(50):
        (precious / f"p{i:02d}").write_text("keep")
        old(precious / f"p{i:02d}")
    (shared / "tmp" / "linked").hardlink_to(precious / "p00")  # a second name inside the root
    # the intruder keeps swapping a directory of old files with a symlink to root's directory
    code = f"""
import os, time
root, target = {str(shared / "tmp")!r}, {str(precious)!r}
os.mkdir(root + "/sw.d")
for i in range(50):
    open(f"{{root}}/sw.d/p{{i:02d}}", "w").close()
    os.utime(f"{{root}}/sw.d/p{{i:02d}}", ({OLD}, {OLD}))
os.symlink(target, root + "/sw.l")
print("ready", flush=True)
end = time.monotonic() + 20
while time.monotonic() < end:
    for a, b in (("sw.d", "sw"), ("sw", "sw.x"), ("sw.l", "sw"), ("sw", "sw.l"), ("sw.x", "sw.d")):
        try:
            os.rename(f"{{root}}/{{a}}", f"{{root}}/{{b}}")
        except OSError:
            pass
"""
    attack = spawn(intruder, ["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert attack.stdout.readline() == "ready\n"
        old(shared / "tmp" / "linked")
        for _ in range(5):
            clean(zenctl, shared / "tmp")
    finally:
        attack.kill()
        attack.wait()
    assert sorted(p.name for p in precious.iterdir()) == [f"p{i:02d}" for i in range(50)]
    assert (precious / "p00").read_text() == "keep" and not (shared / "tmp" / "linked").exists()
