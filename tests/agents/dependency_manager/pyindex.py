"""A real package index for the dependency tests: tiny wheels built here, served as a PEP 503 (HTML) and PEP 691
(JSON, with PEP 700 upload times) simple index on 127.0.0.1 from a thread, and an offline OSV advisory directory in
the pypa advisory-database layout. Shared by the scan and the apply tests and by bench/deps_scan.py.

    with PyIndex(tmp_path / "index", demo_dists()) as index:
        index.url          # http://127.0.0.1:PORT/simple/ (pass as --index-url / index_url)
        index.stop()       # the index goes down (connection refused) mid-test
        index.down_after = 2   # ...or after two more answers, in the middle of a scan (connections dropped)
        index.mode = "garbage" | "404" | "500" | "html" | "ok"   # hostile answers; html: PEP 503 only
        index.hits         # request paths served, to check the cache

    make_venv(tmp_path / "venv", ["demo==1.0.0"], index.url)   # a real venv (with pip) holding those pins
    build_osv_dir(tmp_path / "advisories")                    # demo<1.0.1 vulnerable (two ids, one CVE)
"""

import base64
import datetime as dt
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
OLD = NOW - dt.timedelta(days=400)  # well past any cool-down


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Dist:
    """One release of one project, as one wheel."""

    name: str
    version: str
    requires: list[str] = field(default_factory=list)  # Requires-Dist lines
    requires_python: str | None = None
    body: str = ""  # the module's source (`raise ImportError(...)` makes an import fail)
    uploaded: dt.datetime = OLD
    yanked: str | bool = False  # a reason string or True
    module: str | None = None  # top-level module name; default: the name with - and . as _

    @property
    def modname(self) -> str:
        return self.module or re.sub(r"[-.]", "_", self.name).lower()

    @property
    def filename(self) -> str:
        return f"{re.sub(r'[-_.]+', '_', self.name)}-{self.version}-py3-none-any.whl"


def demo_dists(now: dt.datetime | None = None) -> list[Dist]:
    """The issue's set: demo 1.0.0 (vulnerable), 1.0.1 (the fix), 1.1.0 (minor), 2.0.0 (major), a pre-release, a
    yanked release and one whose Requires-Python excludes every interpreter; broken 1.0.0 (fine) and 1.1.0 (its
    import fails); parent 1.0.0 requires child<1.0.1 (blocks the fix) and parent 1.1.0
    child<2; child 1.0.0 (vulnerable), 1.0.2 (fix),
    1.1.0, 2.0.0 (for transitive fixes); fresh 1.0.0 and 1.0.1 uploaded an hour ago (cool-down)."""
    now = now or NOW
    version = lambda v: f"__version__ = {v!r}\n"  # noqa: E731
    dists = [Dist("demo", v, body=version(v), requires_python=">=3.8")
             for v in ("1.0.0", "1.0.1", "1.1.0", "2.0.0")]
    dists += [
        Dist("demo", "2.1.0rc1", body=version("2.1.0rc1")),
        Dist("demo", "1.1.1", body=version("1.1.1"), yanked="broken upload"),
        Dist("demo", "3.0.0", body=version("3.0.0"), requires_python=">=4"),
        Dist("broken", "1.0.0", body=version("1.0.0")),
        Dist("broken", "1.1.0", body='raise ImportError("broken 1.1.0 fails on import, on purpose")\n'),
        Dist("parent", "1.0.0", requires=["child<1.0.1"], body=version("1.0.0")),
        Dist("parent", "1.1.0", requires=["child<2"], body=version("1.1.0")),
        Dist("child", "1.0.0", body=version("1.0.0")),
        Dist("child", "1.0.2", body=version("1.0.2")),
        Dist("child", "1.1.0", body=version("1.1.0")),
        Dist("child", "2.0.0", body=version("2.0.0")),
        Dist("fresh", "1.0.0", body=version("1.0.0")),
        Dist("fresh", "1.0.1", body=version("1.0.1"), uploaded=now - dt.timedelta(hours=1)),
    ]
    return dists


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(dist: Dist, outdir: Path) -> Path:
    """A minimal valid wheel (one module, METADATA, WHEEL, RECORD), reproducible byte for byte."""
    outdir.mkdir(parents=True, exist_ok=True)
    info = f"{re.sub(r'[-_.]+', '_', dist.name)}-{dist.version}.dist-info"
    meta = [f"Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    if dist.requires_python:
        meta.append(f"Requires-Python: {dist.requires_python}")
    meta += [f"Requires-Dist: {r}" for r in dist.requires]
    files = {
        f"{dist.modname}/__init__.py": dist.body.encode(),
        f"{info}/METADATA": ("\n".join(meta) + "\n\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pyindex\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n",
        f"{info}/top_level.txt": f"{dist.modname}\n".encode(),
    }
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = outdir / dist.filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return path


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PyIndex:
    """A PEP 503/691 simple index of `dists` on 127.0.0.1, served from a thread while in a `with` block."""

    JSON = "application/vnd.pypi.simple.v1+json"

    def __init__(self, root: Path, dists: list[Dist], port: int = 0):
        self.root = Path(root)
        self.files = self.root / "files"
        self.dists = list(dists)
        self.mode = "ok"
        self.down_after: int | None = None  # answer this many requests more, then hang up on every one (mid-run)
        self.hits: list[str] = []
        self._hits_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port = port
        self.projects: dict[str, list[tuple[Dist, Path, str]]] = {}
        for dist in self.dists:
            self.add(dist)

    def add(self, dist: Dist) -> None:
        """Publish one more release (also while serving: a newer version appears)."""
        path = build_wheel(dist, self.files)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.projects.setdefault(normalize(dist.name), []).append((dist, path, digest))

    @property
    def port(self) -> int:
        assert self._server is not None, "the index is not serving"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port or self.port}/simple/"

    def start(self) -> "PyIndex":
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._head = False  # one handler serves every request of a kept-alive connection
                with index._hits_lock:
                    index.hits.append(self.path)
                index._answer(self)

            def do_HEAD(self):  # uv asks before a download
                self._head = True
                with index._hits_lock:
                    index.hits.append(self.path)
                index._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]  # the same port after a stop/start
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """The index goes down: later connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "PyIndex":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- answers -------------------------------------------------------------------------------------------
    def _send(self, h: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not getattr(h, "_head", False):
            h.wfile.write(body)

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if self.down_after is not None:
            with self._hits_lock:
                self.down_after -= 1
                gone = self.down_after < 0
            if gone:  # the index went down in the middle of a scan: the connection drops, no answer
                h.close_connection = True
                return None
        if self.mode == "404":
            return self._send(h, 404, b"not found", "text/plain")
        if self.mode == "500":
            return self._send(h, 500, b"internal error", "text/plain")
        if self.mode == "garbage":
            return self._send(h, 200, b"\x00\xffnot an index{{{", self.JSON)
        if path.startswith("/files/"):
            file = self.files / Path(path).name
            if not file.is_file():
                return self._send(h, 404, b"no such file", "text/plain")
            return self._send(h, 200, file.read_bytes(), "application/octet-stream")
        if not path.startswith("/simple/"):
            return self._send(h, 404, b"not found", "text/plain")
        wants_json = self.JSON in (h.headers.get("Accept") or "") and self.mode != "html"
        project = path[len("/simple/"):].strip("/")
        if not project:
            return self._root(h, wants_json)
        if normalize(project) not in self.projects:
            return self._send(h, 404, b"no such project", "text/plain")
        if project != normalize(project):  # PEP 503: redirect to the normalized name
            h.send_response(301)
            h.send_header("Location", f"/simple/{normalize(project)}/")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        releases = self.projects[project]
        if wants_json:
            body = {"meta": {"api-version": "1.1"}, "name": project,
                    "versions": sorted({d.version for d, _, _ in releases}),
                    "files": [self._file_json(d, p, digest) for d, p, digest in releases]}
            return self._send(h, 200, json.dumps(body).encode(), self.JSON)
        links = []
        for d, p, digest in releases:
            attrs = f' href="../../files/{p.name}#sha256={digest}"'
            if d.requires_python:
                attrs += f' data-requires-python="{html.escape(d.requires_python)}"'
            if d.yanked:
                reason = d.yanked if isinstance(d.yanked, str) else ""
                attrs += f' data-yanked="{html.escape(reason)}"'
            links.append(f"<a{attrs}>{p.name}</a><br/>")
        page = f"<!DOCTYPE html><html><head><meta name=\"pypi:repository-version\" content=\"1.0\">" \
               f"<title>Links for {project}</title></head><body><h1>Links for {project}</h1>" \
               + "\n".join(links) + "</body></html>"
        return self._send(h, 200, page.encode(), "text/html")

    def _file_json(self, d: Dist, p: Path, digest: str) -> dict:
        return {"filename": p.name, "url": f"../../files/{p.name}", "hashes": {"sha256": digest},
                "requires-python": d.requires_python, "yanked": d.yanked, "size": p.stat().st_size,
                "upload-time": _iso(d.uploaded)}

    def _root(self, h: BaseHTTPRequestHandler, wants_json: bool) -> None:
        if wants_json:
            body = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in sorted(self.projects)]}
            return self._send(h, 200, json.dumps(body).encode(), self.JSON)
        links = "".join(f'<a href="{n}/">{n}</a><br/>' for n in sorted(self.projects))
        return self._send(h, 200, f"<!DOCTYPE html><html><body>{links}</body></html>".encode(), "text/html")


# --- real venvs --------------------------------------------------------------------------------------------
def make_venv(path: Path, pins: list[str], index_url: str | None = None, *, with_pip: bool = True,
              python: str | None = None) -> Path:
    """A real virtualenv at `path` (with pip from ensurepip unless with_pip=False) holding `pins`, installed by
    uv from `index_url` with no dependency resolution surprises (--no-deps is NOT used: requirements install).
    Returns the venv's python."""
    path = Path(path)
    base = python or sys.executable
    args = [base, "-m", "venv", str(path)] + ([] if with_pip else ["--without-pip"])
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    py = path / "bin" / "python"
    if pins:
        env = {**os.environ, "UV_NO_CONFIG": "1", "UV_OFFLINE": "0"}
        env.pop("VIRTUAL_ENV", None)
        cmd = ["uv", "pip", "install", "--quiet", "--python", str(py), "--no-cache",
               "--index-url", index_url or "", *pins]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        if done.returncode:
            raise RuntimeError(f"uv pip install {pins} failed: {done.stderr[-2000:]}")
    return py


# --- OSV advisories ----------------------------------------------------------------------------------------
def osv_record(osv_id: str, package: str, *, introduced: str = "0", fixed: str | None = None,
               last_affected: str | None = None, versions: list[str] | None = None,
               aliases: list[str] | None = None, withdrawn: str | None = None,
               severity: str | None = None, summary: str = "") -> dict:
    """One OSV record for a PyPI package with one ECOSYSTEM range."""
    events: list[dict] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    if last_affected:
        events.append({"last_affected": last_affected})
    affected: dict = {"package": {"name": package, "ecosystem": "PyPI", "purl": f"pkg:pypi/{normalize(package)}"},
                      "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    if versions is not None:
        affected["versions"] = versions
    record: dict = {"id": osv_id, "modified": _iso(OLD), "published": _iso(OLD), "aliases": aliases or [],
                    "summary": summary or f"{package} test advisory {osv_id}", "details": "Test advisory.",
                    "affected": [affected]}
    if withdrawn:
        record["withdrawn"] = withdrawn
    if severity:  # a GHSA-like database_specific severity, as the GitHub advisories carry it
        record["database_specific"] = {"severity": severity}
    return record


def demo_advisories() -> list[dict]:
    """demo<1.0.1 vulnerable under two ids sharing one CVE (folded to one finding); child<1.0.2 vulnerable (a
    transitive fix through parent); one withdrawn advisory that must be ignored."""
    return [
        osv_record("PYSEC-2099-1", "demo", fixed="1.0.1", aliases=["CVE-2099-0001", "GHSA-demo-demo-demo"],
                   versions=["1.0.0"]),
        osv_record("GHSA-demo-demo-demo", "demo", fixed="1.0.1", aliases=["CVE-2099-0001"], severity="HIGH"),
        osv_record("PYSEC-2099-2", "child", fixed="1.0.2", aliases=["CVE-2099-0002"]),
        osv_record("PYSEC-2099-3", "demo", fixed="2.0.0", withdrawn=_iso(OLD)),
    ]


def build_osv_dir(root: Path, records: list[dict] | None = None, *, fmt: str = "yaml") -> Path:
    """Write `records` (default demo_advisories()) as vulns/<package>/<ID>.yaml (or .json), the pypa
    advisory-database layout. GHSA ids go to JSON whatever `fmt` is, so both formats are always exercised."""
    import yaml

    root = Path(root)
    for record in demo_advisories() if records is None else records:
        package = normalize(record["affected"][0]["package"]["name"])
        folder = root / "vulns" / package
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "json" or record["id"].startswith("GHSA-"):
            (folder / f"{record['id']}.json").write_text(json.dumps(record, indent=1))
        else:
            (folder / f"{record['id']}.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    return root
