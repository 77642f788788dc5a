"""Housekeeping when a mount is really near full (a small tmpfs mounted by the test), cache.prune, maintain db,
and the notify-only suggestions."""

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import CALM

pytestmark = pytest.mark.integration
OLD = time.time() - 30 * 86400
MB = 1 << 20


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} needs root; CI runs as root")
        pytest.skip(f"{what} needs root")


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs with at most 200 inodes, mounted for the test."""
    need_root("mounting a tmpfs")
    mounted = tmp_path / "mnt"
    mounted.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=200", "tmpfs", str(mounted)], check=True)
    try:
        yield mounted
    finally:
        subprocess.run(["umount", "-l", str(mounted)], check=True)


def only_this_mount(mounted: Path, **thresholds) -> str:
    """Config judging the test's mount alone (other mounts are ignored) with the given thresholds."""
    others = [p.mountpoint for p in psutil.disk_partitions(all=True) if p.mountpoint != str(mounted)]
    lines = [line for line in CALM.splitlines() if line.strip().split(":")[0] not in thresholds]
    lines += [f"    ignore_mounts: {json.dumps(others)}"] + [f"    {key}: {value}" for key, value in thresholds.items()]
    return "\n".join(lines) + "\n"


def fill(path: Path, size: int, old: bool = True, text: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text:
        line = b"2026-11-24T03:00:00Z app[123]: INFO request served in 12 ms\n"
        path.write_bytes(line * (size // len(line)))
    else:
        path.write_bytes(os.urandom(size))
    if old:
        os.utime(path, (OLD, OLD))


def housekeeping(mounted: Path) -> str:
    entries = {
        "tmp": [{"root": str(mounted / "tmp"), "age": "10d", "age_by": ["mtime"]}],
        "logs": [{"name": "app", "paths": [str(mounted / "log" / "*.log")], "keep": 3}],
        "cache": [{"path": str(mounted / "cache"), "max_size": "100M"}],
    }
    return "".join(f"    {key}: {json.dumps(value)}\n" for key, value in entries.items())


def layout(mounted: Path) -> None:
    """About 3.2 MiB used of 4: old temporary files, a log with an uncompressed older generation, a cache."""
    for i in range(4):
        fill(mounted / "tmp" / f"old{i}", 150 * 1024)
    fill(mounted / "log" / "app.log", 900 * 1024, old=False, text=True)
    fill(mounted / "log" / "app.log.1", 900 * 1024, text=True)
    for i in range(8):
        fill(mounted / "cache" / f"entry{i}", 100 * 1024)
        os.utime(mounted / "cache" / f"entry{i}", (OLD + i * 3600, OLD + i * 3600))  # entry0 least recently used


def used_percent(mounted: Path) -> float:
    vfs = os.statvfs(mounted)
    used = vfs.f_blocks - vfs.f_bfree
    return 100 * used / (used + vfs.f_bavail)


def test_full_mount_runs_housekeeping_in_order_until_under(zenctl, small_fs):
    layout(small_fs)
    cfg = zenctl.config(only_this_mount(small_fs, disk_threshold=60, disk_warning=50, suggest_scan_seconds=0)
                        + housekeeping(small_fs))
    code, out = zenctl.json("health", "check", "-c", str(cfg), "--dry-run")
    disk = next(f for f in out["findings"] if f["check"] == f"disk:{small_fs}")
    assert disk["status"] == "critical" and "housekeeping frees about" in disk["message"]
    kinds = [(a["kind"], a["status"]) for a in out["actions"]]
    assert kinds == [("tmp.clean", "previewed"), ("logs.rotate", "previewed")], out["actions"]
    assert "608.0 KiB" in out["actions"][0]["preview"] and "frees about" in out["actions"][1]["preview"]
    assert (small_fs / "tmp" / "old0").exists()

    code, out = zenctl.json("health", "check", "-c", str(cfg))
    assert [(a["kind"], a["status"]) for a in out["actions"]] == [("tmp.clean", "applied"),
                                                                  ("logs.rotate", "applied")], out["actions"]
    assert used_percent(small_fs) <= 60
    assert sorted(p.name for p in (small_fs / "log").iterdir()) == ["app.log", "app.log.1", "app.log.2.gz"]
    assert len(list((small_fs / "cache").iterdir())) == 8  # not needed: left alone
    disk = next(f for f in out["findings"] if f["check"] == f"disk:{small_fs}")
    assert disk["status"] == "ok" and "repaired by" in disk["message"]


def test_cache_is_pruned_least_recently_used_first_when_the_rest_is_not_enough(zenctl, small_fs):
    layout(small_fs)
    cfg = zenctl.config(only_this_mount(small_fs, disk_threshold=40, disk_warning=30, suggest_scan_seconds=0)
                        + housekeeping(small_fs))
    code, out = zenctl.json("health", "check", "-c", str(cfg))
    assert [a["kind"] for a in out["actions"]] == ["tmp.clean", "logs.rotate", "cache.prune"], out["actions"]
    assert all(a["status"] == "applied" for a in out["actions"]), out["actions"]
    left = sorted(p.name for p in (small_fs / "cache").iterdir())
    assert left and left == [f"entry{i}" for i in range(8 - len(left), 8)]  # the least recently used went
    assert used_percent(small_fs) <= 40


def test_mount_that_housekeeping_cannot_save_fails_the_repair(zenctl, small_fs):
    fill(small_fs / "data" / "blob", 3 * MB, old=False)
    fill(small_fs / "tmp" / "old", 100 * 1024)
    cfg = zenctl.config(only_this_mount(small_fs, disk_threshold=50, disk_warning=40, suggest_scan_seconds=1)
                        + "    tmp: " + json.dumps([{"root": str(small_fs / "tmp"), "age_by": ["mtime"]}]) + "\n")
    code, out = zenctl.json("health", "check", "-c", str(cfg))
    assert code == 2
    (action,) = out["actions"]
    assert action["kind"] == "tmp.clean" and action["status"] == "failed"
    assert "still needs" in action["message"] and "to be under 50%" in action["message"]
    space = next(f for f in out["findings"] if f["check"] == f"suggest:space:{small_fs}")
    assert space["status"] == "ok" and f"{small_fs}/data" in space["message"]


def test_inode_exhaustion_suggests_the_crowded_directory(zenctl, small_fs):
    crowded = small_fs / "spool"
    crowded.mkdir()
    for i in range(180):
        (crowded / f"msg{i}").touch()
    cfg = zenctl.config(only_this_mount(small_fs, inode_threshold=80, inode_warning=70))
    code, out = zenctl.json("health", "check", "-c", str(cfg))
    assert next(f for f in out["findings"] if f["check"] == f"inode:{small_fs}")["status"] == "critical"
    space = next(f for f in out["findings"] if f["check"] == f"suggest:space:{small_fs}")
    assert space["evidence"]["most_entries"][0] == {"path": str(crowded), "entries": 180}


def test_maintain_cache_keeps_size_and_age_caps(zenctl, tmp_path):
    cache = tmp_path / "cache"
    for i in range(10):
        fill(cache / "sub" / f"e{i}", 10 * 1024, old=False)
        stamp = time.time() - (10 - i) * 3600
        os.utime(cache / "sub" / f"e{i}", (stamp, stamp))
    os.utime(cache / "sub" / "e9", (OLD, OLD))  # not used for 30 days: goes by max_age
    (cache / "link").symlink_to(tmp_path)  # never followed
    entry = {"path": str(cache), "max_size": "50k", "max_age": "7d"}
    cfg = zenctl.config("agents:\n  system_health:\n    cache: " + json.dumps([entry]) + "\n")
    code, out = zenctl.json("maintain", "cache", "-c", str(cfg), "--dry-run")
    (action,) = out["actions"]
    assert action["status"] == "previewed" and "least recently used" in action["preview"]
    code, out = zenctl.json("maintain", "cache", "-c", str(cfg))
    assert out["actions"][0]["status"] == "applied"
    left = sorted(p.name for p in (cache / "sub").iterdir())
    assert left == ["e5", "e6", "e7", "e8"], left  # e9 by age, then e0..e4 oldest first: 40 KiB stays (<= 50k)
    assert (cache / "link").is_symlink() and (tmp_path / "cache").exists()
    code, out = zenctl.json("maintain", "cache", "-c", str(cfg))
    assert out["actions"] == [] and "within its caps" in out["findings"][0]["message"]


def test_maintain_db_resets_sessions_idle_in_transaction(zenctl, pg_dsn):
    psycopg = pytest.importorskip("psycopg")
    role = "zenctl_maint_app"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN")
    dsn = psycopg.conninfo.make_conninfo(pg_dsn, user=role)
    idle = psycopg.connect(dsn)
    try:
        idle.execute("SELECT 1")  # a transaction left open
        time.sleep(1.5)
        service = {"name": "pg", "type": "postgres", "dsn": pg_dsn, "reset_idle_after": 1, "reset_roles": [role]}
        cfg = zenctl.config("agents:\n  system_health:\n    services: " + json.dumps([service]) + "\n")
        code, out = zenctl.json("maintain", "db", "-c", str(cfg))
        (action,) = out["actions"]
        assert action["kind"] == "db.reset_connections" and action["status"] == "applied", action
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
    finally:
        idle.close()
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_suggestions_name_zombies_and_top_processes(zenctl):
    zombie = subprocess.Popen(["true"])  # never waited for until the end: a zombie child of this process
    try:
        time.sleep(0.3)
        cfg = zenctl.config(CALM.replace("memory_threshold: 100", "memory_threshold: 0")
                            .replace("memory_warning: 100", "memory_warning: 0"))
        code, out = zenctl.json("health", "check", "-c", str(cfg))
        by_check = {f["check"]: f for f in out["findings"]}
        zombies = by_check["suggest:zombies"]
        assert zombies["status"] == "ok" and f"pid {os.getpid()}" in zombies["message"]
        assert any(z["pid"] == zombie.pid for z in zombies["evidence"]["zombies"])
        top = by_check["suggest:top"]
        assert len(top["evidence"]["by_rss"]) == 5 and top["message"].startswith("suggestion: top by CPU")
    finally:
        zombie.wait()
