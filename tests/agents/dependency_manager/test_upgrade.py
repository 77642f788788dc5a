"""Upgrades for real, through the installed zenctl: the agent scans a real venv against the local index and the
offline advisories, the runtime gates by the seed's modes, the kinds prove, apply, verify, and `zenctl rollback`
puts the exact previous freeze back."""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.agents.dependency_manager.pyindex import Dist, PyIndex, build_osv_dir, demo_dists, make_venv
from zenctl.agents.dependency_manager import prove

pytestmark = pytest.mark.integration


@pytest.fixture
def index(tmp_path):
    with PyIndex(tmp_path / "index", demo_dists()) as served:
        yield served


def freeze(python: Path) -> dict[str, str]:
    return prove.read_freeze(str(python)).versions()


def setup(zenctl, index, pins, extra: str = "", test: str = '["python", "-c", "import demo"]'):
    """A venv holding `pins` and a config whose one target is it; (venv python, config path)."""
    python = make_venv(zenctl.tmp / "venv", pins, index.url, with_pip=False)
    advisories = build_osv_dir(zenctl.tmp / "advisories")
    config = zenctl.config(f"""\
agents:
  dependency_manager:
    advisories: {advisories}
    advisory_service: "off"
{extra}    targets:
      web:
        type: python
        venv: {zenctl.tmp / 'venv'}
        index_url: {index.url}
        test:
          command: {test}
          timeout: 60
""")
    return python, config


def scan(zenctl, config, *args) -> tuple[int, dict]:
    return zenctl.json("deps", "scan", "-c", str(config), *args, timeout=300)


def actions(run: dict) -> dict[tuple[str, str], dict]:
    return {(a["kind"], a["target"]): a for a in run["actions"]}


def test_the_security_patch_is_applied_on_its_own_the_minor_notified_and_rollback_restores_the_freeze(zenctl, index):
    python, config = setup(zenctl, index, ["demo==1.0.0", "broken==1.0.0"])
    original = freeze(python)

    code, preview = scan(zenctl, config, "--dry-run")
    fix = actions(preview)[("deps.upgrade_security", "web:demo")]
    assert fix["status"] == "previewed" and "demo 1.0.0 -> 1.0.1" in fix["preview"]
    assert "pip check" in fix["preview"] and "test `python -c 'import demo'`" in fix["preview"]
    assert freeze(python) == original

    code, run = scan(zenctl, config)
    by = actions(run)
    fix = by[("deps.upgrade_security", "web:demo")]
    assert (fix["mode"], fix["status"]) == ("auto", "applied"), fix["message"]
    assert "proved in" in fix["message"] and "test" in fix["message"]
    assert by[("deps.upgrade_minor", "web:broken")]["status"] == "notified"
    assert by[("deps.upgrade_major", "web:demo")]["status"] == "skipped"  # major_updates: disabled
    assert freeze(python) == {**original, "demo": "1.0.1"}
    store = prove.store_for(zenctl.db)
    assert prove.proofs_for(store, "demo")[0]["ok"]
    saved = list((store / "freezes").iterdir())
    assert len(saved) == 1 and "demo==1.0.0" in saved[0].read_text()

    code, undone = zenctl.json("rollback", fix["id"], "-c", str(config))
    assert code == 0, undone
    step = undone["actions"][0]
    assert (step["kind"], step["status"]) == ("deps.restore", "applied"), step["message"]
    assert freeze(python) == original  # exactly the previous freeze

    code, redone = zenctl.json("rollback", step["id"], "-c", str(config))  # a rollback can be rolled back too
    assert code == 0 and freeze(python) == {**original, "demo": "1.0.1"}


def test_rollback_refuses_a_package_that_changed_since_and_says_how_to_restore_it_by_hand(zenctl, index):
    python, config = setup(zenctl, index, ["demo==1.0.0"])
    _, run = scan(zenctl, config)
    fix = actions(run)[("deps.upgrade_security", "web:demo")]
    assert fix["status"] == "applied", fix["message"]
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "--index-url", index.url, "--no-cache",
                    "demo==1.1.0"], check=True, capture_output=True)
    code, undone = zenctl.json("rollback", fix["id"], "-c", str(config))
    assert code == 2
    why = undone["findings"][0]["message"]
    assert "demo is 1.1.0 now, not 1.0.1" in why and "pip install --no-deps demo==1.0.0" in why
    assert freeze(python)["demo"] == "1.1.0"


def test_the_major_waits_for_approval_then_applies(zenctl, index):
    python, config = setup(zenctl, index, ["demo==1.0.1"], "    major_updates: approve\n")
    _, run = scan(zenctl, config)
    major = actions(run)[("deps.upgrade_major", "web:demo")]
    assert major["status"] == "awaiting_approval" and major["approval_id"]
    assert actions(run)[("deps.upgrade_minor", "web:demo")]["status"] == "notified"
    assert freeze(python)["demo"] == "1.0.1"

    code, approved = zenctl.json("approve", major["approval_id"], "--run", "-c", str(config), timeout=300)
    assert approved["approval"]["status"] == "executed", approved
    assert freeze(python)["demo"] == "2.0.0"


def test_a_broken_candidate_fails_its_proof_is_not_applied_and_not_tried_again_until_a_newer_version(zenctl, index):
    python, config = setup(zenctl, index, ["broken==1.0.0"], "    minor_updates: auto\n    cache_ttl: 0\n",
                           test='["python", "-c", "pass"]')
    _, run = scan(zenctl, config)
    minor = actions(run)[("deps.upgrade_minor", "web:broken")]
    assert minor["status"] == "failed"
    assert "proof failed at import" in minor["message"] and "broken 1.1.0 fails on import" in minor["message"]
    assert freeze(python)["broken"] == "1.0.0"

    _, again = scan(zenctl, config)
    assert ("deps.upgrade_minor", "web:broken") not in actions(again)  # remembered
    finding = next(f for f in again["findings"] if f["check"] == "deps:web:broken")
    assert finding["evidence"]["proof"]["ok"] is False and "fails on import" in finding["evidence"]["proof"]["tail"]

    index.add(Dist("broken", "1.2.0", body="__version__ = '1.2.0'\n"))
    _, newer = scan(zenctl, config)
    fixed = actions(newer).get(("deps.upgrade_minor", "web:broken"))
    assert fixed and fixed["status"] == "applied", newer["actions"]
    assert freeze(python)["broken"] == "1.2.0"


def test_the_index_going_down_mid_run_changes_nothing(zenctl, index):
    """The index serves the scan and the proof, then goes down while the proof's test runs (so before the
    upgrade in place): the action fails and the target keeps its exact freeze."""
    flag, down = zenctl.tmp / "proof-running", zenctl.tmp / "index-down"
    test = json.dumps(["python", "-c", f"import os, time; open({str(flag)!r}, 'w').close()\n"
                                       f"while not os.path.exists({str(down)!r}): time.sleep(0.05)"])
    python, config = setup(zenctl, index, ["demo==1.0.0", "broken==1.0.0"], test=test)
    original = freeze(python)

    def take_it_down():
        for _ in range(3000):
            if flag.exists():
                index.stop()
                down.touch()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=take_it_down, daemon=True)
    watcher.start()
    _, run = scan(zenctl, config)
    watcher.join(5)
    fix = actions(run)[("deps.upgrade_security", "web:demo")]
    assert down.exists() and fix["status"] == "failed", fix
    assert "the install failed" in fix["message"]
    assert freeze(python) == original


def test_an_index_that_is_down_before_the_proof_changes_nothing(zenctl, index):
    python, config = setup(zenctl, index, ["demo==1.0.0"])
    original = freeze(python)
    _, run = scan(zenctl, config, "--dry-run")  # the scan's answers are cached; the kinds must fetch again
    index.mode = "500"
    _, run = scan(zenctl, config)
    fix = actions(run)[("deps.upgrade_security", "web:demo")]
    assert fix["status"] == "failed" and "proof failed" in fix["message"], fix
    assert freeze(python) == original


def test_the_pip_installer_is_used_when_uv_is_not_found(zenctl, index):
    python = make_venv(zenctl.tmp / "venv", ["demo==1.0.0"], index.url, with_pip=True)
    advisories = build_osv_dir(zenctl.tmp / "advisories")
    config = zenctl.config(f"""\
agents:
  dependency_manager:
    advisories: {advisories}
    advisory_service: "off"
    targets:
      web:
        type: python
        python: {python}
        index_url: {index.url}
""")
    original = freeze(python)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not (Path(p) / "uv").exists())
    env = {"PATH": path}
    done = zenctl("deps", "scan", "-c", str(config), "--json", env=env, timeout=300)
    fix = actions(json.loads(done.stdout))[("deps.upgrade_security", "web:demo")]
    assert fix["status"] == "applied", fix["message"]
    assert freeze(python) == {**original, "demo": "1.0.1"}
    assert prove.proofs_for(prove.store_for(zenctl.db), "demo")[0]["installer"] == "pip"
    done = zenctl("rollback", fix["id"], "-c", str(config), "--json", env=env, timeout=300)
    assert done.returncode == 0, done.stdout
    assert freeze(python) == original


def test_rollback_removes_what_the_upgrade_added(zenctl, index):
    index.add(Dist("grows", "1.0.0", body="__version__ = '1.0.0'\n"))
    index.add(Dist("grows", "1.0.1", requires=["child>=1.0"], body="import child\n"))
    python, config = setup(zenctl, index, ["grows==1.0.0"], "    minor_updates: auto\n", test='["python", "-c", "pass"]')
    original = freeze(python)
    _, run = scan(zenctl, config)
    patch = actions(run)[("deps.upgrade_patch", "web:grows")]
    assert patch["status"] == "applied", patch["message"]
    assert freeze(python) == {**original, "grows": "1.0.1", "child": "2.0.0"}  # a new dependency came with it
    code, undone = zenctl.json("rollback", patch["id"], "-c", str(config))
    assert code == 0 and "child 2.0.0 -> (removed)" in undone["actions"][0]["message"], undone
    assert freeze(python) == original


def test_rollback_works_from_the_wheel_cache_when_the_index_is_down(zenctl, index):
    python, config = setup(zenctl, index, ["demo==1.0.0", "broken==1.0.0"])
    original = freeze(python)
    _, run = scan(zenctl, config)
    fix = actions(run)[("deps.upgrade_security", "web:demo")]
    assert fix["status"] == "applied", fix["message"]
    index.stop()
    code, undone = zenctl.json("rollback", fix["id"], "-c", str(config))
    assert code == 0, [a["message"] for a in undone["actions"]] or undone["findings"]
    assert freeze(python) == original


@pytest.mark.parametrize("change", [{"name": "--index-url=http://evil/", "from": "1.0.0", "to": "1.0.1"},
                                    {"name": "demo", "from": "1.0.0", "to": "1.0.1 --pre"},
                                    {"name": "demo @ file:///etc", "from": "1.0.0", "to": "1.0.1"}, "demo==1.0.1"])
def test_hostile_names_and_versions_fail_the_action_before_anything_runs(tmp_path, change):
    from zenctl.core.actions import ActionFailed, Proposal, get_kind

    python = tmp_path / "never-run"
    proposal = Proposal("deps.upgrade_security", "web:demo", {"target": "web", "python": str(python),
                                                              "changes": [change]}, "test")
    kind = get_kind("deps.upgrade_security")
    assert ": refused: " in kind.preview(proposal)  # the dry-run says so; a preview never raises
    with pytest.raises(ActionFailed, match="not a valid|must be a mapping"):
        kind.apply(proposal)
    assert "nothing changed" in str(pytest.raises(ActionFailed, kind.apply, proposal).value)


def test_an_emergency_stop_during_the_install_in_place_leaves_the_freeze_and_a_record(zenctl, index):
    """SIGTERM (zenctl stop --emergency) while uv waits on the index for the upgrade in place: the installer is
    killed with its group, whatever moved is put back, and the action is recorded as interrupted."""
    import signal
    import sys

    flag, go = zenctl.tmp / "proof-running", zenctl.tmp / "go"
    test = json.dumps(["python", "-c", f"import os, time; open({str(flag)!r}, 'w').close()\n"
                                       f"while not os.path.exists({str(go)!r}): time.sleep(0.05)"])
    python, config = setup(zenctl, index, ["demo==1.0.0", "broken==1.0.0"], test=test)
    original = freeze(python)
    waiting = threading.Event()
    answer = index._answer

    def hang(handler):  # the index stops answering once the proof is over
        waiting.set()
        time.sleep(30)
        answer(handler)

    process = subprocess.Popen([str(Path(sys.executable).with_name("zenctl")), "deps", "scan", "-c", str(config),
                                "--json"], cwd=zenctl.tmp, env=zenctl.env, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if flag.exists():
                break
            time.sleep(0.05)
        index._answer = hang
        go.touch()
        assert waiting.wait(120), "the upgrade in place never asked the index"
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
    finally:
        index._answer = answer
        if process.poll() is None:
            process.kill()
    import sqlite3

    assert "terminated by SIGTERM" in json.loads(out)["error"]
    with sqlite3.connect(zenctl.db) as conn:
        status, message = conn.execute("SELECT status, message FROM actions WHERE kind = 'deps.upgrade_security'"
                                       ).fetchone()
    assert status == "failed" and message.startswith("interrupted"), message
    assert freeze(python) == original


def test_index_credentials_come_from_the_context_and_are_never_stored(tmp_path, index):
    from zenctl.core.actions import Proposal, get_kind

    python = make_venv(tmp_path / "venv", ["demo==1.0.0"], index.url, with_pip=False)
    secret = index.url.replace("http://", "http://deploy:s3cret@")
    store = prove.store_for(tmp_path / "zenctl.db")
    params = {"target": "web", "python": str(python), "index_url": "http://127.0.0.1:9/simple/",  # as stored: no
              "store": str(store), "changes": [{"name": "demo", "from": "1.0.0", "to": "1.0.1"}]}  # credentials
    proposal = Proposal("deps.upgrade_security", "web:demo", params, "test", context={"index_url": secret})
    kind = get_kind("deps.upgrade_security")
    assert "s3cret" not in kind.preview(proposal)
    applied = kind.apply(proposal)  # the index of the context (the stored one would refuse connections)
    assert kind.verify(proposal) is None and freeze(python)["demo"] == "1.0.1"
    written = json.dumps(applied.before) + applied.message + "".join(
        p.read_text() for p in store.rglob("*") if p.is_file() and p.suffix in (".json", ".txt"))
    assert "s3cret" not in written


def test_a_failed_verification_in_place_puts_the_previous_versions_back(zenctl, index):
    """A release that imports in the proof's copy but not on the target itself (here: it looks at where it runs;
    on a host: a missing system library, a config file): verification fails, the freeze goes back at once."""
    index.add(Dist("picky", "1.0.0", body="__version__ = '1.0.0'\n"))
    index.add(Dist("picky", "1.0.1", requires=["child>=1.0"], body=(
        "import sys\nif 'zenctl-proof-' not in sys.prefix:\n    raise ImportError('picky 1.0.1 needs what only the "
        "copy has')\n")))
    python, config = setup(zenctl, index, ["picky==1.0.0"], "    minor_updates: auto\n", test='["python", "-c", "pass"]')
    original = freeze(python)
    _, run = scan(zenctl, config)
    patch = actions(run)[("deps.upgrade_patch", "web:picky")]
    assert patch["status"] == "failed", patch
    assert patch["message"].startswith("verification failed: import picky (picky): ImportError: picky 1.0.1 needs")
    assert patch["message"].endswith("put the previous versions back")
    assert freeze(python) == original  # picky back to 1.0.0, the child it brought removed


def test_a_group_is_proven_and_applied_as_one(zenctl, index):
    python, config = setup(zenctl, index, ["demo==1.0.1", "broken==1.0.0", "child==1.0.2"],
                           "    minor_updates: auto\n    groups:\n      libs: [demo, broken]\n      kids: [child]\n",
                           test='["python", "-c", "pass"]')
    original = freeze(python)
    _, run = scan(zenctl, config)
    libs = actions(run)[("deps.upgrade_minor", "web:group:libs")]
    assert libs["status"] == "failed" and "broken 1.1.0 fails on import" in libs["message"], libs
    assert freeze(python)["demo"] == original["demo"]  # all or nothing: demo did not move without broken
    kids = actions(run)[("deps.upgrade_minor", "web:group:kids")]
    assert kids["status"] == "applied", kids
    assert freeze(python) == {**original, "child": "1.1.0"}
