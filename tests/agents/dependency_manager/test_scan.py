"""The scan's parts against real things: venvs read through their own interpreter, the local PEP 691/503 index
(pyindex), requirements files; and the version decisions as pure functions."""

import os
import time
from pathlib import Path

import pytest

from tests.agents.dependency_manager.pyindex import Dist, PyIndex, demo_dists, make_venv
from zenctl.agents.dependency_manager import index as idx
from zenctl.agents.dependency_manager import versions as ver
from zenctl.agents.dependency_manager.index import Release
from zenctl.agents.dependency_manager.targets import (TargetError, check_trusted, index_settings, probe,
                                                      read_requirements)

PY = "3.11.7"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with PyIndex(tmp_path_factory.mktemp("index"), demo_dists()) as served:
        yield served


@pytest.fixture(scope="module")
def venv(tmp_path_factory, index):
    return make_venv(tmp_path_factory.mktemp("venv") / "v", ["demo==1.0.0", "parent==1.0.0", "child==1.0.0"],
                     index.url, with_pip=False)


def fetch(index, projects, **kw):
    args = dict(cache={}, now=time.time(), ttl=60, timeout=5, workers=4)
    args.update(kw)
    return idx.releases(projects, [index.url], PY, None, **args)


# --- update types, cool-down, fixes ---------------------------------------------------------------------
@pytest.mark.parametrize("old,new,kind", [
    ("1.0.0", "1.0.1", "patch"), ("1.0.0", "1.1.0", "minor"), ("1.0.0", "2.0.0", "major"),
    ("0.1.0", "0.2.0", "major"), ("0.1.0", "0.1.5", "patch"), ("1.0", "1.0.0.1", "patch"),
    ("1!1.0", "2!1.0", "major"), ("2.0", "2.1", "minor"), ("0.0.1", "0.0.2", "patch")])
def test_update_type(old, new, kind):
    assert ver.update_type(old, new) == kind


def rel(*versions, uploaded=0.0):
    return [Release(v, uploaded) for v in versions]


def test_plan_separates_the_major_line_and_honours_the_cool_down():
    now = 10 * 86400.0
    releases = rel("1.0.0", "1.0.1", "1.1.0", "2.0.0") + [Release("2.1.0", now - 3600)]
    p = ver.plan("1.0.0", releases, [], now=now, min_age=86400)
    assert (p.latest, p.non_major, p.major, p.cooling) == ("2.1.0", "1.1.0", "2.0.0", ["2.1.0"])
    p = ver.plan("1.0.0", releases, [], now=now, min_age=0)
    assert p.major == "2.1.0"


def test_the_fix_is_exempt_from_the_cool_down():
    now = 10 * 86400.0
    releases = rel("1.0.0") + [Release("1.0.1", now - 60)]
    p = ver.plan("1.0.0", releases, [], now=now, min_age=86400, affected=lambda v: v == "1.0.0")
    assert p.fix == "1.0.1" and p.fix_type == "patch" and p.update is None


def test_transitive_fix_keeps_requirements_or_names_the_parent():
    from packaging.specifiers import SpecifierSet

    releases = rel("1.0.0", "1.0.2", "1.1.0", "2.0.0")
    affected = lambda v: v in ("1.0.0",)  # noqa: E731
    ok = [ver.Requirer("parent", "1.1.0", SpecifierSet("<2"), "child<2")]
    assert ver.plan("1.0.0", releases, ok, now=0, min_age=0, affected=affected).fix == "1.0.2"
    narrow = [ver.Requirer("parent", "1.0.0", SpecifierSet("<1.0.1"), "child<1.0.1")]
    p = ver.plan("1.0.0", releases, narrow, now=0, min_age=0, affected=affected)
    assert p.fix is None and p.blocked_by == ["parent 1.0.0 requires child<1.0.1"]
    # a later release still affected: the smallest one no advisory touches
    p = ver.plan("1.0.0", releases, ok, now=0, min_age=0, affected=lambda v: v in ("1.0.0", "1.0.2"))
    assert p.fix == "1.1.0" and p.fix_type == "minor"


def test_groups_by_glob():
    groups = {"web": ["flask*", "werkzeug"], "all-demo": ["demo*"]}
    assert ver.group_of("flask-login", groups) == "web"
    assert ver.group_of("demo", groups) == "all-demo"
    assert ver.group_of("other", groups) is None


# --- the index ---------------------------------------------------------------------------------------------
def test_json_index_skips_yanked_prereleases_and_requires_python(index):
    out = fetch(index, ["demo", "child", "nothere"])
    assert [r.version for r in out.releases["demo"]] == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    assert out.missing == ["nothere"] and out.errors == {}
    assert all(r.uploaded for r in out.releases["demo"])


def test_html_fallback_gives_the_same_releases(index):
    index.mode = "html"
    try:
        out = fetch(index, ["demo"])
    finally:
        index.mode = "ok"
    assert [r.version for r in out.releases["demo"]] == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    assert out.releases["demo"][0].uploaded is None  # PEP 503 has no upload times


def test_old_interpreter_excludes_by_requires_python(index):
    out = idx.releases(["demo"], [index.url], "3.7.0", None, cache={}, now=time.time(), ttl=60, timeout=5,
                       workers=2)
    assert [r.version for r in out.releases["demo"]] == []  # every demo file requires >=3.8


def test_wheel_tags_the_target_lacks_are_skipped(tmp_path):
    dists = [Dist("plat", "1.0.0"), Dist("plat", "2.0.0")]
    with PyIndex(tmp_path, dists) as served:
        wheel = served.files / dists[1].filename
        other = served.files / "plat-2.0.0-cp311-cp311-win_amd64.whl"
        wheel.rename(other)
        served.projects["plat"][1] = (dists[1], other, served.projects["plat"][1][2])
        out = idx.releases(["plat"], [served.url], PY, ["py3-none-any", "cp311-cp311-manylinux_2_17_x86_64"],
                           cache={}, now=time.time(), ttl=60, timeout=5, workers=2)
    assert [r.version for r in out.releases["plat"]] == ["1.0.0"]


def test_cache_serves_within_ttl_and_refetches_after(index):
    cache: dict = {}
    before = len(index.hits)
    fetch(index, ["demo", "child"], cache=cache, now=1000.0)
    assert len(index.hits) == before + 2
    out = fetch(index, ["demo", "child"], cache=cache, now=1030.0)
    assert len(index.hits) == before + 2 and out.fetched == 0
    assert [r.version for r in out.releases["child"]] == ["1.0.0", "1.0.2", "1.1.0", "2.0.0"]
    fetch(index, ["demo", "child"], cache=cache, now=1100.0)
    assert len(index.hits) == before + 4


@pytest.mark.parametrize("mode,words", [("garbage", "garbage"), ("500", "HTTP 500"), ("404", "404 for every")])
def test_hostile_index_is_one_error(index, mode, words):
    index.mode = mode
    try:
        out = fetch(index, ["demo", "child", "parent"])
    finally:
        index.mode = "ok"
    assert list(out.errors) == [index.url] and words in out.errors[index.url]
    assert out.releases == {}


def test_index_down_is_one_error(tmp_path):
    served = PyIndex(tmp_path, demo_dists()[:2]).start()
    url = served.url
    served.stop()
    out = idx.releases(["demo", "child"], [url], PY, None, cache={}, now=time.time(), ttl=60, timeout=5, workers=2)
    assert list(out.errors) == [url] and "unreachable" in out.errors[url]


def test_credentials_never_shown():
    assert idx.shown_url("https://user:s3cret@pypi.example/simple/") == "https://***@pypi.example/simple/"


# --- targets ----------------------------------------------------------------------------------------------
def test_probe_reads_the_venv_through_its_interpreter(venv):
    facts, slow = probe(str(venv), index_url="http://127.0.0.1:1/simple")
    assert {n: d.version for n, d in facts.dists.items()} == {"demo": "1.0.0", "parent": "1.0.0", "child": "1.0.0"}
    assert facts.dists["parent"].requires == ["child<1.0.1"]
    assert facts.version.startswith("3.") and facts.markers["python_version"]
    assert facts.index_url == "http://127.0.0.1:1/simple/"
    assert slow["tags"] and "py3-none-any" in slow["tags"]
    facts2, slow2 = probe(str(venv), index_url="http://x/", cached=slow)
    assert slow2 == slow and facts2.tags == slow["tags"]


def test_pip_settings_are_honoured(tmp_path, monkeypatch):
    python = make_venv(tmp_path / "v", [], None, with_pip=True)
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://mirror.example/simple\nextra-index-url = http://extra.example/s\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    facts, _ = probe(str(python))
    assert facts.index_url == "http://mirror.example/simple/"
    assert "http://extra.example/s/" in facts.extra_index_urls
    monkeypatch.setenv("PIP_INDEX_URL", "http://env.example/simple/")
    facts, _ = probe(str(python))
    assert facts.index_url == "http://env.example/simple/"  # the environment over pip.conf, as pip reads it
    facts, _ = probe(str(python), index_url="http://config.example/simple")
    assert facts.index_url == "http://config.example/simple/" and facts.extra_index_urls == []


def test_index_settings_precedence():
    conf = {"global.index-url": "http://g/", "install.index-url": "http://i/"}
    assert index_settings(conf, None, [])[0] == "http://i/"
    assert index_settings({**conf, ":env:.index-url": "http://e/"}, None, [])[0] == "http://e/"
    assert index_settings({}, None, [])[0] == "https://pypi.org/simple/"


def test_missing_interpreter(tmp_path):
    with pytest.raises(TargetError, match="no such interpreter"):
        probe(str(tmp_path / "nope" / "python"))


def test_not_python(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    with pytest.raises(TargetError, match="is not a Python interpreter"):
        probe(str(fake))
    text = tmp_path / "text"
    text.write_text("not a program")
    with pytest.raises(TargetError, match="not an executable"):
        probe(str(text))


def test_a_writable_interpreter_is_refused(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o757)
    with pytest.raises(TargetError, match="writable by others"):
        check_trusted(str(fake))
    fake.chmod(0o755)
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    inside = folder / "python"
    inside.write_text("")
    inside.chmod(0o755)
    with pytest.raises(TargetError, match="its directory"):
        check_trusted(str(inside))


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs another owner: run as root")
def test_an_interpreter_owned_by_someone_else_is_refused(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("")
    fake.chmod(0o755)
    os.chown(fake, 65534, 65534)
    with pytest.raises(TargetError, match="owned by uid 65534"):
        check_trusted(str(fake))


def test_requirements_files(tmp_path):
    base = tmp_path / "base.txt"
    base.write_text("child<2  # a comment\n")
    cons = tmp_path / "cons.txt"
    cons.write_text("demo!=1.1.0\n")
    req = tmp_path / "req.txt"
    req.write_text("# top\n-r base.txt\n-c cons.txt\n--index-url http://x/\n-e ./local\ndemo>=1.0 \\\n  ; "
                   "python_version >= '3'\nparent==1.0.0 --hash=sha256:abc\nhttps://example/x.whl\n")
    reqs, cons_pins = read_requirements(str(req))
    assert [str(p.requirement) for p in reqs] == ['child<2', 'demo>=1.0; python_version >= "3"', "parent==1.0.0"]
    assert reqs[1].where.endswith("req.txt:6")
    assert [str(p.requirement) for p in cons_pins] == ["demo!=1.1.0"]


def test_requirements_syntax_error_names_file_and_line(tmp_path):
    req = tmp_path / "req.txt"
    req.write_text("demo\nthis is not; a requirement ===\n")
    with pytest.raises(ValueError, match=r"req.txt:2: .*not a requirement"):
        read_requirements(str(req))
    with pytest.raises(ValueError, match="cannot read"):
        read_requirements(str(tmp_path / "missing.txt"))


def test_pip_check_from_the_facts(venv):
    facts, _ = probe(str(venv), index_url="http://x/")
    needs = ver.requirers(facts.dists, facts.markers)
    assert ver.broken(facts.dists, needs) == {}
    facts.dists["child"].version = "2.0.0"
    assert ver.broken(facts.dists, needs) == {"parent": ["requires child<1.0.1, but child 2.0.0 is installed"]}
    del facts.dists["child"]
    assert "not installed" in ver.broken(facts.dists, needs)["parent"][0]


def test_requirements_of_extras_and_other_platforms_are_left_out():
    from zenctl.agents.dependency_manager.targets import Dist as Installed

    dists = {"a": Installed("a", "a", "1", ["b; extra == 'x'", "c; sys_platform == 'win32'", "d>=1"])}
    needs = ver.requirers(dists, {"sys_platform": "linux", "python_version": "3.11"})
    assert list(needs) == ["d"]


def test_interpreter_key_changes_with_the_interpreter(venv, tmp_path):
    from zenctl.agents.dependency_manager.targets import interpreter_key

    assert interpreter_key(str(venv)) == interpreter_key(str(venv))
    other = make_venv(tmp_path / "w", [], None, with_pip=False)
    assert interpreter_key(str(other)) != interpreter_key(str(venv))
    assert Path(venv).exists()


def test_redirects_are_followed_and_credentials_stay_on_their_host(index):
    ctype, body, final = idx.fetch(index.url.replace("127.0.0.1", "user:pw@127.0.0.1") + "DEMO/", 5)
    assert final.endswith("/simple/demo/") and b"demo-1.0.0" in body
    assert "pw" not in final


def test_an_index_that_never_answers_is_bounded():
    from tests.servers import Tarpit

    with Tarpit() as pit:
        start = time.monotonic()
        with pytest.raises(idx.IndexFailure):
            idx.fetch(f"http://127.0.0.1:{pit.port}/simple/demo/", 1)
        assert time.monotonic() - start < 5


def test_a_trickling_index_is_cut_at_the_timeout():
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def trickle():
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
        while not stop.wait(0.2):
            try:
                conn.sendall(b"<")
            except OSError:
                return
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(idx.IndexFailure, match="too slow"):
            idx.fetch(f"http://127.0.0.1:{server.getsockname()[1]}/simple/demo/", 1.5)
    finally:
        stop.set()
        server.close()
    assert time.monotonic() - start < 5


def test_an_interpreter_that_prints_without_end_is_bounded(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n")
    fake.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(TargetError, match="is not a Python interpreter"):
        probe(str(fake))
    assert time.monotonic() - start < 30


def test_an_interpreter_that_hangs_is_cut(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    with pytest.raises(TargetError, match="did not answer within 1s"):
        probe(str(fake), timeout=1)


def test_the_probe_is_reused_while_site_packages_is_unchanged(venv, monkeypatch):
    from zenctl.agents.dependency_manager import targets

    facts, slow = probe(str(venv), index_url="http://x/")
    runs = []
    real = targets._run_bounded
    monkeypatch.setattr(targets, "_run_bounded", lambda *a: runs.append(a) or real(*a))
    again, slow2 = probe(str(venv), index_url="http://x/", cached=slow)
    assert runs == [] and {n: d.version for n, d in again.dists.items()} == {n: d.version for n, d in facts.dists.items()}
    site = next(p for p in slow["snapshot"]["paths"] if p.endswith("site-packages"))
    os.utime(site, ns=(time.time_ns(), time.time_ns() + 10**9))  # what an install or an upgrade does to it
    probe(str(venv), index_url="http://x/", cached=slow2)
    assert len(runs) == 1
