"""Snapshots and rollback through the installed zenctl, on real files."""

import os
import stat

import pytest

from tests.core.test_governance import paths_config, service_config

pytestmark = pytest.mark.integration


def test_rollback_one_action_restores_byte_for_byte(zenctl, tmp_path):
    target = tmp_path / "secret.bin"
    content = bytes(range(256)) * 1000
    target.write_bytes(content)
    target.chmod(0o644)
    config = zenctl.config(paths_config(f"      - path: {target}\n        ensure: file\n        mode: \"0600\"\n"))
    _, run = zenctl.json("health", "check", "-c", str(config))
    action = run["actions"][0]
    assert action["status"] == "applied" and stat.S_IMODE(target.stat().st_mode) == 0o600

    code, preview = zenctl.json("rollback", action["id"], "--dry-run")
    assert code == 0 and preview["actions"][0]["status"] == "previewed"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, "dry-run changes nothing"

    code, undone = zenctl.json("rollback", action["id"])
    assert code == 0 and undone["actions"][0]["kind"] == "snapshot.restore"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_bytes() == content
    again = zenctl("rollback", action["id"])
    assert again.returncode == 3 and "already rolled back" in again.stderr
    # a rollback is an action too: it can be rolled back
    code, redo = zenctl.json("rollback", undone["actions"][0]["id"])
    assert code == 0 and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_rollback_refuses_a_path_changed_since_unless_forced(zenctl, tmp_path):
    target = tmp_path / "data"
    target.mkdir(mode=0o700)
    config = zenctl.config(paths_config(f"      - path: {target}\n        mode: \"0750\"\n"))
    action = zenctl.json("health", "check", "-c", str(config))[1]["actions"][0]
    target.chmod(0o755)  # someone changed it after zenctl did
    refused = zenctl("rollback", action["id"])
    assert refused.returncode == 2 and "mode changed since (0755 now, 0750 after the action)" in refused.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    forced = zenctl("rollback", action["id"], "--force")
    assert forced.returncode == 0 and stat.S_IMODE(target.stat().st_mode) == 0o700


def test_rollback_since_undoes_everything_newest_first(zenctl, tmp_path):
    made = tmp_path / "made" / "deep"
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    config = zenctl.config(paths_config(f"      - path: {made}\n        mode: \"0750\"\n",
                                        f"      - path: {other}\n        mode: \"0711\"\n"))
    _, run = zenctl.json("health", "check", "-c", str(config))
    assert made.is_dir() and stat.S_IMODE(other.stat().st_mode) == 0o711
    code, preview = zenctl.json("rollback", "--since", "1h", "--dry-run")
    assert code == 0 and len(preview["actions"]) == 2 and made.is_dir()
    code, undone = zenctl.json("rollback", "--since", "1h")
    assert code == 0, undone
    assert [a["params"]["undo"] for a in undone["actions"]] == [a["id"] for a in reversed(run["actions"])]
    assert not made.exists() and not made.parent.exists(), "created directories and parents removed"
    assert stat.S_IMODE(other.stat().st_mode) == 0o700
    assert zenctl.json("audit", "--agent", "rollback", "--event", "action.applied")[1]["entries"]


def test_irreversible_actions_say_so(zenctl):
    config = zenctl.config(service_config("exit 2", restart="true"))
    action = zenctl.json("health", "check", "-c", str(config))[1]["actions"][0]
    refused = zenctl("rollback", action["id"])
    assert refused.returncode == 3
    assert refused.stderr.strip() == (f"zenctl: action {action['id']} (service.restart) cannot be undone: "
                                      "a restart cannot be undone")
    assert zenctl("rollback").returncode == 3


def test_snapshot_store_is_content_addressed_and_private(zenctl, tmp_path):
    files = [tmp_path / f"f{n}" for n in range(3)]
    for f in files:
        f.write_text("same bytes\n")
        f.chmod(0o644)
    entries = "".join(f"      - path: {f}\n        ensure: file\n        mode: \"0600\"\n" for f in files)
    zenctl("health", "check", "-c", str(zenctl.config(paths_config(entries))))
    store = zenctl.db.parent / "zenctl.db.snapshots"
    blobs = [p for p in store.rglob("*") if p.is_file()]
    assert len(blobs) == 1, "three snapshots of the same bytes are stored once"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700
