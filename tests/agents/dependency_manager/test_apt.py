"""Debian upgrades for real: a local file repository built here with dpkg-deb and apt-ftparchive holds a tiny
`zenctl-demo` in two versions (the newer in a "security" suite), added as a sources.list.d entry; the older is
installed into the machine's real dpkg database, the agent upgrades it, rollback puts it back, and everything
(package, source, its lists) is removed afterwards. apt-get update only ever reads this source, so no network.
Root only; never skipped when CI=true."""

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PACKAGE = "zenctl-demo"
OLD, NEW = "1.0-1", "1.1-1"
ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def _need_root_and_tools() -> None:
    missing = [tool for tool in ("dpkg-deb", "apt-ftparchive", "apt-get") if not shutil.which(tool)]
    why = "needs root (it installs into the real dpkg database)" if os.geteuid() != 0 else (
        f"needs {', '.join(missing)} (apt-get install apt-utils)" if missing else "")
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI=true: not skipping)")
        pytest.skip(why)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    return done


def build_deb(root: Path, version: str) -> Path:
    tree = root / f"build-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "share" / PACKAGE).mkdir(parents=True)
    (tree / "usr" / "share" / PACKAGE / "VERSION").write_text(version + "\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\nMaintainer: zenctl tests <t@example.invalid>\n"
        f"Section: misc\nPriority: optional\nDescription: zenctl's apt test package\n Installed by the tests.\n")
    deb = root / f"{PACKAGE}_{version}_all.deb"
    sh("dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb))
    return deb


def publish(folder: Path, debs: list[Path], suite: str) -> None:
    """A flat repository in `folder`: the .debs, Packages and a Release naming its suite."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.deb"):
        old.unlink()
    for deb in debs:
        shutil.copy(deb, folder)
    packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=folder, capture_output=True, text=True,
                              check=True)
    (folder / "Packages").write_text(packages.stdout)
    release = subprocess.run(["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=zenctl-test",
                              "-o", f"APT::FTPArchive::Release::Label=zenctl-test-{suite}",
                              "-o", f"APT::FTPArchive::Release::Suite={suite}",
                              "-o", f"APT::FTPArchive::Release::Codename={suite}", "release", "."],
                             cwd=folder, capture_output=True, text=True, check=True)
    (folder / "Release").write_text(release.stdout)


class Repo:
    """The test's repository, its sources.list.d entry, and an apt-get update that reads only it."""

    def __init__(self, root: Path):
        self.root = root
        self.name = f"zenctl-test-{secrets.token_hex(4)}"
        self.sources = Path("/etc/apt/sources.list.d") / f"{self.name}.list"
        self.old = build_deb(root, OLD)
        self.new = build_deb(root, NEW)
        publish(root / "stable", [self.old], "zenctl-stable")
        publish(root / "security", [self.new], "zenctl-security")

    def enable(self, stable: bool = True) -> None:
        lines = [f"deb [trusted=yes] file:{self.root / 'security'} ./"]
        if stable:
            lines.insert(0, f"deb [trusted=yes] file:{self.root / 'stable'} ./")
        self.sources.write_text("\n".join(lines) + "\n")
        self.update()

    def update(self) -> None:
        sh("apt-get", "update", "-q", "-o", f"Dir::Etc::sourcelist={self.sources}", "-o", "Dir::Etc::sourceparts=-",
           "-o", "APT::Get::List-Cleanup=0")

    def lists(self) -> list[Path]:
        mangled = str(self.root).strip("/").replace("/", "_")
        return list(Path("/var/lib/apt/lists").glob(f"*{mangled}*"))

    def clean(self) -> None:
        sh("apt-mark", "unhold", PACKAGE, check=False)
        sh("dpkg", "--purge", PACKAGE, check=False)
        self.sources.unlink(missing_ok=True)
        for path in self.lists():
            path.unlink(missing_ok=True)


@pytest.fixture
def repo():
    _need_root_and_tools()
    if sh("dpkg-query", "-W", PACKAGE, check=False).returncode == 0:
        pytest.fail(f"{PACKAGE} is installed already (a test that died?): dpkg --purge {PACKAGE}")
    # apt's sandbox user (_apt) must read the repository: not under pytest's 0700 tmp
    root = Path("/var/tmp") / f"zenctl-apt-{secrets.token_hex(6)}"
    root.mkdir(mode=0o755)
    try:
        made = Repo(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        made.enable()
        sh("apt-get", "install", "-y", "-q", f"{PACKAGE}={OLD}")
        yield made
    finally:
        made.clean()
        shutil.rmtree(root, ignore_errors=True)
        assert not made.sources.exists() and not made.lists()
        assert sh("dpkg-query", "-W", "-f=${db:Status-Abbrev}", PACKAGE, check=False).stdout.strip() in ("", "un")


def version() -> str:
    return sh("dpkg-query", "-W", "-f=${Version}", PACKAGE).stdout


def config(zenctl) -> Path:
    return zenctl.config(f"""\
agents:
  dependency_manager:
    advisory_service: "off"
    targets:
      host:
        type: apt
        packages: ["{PACKAGE}"]
        security_origins:
          - archive: "*-security"
""")


def scan(zenctl, cfg: Path) -> dict:
    done = zenctl("deps", "scan", "-c", str(cfg), "--json", timeout=600)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_the_agent_upgrades_a_debian_package_from_a_security_suite_and_rollback_puts_it_back(zenctl, repo):
    cfg = config(zenctl)
    assert version() == OLD
    run = scan(zenctl, cfg)
    action = next(a for a in run["actions"] if a["kind"] == "deps.apt_upgrade")
    assert (action["mode"], action["status"]) == ("auto", "applied"), action
    assert action["message"] == f"upgraded {PACKAGE} {OLD} -> {NEW}"
    assert version() == NEW

    code, undone = zenctl.json("rollback", action["id"], "-c", str(cfg), timeout=600)
    step = undone["actions"][0]
    assert code == 0 and (step["kind"], step["status"]) == ("deps.apt_restore", "applied"), undone
    assert version() == OLD

    code, again = zenctl.json("rollback", step["id"], "-c", str(cfg), timeout=600)  # the undo can be undone
    assert code == 0 and version() == NEW


def test_rollback_says_so_when_the_archive_no_longer_has_the_previous_version(zenctl, repo):
    cfg = config(zenctl)
    action = next(a for a in scan(zenctl, cfg)["actions"] if a["kind"] == "deps.apt_upgrade")
    assert action["status"] == "applied" and version() == NEW
    repo.enable(stable=False)  # the old version left the archive
    code, undone = zenctl.json("rollback", action["id"], "-c", str(cfg), timeout=600)
    assert code == 2 and version() == NEW
    why = undone["findings"][0]["message"]
    assert f"{PACKAGE} {OLD} is no longer in the archive" in why and "dpkg -i" in why
    repo.enable()  # back in the archive: the same rollback now works
    code, undone = zenctl.json("rollback", action["id"], "-c", str(cfg), timeout=600)
    assert code == 0 and version() == OLD


def test_a_held_package_is_never_touched(zenctl, repo):
    from zenctl.agents.dependency_manager.kinds.apt import AptUpgrade
    from zenctl.core.actions import ActionFailed, Proposal

    sh("apt-mark", "hold", PACKAGE)
    run = scan(zenctl, config(zenctl))
    assert not [a for a in run["actions"] if a["kind"] == "deps.apt_upgrade"]  # the agent leaves it
    proposal = Proposal("deps.apt_upgrade", f"host:{PACKAGE}",
                        {"target": "host", "changes": [{"name": PACKAGE, "from": OLD, "to": NEW}]}, "test")
    with pytest.raises(ActionFailed, match="held"):  # and the kind refuses it even when asked
        AptUpgrade().apply(proposal)
    assert version() == OLD


@pytest.mark.parametrize("change", [{"name": "-o=APT::Get::Foo", "to": NEW}, {"name": PACKAGE, "to": "1.1; rm"},
                                    {"name": f"{PACKAGE}\n", "to": NEW}, {"name": PACKAGE, "to": "--allow-unauth"}])
def test_names_and_versions_are_checked_before_they_reach_apt_get(change):
    from zenctl.agents.dependency_manager.kinds.apt import AptUpgrade
    from zenctl.core.actions import ActionFailed, Proposal

    with pytest.raises(ActionFailed, match="not a Debian"):
        AptUpgrade().apply(Proposal("deps.apt_upgrade", "host:x", {"changes": [change]}, "test"))
