"""tmp.clean and `zenctl maintain tmp` on real file trees with traps: symlinks out of the root, a directory swapped
for a symlink mid-run, files held open, FIFOs, sockets, device nodes, and a file system mounted inside the root."""

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from zenctl.housekeeping.tmpclean import Walker
from zenctl.housekeeping.config import TmpRoot

pytestmark = pytest.mark.integration
OLD = time.time() - 30 * 86400


def old(*paths: Path) -> None:
    for path in paths:
        os.utime(path, (OLD, OLD), follow_symlinks=False)


def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A root with old and new files, and an outside directory a symlink points at."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    old(outside / "precious", outside)
    for name in ("old1", "a/old2", "a/b/old3"):
        (root / name).write_text("x" * 100)
        old(root / name)
    (root / "new").write_text("fresh")
    (root / "escape").symlink_to(outside)
    (root / "a" / "escape-file").symlink_to(outside / "precious")
    old(root / "escape", root / "a" / "escape-file", root / "a" / "b", root / "a")
    return root, outside


def config(zenctl, root: Path, **extra) -> Path:
    entry = {"root": str(root), "age": "10d", "age_by": ["mtime"], **extra}
    return zenctl.config("agents:\n  system_health:\n    tmp: " + json.dumps([entry]) + "\n")


def test_maintain_tmp_previews_then_deletes_only_old_entries_inside_the_root(zenctl, tmp_path):
    root, outside = tree(tmp_path)
    cfg = config(zenctl, root)
    code, out = zenctl.json("maintain", "tmp", "-c", str(cfg), "--dry-run")
    assert code == 0
    (action,) = out["actions"]
    assert (action["kind"], action["status"]) == ("tmp.clean", "previewed")
    assert action["preview"].startswith("delete 5 file(s) and 2 empty dir(s), ") and str(root) in action["preview"]
    assert (root / "a" / "b" / "old3").exists()

    code, out = zenctl.json("maintain", "tmp", "-c", str(cfg))
    (action,) = out["actions"]
    assert action["status"] == "applied", action
    assert sorted(p.name for p in root.rglob("*")) == ["new"]
    assert (outside / "precious").read_text() == "keep me"  # symlinks removed, never followed
    audit = zenctl("audit", "--event", "action", "--json").stdout
    assert "tmp.clean" in audit and "deleted 5 file(s)" in audit
    assert zenctl("rollback", action["id"]).stderr.strip().endswith(
        "(tmp.clean) cannot be undone: deleted temporary files are not kept")


def test_excludes_open_files_fifos_and_sockets_are_kept(zenctl, tmp_path):
    root, _ = tree(tmp_path)
    (root / "keep.pid").write_text("1")
    held = root / "held.log"
    held.write_text("in use")
    os.mkfifo(root / "fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    old(root / "keep.pid", held, root / "fifo", root / "sock")
    with open(held) as handle:
        code, out = zenctl.json("maintain", "tmp", "-c", str(config(zenctl, root, exclude=["*.pid"])))
        assert handle.read() == "in use"
    server.close()
    (action,) = out["actions"]
    assert "kept: 1 open, 2 FIFO/socket/device" in action["message"]
    assert {p.name for p in root.iterdir()} == {"new", "keep.pid", "held.log", "fifo", "sock"}


def test_a_directory_swapped_for_a_symlink_before_it_is_opened_is_not_followed(tmp_path):
    root, outside = tree(tmp_path)
    (outside / "victim").write_text("x")
    old(outside / "victim")

    class Swapping(Walker):
        def _directory(self, parent, name, relative, st):
            if relative == "a":  # listed as a directory; now a symlink to outside
                os.rename(root / "a", tmp_path / "a-moved")
                os.symlink(outside, root / "a")
            return super()._directory(parent, name, relative, st)

    sweep = Swapping(TmpRoot(root=str(root), age=864000, age_by=["mtime"]), delete=True).run()
    assert (outside / "victim").exists() and (outside / "precious").exists()
    assert any("a: Too many levels of symbolic links" in e or "a: Not a directory" in e for e in sweep.errors), \
        sweep.errors


def test_a_directory_swapped_after_it_was_opened_is_left_alone_where_it_went_and_not_followed(tmp_path):
    root, outside = tree(tmp_path)
    (outside / "old2").write_text("same name as a/old2")
    old(outside / "old2")

    class Swapping(Walker):
        def _list(self, fd):
            if self.stack and self.stack[-1].relative == "":  # a was just opened; it is renamed away, a symlink
                os.rename(root / "a", tmp_path / "a-moved")  # takes its place
                os.symlink(outside, root / "a")
            return super()._list(fd)

    sweep = Swapping(TmpRoot(root=str(root), age=864000, age_by=["mtime"]), delete=True).run()
    assert (outside / "old2").read_text() == "same name as a/old2"
    assert (tmp_path / "a-moved" / "old2").exists()  # out of the root now: nothing deleted in it
    assert "a: moved out of the root while cleaning; nothing more deleted in it" in sweep.errors, sweep.errors


def test_device_nodes_and_other_file_systems_are_left_alone(zenctl, tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mknod and mount need root; CI runs as root")
        pytest.skip("mknod and mount need root")
    root, _ = tree(tmp_path)
    os.mknod(root / "null", 0o600 | 0o020000, os.makedev(1, 3))
    mounted = root / "mnt"
    mounted.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mounted)], check=True)
    try:
        (mounted / "other-fs").write_text("x")
        old(mounted / "other-fs", mounted, root / "null")
        code, out = zenctl.json("maintain", "tmp", "-c", str(config(zenctl, root)))
        assert (mounted / "other-fs").exists() and (root / "null").exists()
        (action,) = out["actions"]
        assert "1 FIFO/socket/device, 1 on another file system" in action["message"]
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_unknown_task_and_missing_root(zenctl, tmp_path):
    done = zenctl("maintain", "everything")
    assert done.returncode == 3
    assert done.stderr == "zenctl: unknown maintenance task 'everything' (known: tmp, logs, cache, db)\n"
    code, out = zenctl.json("maintain", "tmp", "-c", str(config(zenctl, tmp_path / "absent")))
    assert code == 3 and out["findings"][0]["status"] == "unknown"
    assert out["findings"][0]["message"] == f"{tmp_path}/absent: No such file or directory"


def test_a_walk_over_its_time_budget_stops_and_says_so(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for i in range(600):
        (root / f"f{i}").touch()
        old(root / f"f{i}")
    sweep = Walker(TmpRoot(root=str(root), age=864000, age_by=["mtime"]), delete=True, seconds=0).run()
    assert 0 < sweep.files < 600 and len(list(root.iterdir())) == 600 - sweep.files
    assert "(time limit), the rest is left for the next run" in sweep.summary("deleted")
