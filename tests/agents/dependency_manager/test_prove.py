"""The proof of a candidate, for real: throwaway venvs rebuilt from a real target's freeze, uv and pip against the
local index (tests/agents/dependency_manager/pyindex.py), the import check, a test command that hangs, the store
that keeps wheels and proof records."""

import os
import stat
import time
from pathlib import Path

import pytest

from tests.agents.dependency_manager.pyindex import PyIndex, demo_dists, make_venv
from zenctl.agents.dependency_manager import prove
from zenctl.agents.dependency_manager.prove import ProofError, Target, TestCommand

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with PyIndex(tmp_path_factory.mktemp("index"), demo_dists()) as served:
        yield served


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The proofs' temp dirs land here, so the test can see they are private and removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def target(tmp_path, index, pins=("demo==1.0.0", "broken==1.0.0"), **kw) -> Target:
    python = make_venv(tmp_path / "venv", list(pins), index.url, with_pip=False)
    return Target("web", str(python), index.url, store=prove.store_for(tmp_path / "zenctl.db"), **kw)


def changes(*items: tuple[str, str, str]) -> list[prove.Change]:
    return prove.parse_changes([{"name": n, "from": a, "to": b} for n, a, b in items])


def test_a_good_candidate_passes_every_step_and_leaves_nothing_behind(tmp_path, index, private_tmp):
    t = target(tmp_path, index, test=TestCommand(["python", "-c", "import demo; assert demo.__version__ == '1.0.1'"],
                                                  None, 60))
    before = prove.read_freeze(t.python).versions()
    proof = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    assert proof.ok, proof.reason
    assert [s.name for s in proof.steps] == ["venv", "rebuild", "install", "pip check", "imports", "test"]
    assert "imported demo" in proof.steps[4].detail
    assert proof.interpreter == prove.read_freeze(t.python).version
    assert prove.read_freeze(t.python).versions() == before  # the target itself never moved
    assert list(private_tmp.iterdir()) == []  # the throwaway venv is gone
    record = prove.proof_record(t.store, "web", changes(("demo", "1.0.0", "1.0.1")))
    assert record["ok"] and record["freeze_sha256"] == prove.read_freeze(t.python).digest()
    assert prove.proofs_for(t.store, "DEMO")[0]["changes"] == [{"name": "demo", "from": "1.0.0", "to": "1.0.1"}]
    for sub in ("", "cache", "proofs", "freezes"):  # the store: ours alone
        st = os.stat(t.store / sub)
        assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700


def test_a_candidate_whose_import_fails_is_reported_with_its_output_and_remembered(tmp_path, index):
    t = target(tmp_path, index)
    proof = prove.prove(t, changes(("broken", "1.0.0", "1.1.0")))
    assert not proof.ok and proof.failed_step == "imports"
    assert "broken 1.1.0 fails on import, on purpose" in proof.reason
    failed = prove.failed_proof(t.store, "web", "broken", "1.1.0")
    assert failed and failed["failed_step"] == "imports" and not failed["ok"]
    assert prove.failed_proof(t.store, "web", "broken", "1.2.0") is None  # a newer version is tried again
    assert prove.failed_proof(t.store, "other", "broken", "1.1.0") is None


def test_a_failing_test_command_fails_the_proof_with_the_tail_of_its_output(tmp_path, index):
    t = target(tmp_path, index, test=TestCommand(
        ["python", "-c", "import sys, demo; print('x' * 10000); print('demo is', demo.__version__); sys.exit(3)"],
        str(tmp_path), 60))
    proof = prove.prove(t, changes(("demo", "1.0.0", "2.0.0")))
    assert not proof.ok and proof.failed_step == "test"
    assert proof.tail.endswith("demo is 2.0.0\n") and len(proof.tail) <= prove.TAIL + 100
    assert "exited 3" in proof.reason


def test_a_test_command_that_hangs_is_killed_with_its_process_group(tmp_path, index):
    marker = tmp_path / "child.pid"
    hang = f"import os, subprocess, time; p = subprocess.Popen(['sleep', '300']); open({str(marker)!r}, 'w')" \
           ".write(str(p.pid)); time.sleep(300)"
    t = target(tmp_path, index, test=TestCommand(["python", "-c", hang], None, 3))
    started = time.monotonic()
    proof = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    assert time.monotonic() - started < 60
    assert not proof.ok and proof.failed_step == "test" and "timed out" in proof.reason
    child = int(marker.read_text())
    for _ in range(50):  # the grandchild went with the group
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the test command's child {child} survived the kill")


def test_the_whole_proof_has_a_deadline(tmp_path, index):
    t = target(tmp_path, index, timeout=2.5, test=TestCommand(["sleep", "30"], None, 30))
    started = time.monotonic()
    proof = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    assert not proof.ok and "timed out" in proof.reason and time.monotonic() - started < 20


def test_wheels_are_cached_between_runs(tmp_path, index):
    t = target(tmp_path, index)
    first = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    seen = len(index.hits)
    second = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    assert first.ok and second.ok
    # the rebuilt freeze came from the cache; the candidate's resolution may ask again (this index sends no cache
    # headers and no PEP 658 metadata, as PyPI does)
    again = [h for h in index.hits[seen:] if h.startswith("/files/")]
    assert not any("1.0.0" in h for h in again), again
    assert any((t.store / "cache" / "uv").iterdir())


def test_the_pip_installer_proves_too(tmp_path, index):
    python = make_venv(tmp_path / "venv", ["demo==1.0.0"], index.url, with_pip=True)
    t = Target("web", str(python), index.url, store=prove.store_for(tmp_path / "zenctl.db"), installer="pip")
    proof = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    assert proof.ok and proof.installer == "pip", proof.reason
    assert [s.name for s in proof.steps] == ["venv", "rebuild", "install", "pip check", "imports"]


@pytest.mark.parametrize("name", ["--index-url=http://evil/", "-e", "demo; rm -rf /", "../demo", "demo @ http://x",
                                  "", "d" * 300, "demo\n", None, 3])
def test_names_from_the_index_never_reach_argv_unless_they_are_pep_508_names(name):
    with pytest.raises(ProofError, match="not a valid package name"):
        prove.valid_name(name)


@pytest.mark.parametrize("version", ["--pre", "1.0 ; rm", "latest", "1.0\n", "", "1" * 200, None, "==1.0"])
def test_versions_from_the_index_must_be_pep_440(version):
    with pytest.raises(ProofError, match="not a valid version"):
        prove.valid_version(version)


def test_bad_targets_are_one_clear_line(tmp_path):
    with pytest.raises(ProofError, match="is not an executable file"):
        prove.read_freeze(str(tmp_path / "nope" / "python"))
    with pytest.raises(ProofError, match="could not list its packages|is not a Python"):
        prove.read_freeze("/bin/false")
    with pytest.raises(ProofError, match="absolute path"):
        Target.from_params("web", {"python": "python3"})
    with pytest.raises(ProofError, match="argv list"):
        TestCommand.parse("pytest -q; rm -rf /")
    with pytest.raises(ProofError, match="URL"):
        Target.from_params("web", {"python": "/usr/bin/python3", "index_url": "--trusted-host=evil"})


def test_a_store_others_can_write_is_refused(tmp_path):
    store = tmp_path / "zenctl.db.deps"
    store.mkdir(mode=0o700)
    os.chmod(store, 0o777)
    with pytest.raises(ProofError, match="writable by others"):
        prove.ensure_store(store)
    os.chmod(store, 0o700)
    (store / "cache").symlink_to(tmp_path)
    with pytest.raises(ProofError, match="not a directory"):
        prove.ensure_store(store)


def test_the_targets_requirements_files_must_still_hold(tmp_path, index):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# the app's pins\ndemo>=1.0,<1.1  # not 2.x\nbroken\n")
    t = target(tmp_path, index)
    t.requirements = [str(requirements)]
    assert prove.prove(t, changes(("demo", "1.0.0", "1.0.1"))).ok
    proof = prove.prove(t, changes(("demo", "1.0.0", "2.0.0")))
    assert not proof.ok and proof.failed_step == "requirements"
    assert f"{requirements}:2: demo<1.1,>=1.0 but demo would be 2.0.0" in proof.reason
    requirements.write_text("demo >= = 1\n")
    proof = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")))
    assert not proof.ok and f"{requirements}:1" in proof.reason


def test_a_distribution_installed_from_a_file_is_listed_as_skipped_not_fatal(tmp_path, index):
    from tests.agents.dependency_manager.pyindex import Dist, build_wheel

    t = target(tmp_path, index)
    wheel = build_wheel(Dist("localonly", "0.1", body=""), tmp_path / "wheels")
    import subprocess

    subprocess.run(["uv", "pip", "install", "-q", "--python", t.python, "--no-cache", str(wheel)], check=True)
    freeze = prove.read_freeze(t.python)
    assert freeze.dists["localonly"]["direct"] and "localonly==0.1" not in freeze.pins()
    proof = prove.prove(t, changes(("demo", "1.0.0", "1.0.1")), freeze)
    assert proof.ok and proof.skipped == ["localonly"], proof.reason


def test_a_system_python_managed_by_its_distribution_is_refused_before_any_proof(tmp_path):
    from zenctl.core.actions import ActionFailed, Proposal, get_kind

    system = "/usr/bin/python3"
    if not os.path.exists(system) or not prove.read_freeze(system).externally_managed:
        if os.environ.get("CI") == "true":
            pytest.fail("no PEP 668 system Python at /usr/bin/python3 (Debian 12 has one; CI=true: not skipping)")
        pytest.skip("no PEP 668 system Python here")
    proposal = Proposal("deps.upgrade_patch", "sys:demo", {"target": "sys", "python": system, "changes": [
        {"name": "demo", "from": "1.0.0", "to": "1.0.1"}]}, "test")
    with pytest.raises(ActionFailed, match="EXTERNALLY-MANAGED.*nothing changed"):
        get_kind("deps.upgrade_patch").apply(proposal)
