"""`zenctl deps scan` and `zenctl deps show` as subprocesses of the installed zenctl, against real venvs, the local
index (pyindex) and an OSV directory; bad inputs give one clear line or finding and change nothing."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agents.dependency_manager.pyindex import PyIndex, build_osv_dir, demo_dists, make_venv

pytestmark = pytest.mark.integration

PINS = ["demo==1.0.0", "parent==1.1.0", "child==1.0.0", "broken==1.0.0", "fresh==1.0.0"]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with PyIndex(tmp_path_factory.mktemp("index"), demo_dists()) as served:
        yield served


@pytest.fixture
def env(tmp_path, index, zenctl):
    """A venv holding PINS, an advisory directory, and a config pointing at both (add keys with `extra`)."""
    python = make_venv(tmp_path / "venv", PINS, index.url, with_pip=False)
    advisories = build_osv_dir(tmp_path / "adv")

    def write(extra: str = "", target_extra: str = "") -> Path:
        return zenctl.config(f"""\
agents:
  dependency_manager:
    advisories: {advisories}
    min_release_age: 1d
{extra}    targets:
      app:
        venv: {tmp_path / 'venv'}
        index_url: {index.url}
{target_extra}""")
    zenctl.write = write
    zenctl.python = python
    zenctl.index = index
    return zenctl


def freeze(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-c", "import json, importlib.metadata as m; print(json.dumps("
                          "{d.metadata['Name']: d.version for d in m.distributions()}))"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def by_check(run: dict) -> dict:
    return {f["check"]: f for f in run["findings"]}


def actions(run: dict) -> dict:
    return {(a["kind"], a["params"]["changes"][0]["name"]): a for a in run["actions"]}


def test_security_patch_alone_minor_notified_major_waits(env):
    config = env.write()
    code, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
    assert code == 2 and run["status"] == "critical" and run["dry_run"]
    f = by_check(run)
    demo = f["deps:app:demo"]
    assert demo["status"] == "critical" and demo["security"] is True
    e = demo["evidence"]
    assert (e["installed"], e["latest"], e["update_type"], e["fix"]) == ("1.0.0", "2.0.0", "major", "1.0.1")
    assert e["advisories"][0]["id"] == "PYSEC-2099-1"
    assert set(e["advisories"][0]["aliases"]) == {"GHSA-demo-demo-demo", "CVE-2099-0001"}  # one finding, folded
    assert e["advisories"][0]["fixed"] == "1.0.1"
    acts = actions(run)
    sec = acts[("deps.upgrade_security", "demo")]
    assert sec["status"] == "previewed" and sec["mode"] == "auto"
    assert sec["params"]["changes"] == [{"name": "demo", "from": "1.0.0", "to": "1.0.1", "update_type": "patch",
                                         "security": True}]
    assert acts[("deps.upgrade_minor", "demo")]["status"] == "notified"
    assert acts[("deps.upgrade_major", "demo")]["mode"] == "disabled"
    # child 1.0.0 is vulnerable and not required directly: its smallest fix keeps parent's child<2
    assert acts[("deps.upgrade_security", "child")]["params"]["changes"][0]["to"] == "1.0.2"
    assert not f["deps:app:child"]["evidence"]["direct"]
    # fresh 1.0.1 is an hour old: cooling down, not proposed
    assert f["deps:app:fresh"]["evidence"]["cooling"] == ["1.0.1"]
    assert not [a for a in run["actions"] if a["params"]["changes"][0]["name"] == "fresh"]
    assert freeze(env.python)["demo"] == "1.0.0"


def test_major_with_approve_is_queued_for_a_person(env):
    config = env.write(extra="    major_updates: approve\n")
    code, run = env.json("deps", "scan", "--config", str(config), "--target", "app")
    major = actions(run)[("deps.upgrade_major", "demo")]
    assert major["mode"] == "approve" and major["status"] == "awaiting_approval"


def test_major_auto_is_a_config_error(env):
    config = env.write(extra="    major_updates: auto\n")
    done = env("deps", "scan", "--dry-run", "--config", str(config))
    assert done.returncode != 0 and "a major upgrade always needs a person" in done.stderr
    assert "Traceback" not in done.stderr


def test_table_like_pip_list_outdated(env):
    done = env("deps", "scan", "--dry-run", "--config", str(env.write()))
    assert done.returncode == 2, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:5] == ["Target", "Package", "Version", "Latest", "Type"] for line in lines)
    row = next(line for line in lines if line.startswith("app") and " demo " in line)
    assert "PYSEC-2099-1->1.0.1" in row and "upgrade_security 1.0.1: previewed" in row and "CRITICAL" in row
    assert "dry run: nothing changed" in done.stdout


def test_warm_scan_comes_from_the_cache(env):
    config = env.write()
    env.json("deps", "scan", "--dry-run", "--config", str(config))
    hits = len(env.index.hits)
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
    assert len(env.index.hits) == hits
    assert by_check(run)["deps:app"]["evidence"]["fetched"] == 0


def test_index_down_changes_nothing(tmp_path, zenctl):
    with PyIndex(tmp_path / "index", demo_dists()) as served:
        python = make_venv(tmp_path / "venv", PINS, served.url, with_pip=False)
        url = served.url
    before = freeze(python)
    config = zenctl.config(f"agents:\n  dependency_manager:\n    advisories: {build_osv_dir(tmp_path / 'adv')}\n"
                           f"    targets:\n      app:\n        python: {python}\n        index_url: {url}\n")
    code, run = zenctl.json("deps", "scan", "--config", str(config))  # not a dry run: security is auto
    f = by_check(run)
    assert f["deps:app:index"]["status"] == "unknown" and "unreachable" in f["deps:app:index"]["message"]
    assert f["deps:app:demo"]["security"]  # the advisory is still reported
    assert run["actions"] == [] and code == 2
    assert freeze(python) == before


@pytest.mark.parametrize("mode", ["garbage", "500"])
def test_hostile_index_changes_nothing(env, mode):
    env.index.mode = mode
    try:
        code, run = env.json("deps", "scan", "--config", str(env.write(extra="    cache_ttl: 0\n")))
    finally:
        env.index.mode = "ok"
    assert run["actions"] == [] and by_check(run)["deps:app:index"]["status"] == "unknown"
    assert freeze(env.python)["demo"] == "1.0.0"


@pytest.mark.parametrize("python,words", [("/nonexistent/bin/python", "no such interpreter"),
                                          ("/etc/hostname", "Python interpreter"),
                                          ("/bin/true", "is not a Python interpreter")])
def test_bad_interpreter_is_one_finding(zenctl, python, words):
    config = zenctl.config(f"agents:\n  dependency_manager:\n    advisory_service: off\n    targets:\n"
                           f"      app:\n        python: {python}\n")
    code, run = zenctl.json("deps", "scan", "--dry-run", "--config", str(config))
    assert code == 3 and run["error"] is None
    [finding] = run["findings"]
    assert finding["check"] == "deps:app" and finding["status"] == "unknown" and words in finding["message"]


def test_requirements_syntax_error_is_one_finding_and_nothing_proposed(env, tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("demo>=1\nparent ==== 2\n")
    config = env.write(target_extra=f"        requirements: [{req}]\n")
    code, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
    f = by_check(run)["deps:app:requirements"]
    assert f["status"] == "unknown" and "requirements.txt:2" in f["message"]
    assert run["actions"] == []


def test_requirements_and_constraints_bound_the_candidates(env, tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("demo<2\nbroken\n")
    cons = tmp_path / "constraints.txt"
    cons.write_text("demo!=1.1.0\n")
    config = env.write(target_extra=f"        requirements: [{req}]\n        constraints: [{cons}]\n")
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
    kinds = {(a["kind"], a["params"]["changes"][0]["name"]) for a in run["actions"]}
    assert ("deps.upgrade_major", "demo") not in kinds and ("deps.upgrade_minor", "demo") not in kinds
    assert ("deps.upgrade_security", "demo") in kinds
    f = by_check(run)
    assert f["deps:app:demo"]["evidence"]["direct"] and not f["deps:app:parent"]["evidence"]["direct"]


def test_malformed_advisory_named_the_rest_used(env, tmp_path):
    bad = tmp_path / "adv" / "vulns" / "demo" / "PYSEC-BAD.yaml"
    bad.write_text("id: [\n")
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(env.write()))
    f = by_check(run)
    assert f["deps:advisories"]["status"] == "warning" and "PYSEC-BAD.yaml" in f["deps:advisories"]["message"]
    assert f["deps:app:demo"]["security"]


def test_groups_make_one_action(env):
    config = env.write(extra="    groups:\n      family: [parent, 'b*']\n    minor_updates: notify\n")
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
    grouped = [a for a in run["actions"] if a["params"]["group"] == "family"]
    assert len(grouped) == 1 and grouped[0]["target"] == "app:group:family"
    assert {c["name"] for c in grouped[0]["params"]["changes"]} == {"broken"}  # parent 1.1.0 is current


def test_a_failed_proof_is_not_retried(env):
    from zenctl.agents.dependency_manager import prove

    env.json("deps", "scan", "--dry-run", "--config", str(env.write()))  # makes the state
    store = prove.ensure_store(prove.store_for(env.db))
    (store / "proofs" / "x.json").write_text(json.dumps({
        "target": "app", "ok": False, "failed_step": "import", "started": "2026-01-01T00:00:00Z",
        "changes": [{"name": "broken", "from": "1.0.0", "to": "1.1.0"}], "tail": "ImportError: broken"}))
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(env.write()))
    assert ("deps.upgrade_minor", "broken") not in actions(run)
    f = by_check(run)["deps:app:broken"]
    assert "proof of 1.1.0 failed" in f["message"] and f["evidence"]["proof"]["tail"] == "ImportError: broken"
    done = env("deps", "show", "broken", "--config", str(env.write()))
    assert done.returncode == 0 and "FAILED at import" in done.stdout and "ImportError: broken" in done.stdout


def test_unknown_target_is_a_usage_error(env):
    done = env("deps", "scan", "--target", "nope", "--config", str(env.write()))
    assert done.returncode == 3 and "no such target" in done.stderr and "app" in done.stderr  # EXIT_UNKNOWN
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_no_targets_scans_zenctl_itself_and_says_so(zenctl):
    config = zenctl.config("agents:\n  dependency_manager:\n    advisory_service: off\n    index_timeout: 2\n")
    _, run = zenctl.json("deps", "scan", "--dry-run", "--config", str(config),
                         env={"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "PIP_CONFIG_FILE": "/dev/null"})
    head = by_check(run)["deps:self"]
    assert "no targets configured" in head["message"] and head["evidence"]["implicit"]
    assert head["evidence"]["packages"] > 10
    assert by_check(run)["deps:self:index"]["status"] == "unknown"  # nothing listens on port 9


def test_quiet_prints_nothing_when_all_is_current(tmp_path, index, zenctl):
    python = make_venv(tmp_path / "venv", ["demo==2.0.0"], index.url, with_pip=False)
    config = zenctl.config(f"agents:\n  dependency_manager:\n    advisory_service: off\n    targets:\n"
                           f"      app:\n        python: {python}\n        index_url: {index.url}\n")
    done = zenctl("deps", "scan", "-q", "--config", str(config))
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_show_versions_and_advisories(env):
    done = env("deps", "show", "demo", "--config", str(env.write()))
    assert done.returncode == 0, done.stderr
    assert "app: demo 1.0.0" in done.stdout and "1.0.1 (patch" in done.stdout and "2.0.0 (major" in done.stdout
    assert "PYSEC-2099-1" in done.stdout
    code = env("deps", "show", "not-installed", "--config", str(env.write())).returncode
    assert code == 1
    done = env("deps", "show", "x;rm -rf /", "--config", str(env.write()))
    assert done.returncode == 3 and "not a distribution name" in done.stderr


def test_hostile_package_metadata_is_escaped(env):
    site = next((env.python.parent.parent / "lib").glob("python3*/site-packages"))
    info = site / "evil-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\x1b]0;pwned\x07\nVersion: 1.0\x1b[31m\n\n")
    done = env("deps", "scan", "--dry-run", "--config", str(env.write()))
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "Traceback" not in done.stderr
    code, run = env.json("deps", "scan", "--dry-run", "--config", str(env.write()))
    assert code == 2 and run["error"] is None, run["error"]
    assert "not a valid name" in by_check(run)["deps:app:metadata"]["message"]


def test_a_venv_given_as_a_world_writable_dir_is_refused(tmp_path, index, zenctl):
    python = make_venv(tmp_path / "venv", ["demo==1.0.0"], index.url, with_pip=False)
    os.chmod(python.parent, 0o777)
    config = zenctl.config(f"agents:\n  dependency_manager:\n    advisory_service: off\n    targets:\n"
                           f"      app:\n        python: {python}\n        index_url: {index.url}\n")
    code, run = zenctl.json("deps", "scan", "--dry-run", "--config", str(config))
    assert code == 3 and "writable by others" in run["findings"][0]["message"]


class OsvApi:
    """An OSV API (POST /v1/query) on 127.0.0.1 answering from records, as osv.dev does; `down` answers 503."""

    def __init__(self, records: list[dict]):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from packaging.version import Version

        from zenctl.agents.dependency_manager.advisories import match, parse_record

        self.queries: list[dict] = []
        self.down = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                query = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                owner.queries.append(query)
                if owner.down:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                name, version = query["package"]["name"], query["version"]
                hits = [r for r in records if r["affected"][0]["package"]["name"] == name
                        and match(version, parse_record(r, "api"))]
                Version(version)
                body = json.dumps({"vulns": hits} if hits else {}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/query"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_online_osv_service_through_pip_audit(env, tmp_path):
    from tests.agents.dependency_manager.pyindex import demo_advisories

    api = OsvApi(demo_advisories())
    try:
        config = env.write(extra=f"    advisory_service: osv\n    osv_url: {api.url}\n")
        text = config.read_text().replace(f"    advisories: {tmp_path / 'adv'}\n", "")
        config.write_text(text)
        env.env["HOME"] = str(tmp_path / "home")  # pip-audit's cache
        code, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
        demo = by_check(run)["deps:app:demo"]
        assert code == 2 and demo["security"] and demo["evidence"]["fix"] == "1.0.1"
        ids = {demo["evidence"]["advisories"][0]["id"], *demo["evidence"]["advisories"][0]["aliases"]}
        assert "CVE-2099-0001" in ids and len(demo["evidence"]["advisories"]) == 1  # folded
        assert ("deps.upgrade_security", "demo") in actions(run)
        asked = len(api.queries)
        api.down = True
        code, run = env.json("deps", "scan", "--dry-run", "--config", str(config))  # cached: not asked again
        assert len(api.queries) == asked and by_check(run)["deps:app:demo"]["security"]
        code, run = env.json("deps", "scan", "--dry-run", "--config",
                             str(env.write(extra=f"    advisory_service: osv\n    osv_url: {api.url}\n"
                                                 "    cache_ttl: 0\n")))
        assert by_check(run)["deps:app:advisories"]["status"] == "unknown"
    finally:
        api.close()


def test_index_going_down_mid_scan_changes_nothing(env):
    before = freeze(env.python)
    env.index.down_after = 2  # two projects answered, then every connection dropped
    try:
        code, run = env.json("deps", "scan", "--config", str(env.write(extra="    cache_ttl: 0\n")))
    finally:
        env.index.down_after = None
    f = by_check(run)["deps:app:index"]
    assert f["status"] == "unknown" and "3 of 5 projects failed" in f["message"]
    assert run["actions"] == [] and freeze(env.python) == before


def test_show_json(env):
    code, data = env.json("deps", "show", "demo", "--config", str(env.write()))
    assert code == 0 and data["package"] == "demo"
    [entry] = data["targets"]
    assert entry["installed"] == "1.0.0" and [v["version"] for v in entry["versions"]] == ["1.0.1", "1.1.0", "2.0.0"]
    assert entry["advisories"][0]["id"] == "PYSEC-2099-1" and entry["proof"] is None


def test_severity_gate(env):
    config = env.write(extra="    security_min_severity: critical\n")
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(config))
    f = by_check(run)
    demo = f["deps:app:demo"]  # HIGH (its GHSA record): below the gate
    assert demo["status"] == "warning" and not demo["security"] and "below security_min_severity" in demo["message"]
    assert ("deps.upgrade_security", "demo") not in actions(run)
    assert f["deps:app:child"]["security"]  # no severity known: counts as meeting the gate


def test_a_security_fix_that_needs_a_major_is_a_major_upgrade(env, tmp_path):
    from tests.agents.dependency_manager.pyindex import osv_record

    shutil.rmtree(tmp_path / "adv")
    build_osv_dir(tmp_path / "adv", [osv_record("PYSEC-2099-9", "demo", introduced="1.0.0", fixed="2.0.0")])
    _, run = env.json("deps", "scan", "--dry-run", "--config", str(env.write()))
    acts = actions(run)
    major = acts[("deps.upgrade_major", "demo")]
    assert major["params"]["changes"][0] == {"name": "demo", "from": "1.0.0", "to": "2.0.0", "update_type": "major",
                                             "security": True}
    assert major["mode"] == "disabled" and ("deps.upgrade_security", "demo") not in acts
    assert by_check(run)["deps:app:demo"]["status"] == "critical"


def test_index_credentials_never_reach_the_output_or_the_state(env, tmp_path):
    secret = env.index.url.replace("127.0.0.1", "deploy:t0ps3cret@127.0.0.1")
    config = env.config(env.write().read_text().replace(f"index_url: {env.index.url}", f"index_url: {secret}"))
    done = env("deps", "scan", "--dry-run", "--json", "--config", str(config))
    assert done.returncode == 2 and "t0ps3cret" not in done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert actions(run)[("deps.upgrade_security", "demo")]["params"]["index_url"] == env.index.url
    assert "t0ps3cret" not in env.db.read_bytes().decode(errors="replace")
    # nor when pip's own settings carry them (the target's pip reads PIP_INDEX_URL; no index_url configured)
    bare = env.config(env.write().read_text().replace(f"        index_url: {env.index.url}\n", ""))
    done = env("deps", "scan", "--dry-run", "--json", "--config", str(bare),
               env={"PIP_INDEX_URL": secret, "PIP_CONFIG_FILE": "/dev/null"})
    run = json.loads(done.stdout)
    assert by_check(run)["deps:app"]["evidence"]["index_url"].startswith("http://***@127.0.0.1")
    assert actions(run)[("deps.upgrade_security", "demo")]["params"]["index_url"] == env.index.url
    stored = b"".join(p.read_bytes() for p in env.db.parent.iterdir() if p.is_file())
    assert "t0ps3cret" not in done.stdout + done.stderr + stored.decode(errors="replace")


def test_netrc_credentials_are_used(env, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login deploy password fromnetrc\n")
    netrc.chmod(0o600)
    seen = []
    original = env.index._answer

    def record(h):
        seen.append(h.headers.get("Authorization"))
        return original(h)

    env.index._answer = record
    try:
        code, run = env.json("deps", "scan", "--dry-run", "--config", str(env.write(extra="    cache_ttl: 0\n")),
                             env={"NETRC": str(netrc)})
    finally:
        env.index._answer = original
    import base64

    assert "Basic " + base64.b64encode(b"deploy:fromnetrc").decode() in seen
