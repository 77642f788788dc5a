"""The releases an index offers, through the simple API: PEP 691 JSON, else PEP 503 HTML.

Projects are fetched concurrently (a bounded thread pool), each answer bounded in size and time, and what a
target may install is kept: files yanked, pre-releases, files whose Requires-Python excludes the target's
interpreter and wheels none of whose tags the target supports are dropped. The result per (index, project,
target environment) is cached by the caller (in the agent's state) for a TTL. An index that is down, answers
garbage or 404s for everything becomes one error per index, never an exception.
"""

import datetime as dt
import hashlib
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from zenctl.core import untrusted

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
MAX_ANSWER = 64 << 20
MAX_CACHE_ENTRIES = 5000


@dataclass
class Release:
    version: str
    uploaded: float | None  # epoch seconds of the earliest upload of its usable files (PEP 700), if known


class NotFound(Exception):
    """The index does not have this project (normal for a local package)."""


class IndexFailure(Exception):
    """The index could not be read: down, garbage, an HTTP error."""


def shown_url(url: str) -> str:
    """A URL without its credentials, safe to print."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        parts = parts._replace(netloc=f"***@{host}")
    return untrusted.line(urllib.parse.urlunsplit(parts))


def env_key(python_version: str, tags: list[str] | None) -> str:
    """What the filtering depends on, so one cache serves targets that share an interpreter kind."""
    digest = hashlib.sha256(json.dumps([python_version, sorted(tags or [])]).encode()).hexdigest()[:16]
    return f"{python_version}:{digest}"


_local = threading.local()  # each fetching thread keeps its connections alive (one TLS handshake per host)
REDIRECTS = 5
CHUNK = 1 << 16


def fetch(url: str, timeout: float) -> tuple[str, bytes, str]:
    """(content type, body, final url) of one GET, within `timeout` seconds in all (a trickling server cannot
    hold a scan). NotFound for 404/410; IndexFailure for the rest. Credentials in the URL become Basic auth and
    are not sent on to another host by a redirect."""
    import base64

    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return _file(url, parts)
    if parts.scheme not in ("http", "https"):
        raise IndexFailure(f"unsupported index URL scheme {parts.scheme!r}")
    headers = {"Accept": ACCEPT, "User-Agent": "zenctl-deps"}
    if parts.username or parts.password:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    else:
        login = _netrc(parts.hostname or "")
        if login:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    deadline = time.monotonic() + timeout
    for _ in range(REDIRECTS + 1):
        status, reason, ctype, location, body = _get(url, headers, timeout, deadline)
        if status in (301, 302, 303, 307, 308) and location:
            target = urllib.parse.urljoin(_bare(url), location)
            if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(_bare(url)).netloc:
                headers.pop("Authorization", None)
            if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
                raise IndexFailure("redirected to a URL that is not http(s)")
            url = target
            continue
        if status == 200:
            return ctype, body, _bare(url)
        if status in (404, 410):
            raise NotFound(_bare(url))
        raise IndexFailure(f"HTTP {status} {untrusted.line(reason)[:80]}")
    raise IndexFailure(f"more than {REDIRECTS} redirects")


_NETRC: dict = {}


def _netrc(host: str) -> tuple[str, str] | None:
    """(login, password) for `host` from ~/.netrc (or $NETRC), as pip and uv read it; None when there is none."""
    if "entries" not in _NETRC:
        import netrc

        try:
            _NETRC["entries"] = netrc.netrc(os.environ.get("NETRC") or None).hosts
        except (OSError, netrc.NetrcParseError):
            _NETRC["entries"] = {}
    found = _NETRC["entries"].get(host) or _NETRC["entries"].get("default")
    return (found[0] or "", found[2] or "") if found else None


def secret_free(url: str) -> str:
    """The URL without its credentials (what goes into stored action parameters)."""
    return _bare(url)


def _bare(url: str) -> str:
    """The URL without its userinfo."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urllib.parse.urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def _file(url: str, parts) -> tuple[str, bytes, str]:
    import urllib.request

    path = urllib.request.url2pathname(parts.path)
    if os.path.isdir(path):
        path = os.path.join(path, "index.html")
    try:
        with open(path, "rb") as handle:
            return "text/html", handle.read(MAX_ANSWER + 1)[:MAX_ANSWER], url
    except FileNotFoundError:
        raise NotFound(url) from None
    except OSError as exc:
        raise IndexFailure(f"cannot read {untrusted.name(path)}: {exc.strerror}") from None


def _get(url: str, headers: dict, timeout: float, deadline: float):
    """(status, reason, content type, location, body) of one request on this thread's kept-alive connection (or
    through urllib when a proxy applies)."""
    import http.client
    import ssl
    import urllib.request  # here, not at the top: a warm scan from the cache never loads http.client

    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return _via_urllib(_bare(url), headers, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (parts.scheme, host, port)
    for attempt in (0, 1):
        conn = pool.get(key)
        if conn is None:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = pool[key] = kind(host, port, timeout=timeout)
        watchdog = None
        try:
            conn.request("GET", path, headers=headers)
            # a server trickling its answer byte by byte keeps every recv under the socket timeout: at the
            # deadline the socket is shut down under the reading thread
            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, (conn,))
            watchdog.daemon = True
            watchdog.start()
            answer = conn.getresponse()
            body = _read(answer, deadline)
            if time.monotonic() > deadline:
                raise IndexFailure("too slow: the answer did not arrive within index_timeout")
            return (answer.status, answer.reason, answer.getheader("Content-Type", ""),
                    answer.getheader("Location"), body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            pool.pop(key, None).close()
            if attempt:  # a kept-alive connection the server closed: once more on a new one
                raise IndexFailure(f"unreachable: {untrusted.line(str(exc))[:160] or type(exc).__name__}") from None
        except IndexFailure:
            pool.pop(key, None).close()
            raise
        except http.client.HTTPException as exc:
            pool.pop(key, None).close()
            raise IndexFailure(f"not an HTTP answer ({type(exc).__name__})") from None
        except ssl.SSLError as exc:
            pool.pop(key, None).close()
            raise IndexFailure(f"TLS: {untrusted.line(str(exc))[:160]}") from None
        except (TimeoutError, OSError, ValueError) as exc:
            pool.pop(key, None).close()
            if time.monotonic() > deadline:
                raise IndexFailure("too slow: the answer did not arrive within index_timeout") from None
            raise IndexFailure(f"unreachable: {untrusted.line(str(exc))[:160] or type(exc).__name__}") from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
    raise IndexFailure("unreachable")


def _shut(conn) -> None:
    import socket

    try:
        if conn.sock is not None:
            conn.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _read(answer, deadline: float) -> bytes:
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise IndexFailure("too slow: the answer did not arrive within index_timeout")
        chunk = answer.read1(CHUNK)  # what has arrived (read() would wait for CHUNK bytes)
        if not chunk:
            answer.read()  # marks the answer complete, so the kept-alive connection can take the next request
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise IndexFailure(f"answer larger than {MAX_ANSWER >> 20} MiB")
        chunks.append(chunk)


def _via_urllib(url: str, headers: dict, timeout: float):
    """Through the proxy the environment names (http_proxy, https_proxy, no_proxy), as pip would."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # fetch() follows redirects itself

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as answer:
            body = answer.read(MAX_ANSWER + 1)
            if len(body) > MAX_ANSWER:
                raise IndexFailure(f"answer larger than {MAX_ANSWER >> 20} MiB")
            return answer.status, answer.reason, answer.headers.get("Content-Type", ""), None, body
    except urllib.error.HTTPError as exc:
        return exc.code, str(exc.reason), "", exc.headers.get("Location"), b""
    except urllib.error.URLError as exc:
        raise IndexFailure(f"unreachable: {untrusted.line(str(exc.reason))[:160]}") from None
    except (TimeoutError, OSError, ValueError) as exc:
        raise IndexFailure(f"unreachable: {untrusted.line(str(exc))[:160] or type(exc).__name__}") from None


def _links_parser():
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.files: list[dict] = []
            self._attrs: dict | None = None
            self._text = ""

        def handle_starttag(self, tag, attrs):
            if tag == "a":
                self._attrs = dict(attrs)
                self._text = ""

        def handle_data(self, data):
            if self._attrs is not None:
                self._text += data

        def handle_endtag(self, tag):
            if tag == "a" and self._attrs is not None:
                href = self._attrs.get("href") or ""
                path = urllib.parse.urlsplit(href).path
                name = urllib.parse.unquote(path.rsplit("/", 1)[-1]) or self._text.strip()
                yanked = self._attrs.get("data-yanked")
                self.files.append({"filename": name, "requires-python": self._attrs.get("data-requires-python"),
                                   "yanked": yanked is not None})
                self._attrs = None

    return Links()


def parse(content_type: str, body: bytes) -> list[dict]:
    """The files of a project page: [{filename, requires-python, yanked, upload-time}]. ValueError for garbage."""
    if "json" in content_type:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            raise ValueError("JSON without a `files` list")
        return [f for f in data["files"] if isinstance(f, dict) and isinstance(f.get("filename"), str)]
    text = body.decode("utf-8", errors="replace")
    if "<a" not in text.lower() and "<html" not in text.lower() and "<!doctype" not in text.lower():
        raise ValueError("neither PEP 691 JSON nor a PEP 503 HTML page")
    parser = _links_parser()
    parser.feed(text)
    return parser.files


def _version_of(filename: str, project: str) -> tuple[str | None, frozenset | None]:
    """(version, wheel tags or None for an sdist) from a file name; (None, None) when it is neither."""
    if filename.endswith(".whl"):
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            _, version, _, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None, None
        return str(version), frozenset(str(t) for t in tags)
    for ext in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
        if filename.lower().endswith(ext):
            stem = filename[: -len(ext)]
            name, sep, version = stem.rpartition("-")
            if sep and _norm(name) == _norm(project):
                return version, None
    return None, None


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _time(value) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def usable(files: list[dict], project: str, python_version: str, tags: list[str] | None) -> list[Release]:
    """The releases the target could install, oldest first: yanked files, pre-releases, files whose
    Requires-Python excludes the interpreter and wheels for other platforms dropped."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    supported = set(tags) if tags else None
    python = Version(python_version)
    best: dict[str, float | None] = {}
    seen: set[str] = set()
    for f in files:
        yanked = f.get("yanked")
        if yanked not in (None, False):
            continue
        version, wheel_tags = _version_of(f["filename"], project)
        if version is None:
            continue
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if parsed.is_prerelease or parsed.is_devrelease:
            continue
        spec = f.get("requires-python")
        if spec:
            try:
                if python not in SpecifierSet(spec):
                    continue
            except InvalidSpecifier:
                pass  # pip ignores an unparsable Requires-Python too
        if wheel_tags is not None and supported is not None and not (wheel_tags & supported):
            continue
        key = str(parsed)
        when = _time(f.get("upload-time"))
        if key not in seen:
            seen.add(key)
            best[key] = when
        elif when is not None and (best[key] is None or when < best[key]):
            best[key] = when
    return [Release(v, best[v]) for v in sorted(best, key=Version)]


@dataclass
class Outcome:
    releases: dict[str, list[Release]]  # canonical project name -> usable releases (merged over the indexes)
    missing: list[str]  # projects none of the indexes has
    errors: dict[str, str]  # shown index url -> one line (how many projects failed, the first reason)
    fetched: int  # answers fetched (not from the cache)


def releases(projects: list[str], indexes: list[str], python_version: str, tags: list[str] | None, *,
             cache: dict, now: float, ttl: float, timeout: float, workers: int) -> Outcome:
    """Usable releases of `projects` from every index in `indexes` (pip's index + extras). `cache` (a JSON-able
    dict the caller keeps) is read and updated in place: "url|project|env" -> [fetched, [[version, uploaded]...]
    or None when the index does not have it]."""
    env = env_key(python_version, tags)
    todo: list[tuple[str, str]] = []
    found: dict[str, dict[str, float | None]] = {p: {} for p in projects}
    present: set[str] = set()
    for index in indexes:
        for project in projects:
            entry = cache.get(f"{_bare(index)}|{project}|{env}")
            if entry and now - entry[0] < ttl:
                if entry[1] is not None:
                    present.add(project)
                    for version, uploaded in entry[1]:
                        _merge(found[project], version, uploaded)
            else:
                todo.append((index, project))
    failures: dict[str, list[str]] = {}
    notfound: dict[str, int] = {}

    def one(job: tuple[str, str]):
        index, project = job
        url = urllib.parse.urljoin(index, urllib.parse.quote(project, safe="") + "/")
        try:
            ctype, body, _ = fetch(url, timeout)
            return job, usable(parse(ctype, body), project, python_version, tags), None
        except NotFound:
            return job, None, None
        except IndexFailure as exc:
            return job, None, str(exc)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return job, None, f"garbage answer ({untrusted.line(str(exc))[:120]})"

    if todo:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            results = list(pool.map(one, todo))
    else:
        results = []
    for (index, project), rels, error in results:
        if error is not None:
            failures.setdefault(index, []).append(f"{project}: {error}")
            continue
        if rels is None:
            notfound[index] = notfound.get(index, 0) + 1
        else:
            present.add(project)
            for r in rels:
                _merge(found[project], r.version, r.uploaded)
        cache[f"{_bare(index)}|{project}|{env}"] = [now, None if rels is None else [[r.version, r.uploaded] for r in rels]]
    errors = {shown_url(i): f"{len(f)} of {len(projects)} projects failed, first {f[0]}" for i, f in failures.items()}
    for index, count in notfound.items():
        asked = sum(1 for i, _ in todo if i == index)
        if count == asked == len(projects) >= 2 and index not in failures:
            errors[shown_url(index)] = f"404 for every one of the {count} projects asked: is the index URL right?"
            for project in projects:  # a wrong URL: do not cache its 404s
                cache.pop(f"{_bare(index)}|{project}|{env}", None)
    _prune(cache, now, ttl)
    return Outcome(
        releases={p: [Release(v, t) for v, t in sorted(found[p].items(), key=lambda kv: Version(kv[0]))]
                  for p in projects if p in present},
        missing=[p for p in projects if p not in present],
        errors=errors,
        fetched=len(todo),
    )


def _merge(into: dict[str, float | None], version: str, uploaded: float | None) -> None:
    if version not in into or (uploaded is not None and (into[version] is None or uploaded < into[version])):
        into[version] = uploaded


def _prune(cache: dict, now: float, ttl: float) -> None:
    for key in [k for k, v in cache.items() if not isinstance(v, list) or now - v[0] >= ttl]:
        del cache[key]
    if len(cache) > MAX_CACHE_ENTRIES:
        for key in sorted(cache, key=lambda k: cache[k][0])[: len(cache) - MAX_CACHE_ENTRIES]:
            del cache[key]
