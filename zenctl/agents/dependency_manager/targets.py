"""What a Python target has installed, read through the target's own interpreter.

zenctl never imports a target's packages: a small script runs in the target interpreter (`-I`: no PYTHONPATH, no
user site, no current directory) and prints JSON with the interpreter's version, its marker environment, its
wheel tags, pip's index settings and every installed distribution with its requirements. The interpreter runs as
zenctl's user (root under cron), so it must be trusted like the config: owned by root or zenctl's account and
writable by nobody else, and so must the directories on the way to it.
"""

import json
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from zenctl.agents.dependency_manager.names import canonical as canonicalize_name

from zenctl.core import untrusted

PROBE_TIMEOUT = 60
MAX_OUTPUT = 32 << 20
MAX_REQ_FILE = 4 << 20
DEFAULT_INDEX = "https://pypi.org/simple/"

# Runs inside the target interpreter: only the standard library, pip's vendored packaging when present.
PROBE = r"""
import json, os, platform, sys
from importlib import metadata
out = {"version": platform.python_version(), "implementation": sys.implementation.name,
       "executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix}
impl = sys.implementation
iv = "{0.major}.{0.minor}.{0.micro}".format(impl.version)
if impl.version.releaselevel != "final":
    iv += impl.version.releaselevel[0] + str(impl.version.serial)
import sysconfig
out["soabi"] = sysconfig.get_config_var("SOABI")
out["py_version_nodot"] = sysconfig.get_config_var("py_version_nodot")
out["markers"] = {"implementation_name": impl.name, "implementation_version": iv, "os_name": os.name,
    "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform}
def headers(text):
    name = version = None
    requires = []
    key = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and key == "Requires-Dist":
            requires[-1] += " " + line.strip()
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "Name" and name is None:
            name = value
        elif key == "Version" and version is None:
            version = value
        elif key == "Requires-Dist":
            requires.append(value)
    return name, version, requires
dists, seen = [], set()
for d in metadata.distributions():
    try:
        text = d.read_text("METADATA") or d.read_text("PKG-INFO") or ""
        name, version, requires = headers(text)
        if not name:
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        if key in seen:
            continue
        seen.add(key)
        top = (d.read_text("top_level.txt") or "").split()
        dists.append({"name": name, "version": version or "", "requires": requires, "top_level": top[:50]})
    except Exception as exc:
        dists.append({"error": repr(exc)[:300]})
out["dists"] = dists
out["paths"] = [p for p in sys.path if p and os.path.isdir(p)]
want = sys.argv[1:]
out["tags"] = None
if "tags" in want and sys.implementation.name != "cpython":  # CPython's tags zenctl computes itself (cheaper)
  try:
    try:
        from packaging import tags
    except ImportError:
        from pip._vendor.packaging import tags
    out["tags"] = [str(t) for t in tags.sys_tags()][:5000]
  except Exception:
    pass
pip = {}
try:
    import pip as _pip
    pip["version"] = _pip.__version__
    if "pip" not in want:
        raise StopIteration
    from pip._internal.configuration import Configuration
    conf = Configuration(isolated=False)
    conf.load()
    flat = {}
    for k, v in conf.items():  # pip 23: flat "section.key"; newer: {file or ":env:": {"section.key": value}}
        if isinstance(v, dict):
            flat.update({str(a): str(b) for a, b in v.items()})
        else:
            flat[str(k)] = str(v)
    pip["config"] = flat
except StopIteration:
    pass
except Exception as exc:
    pip["error"] = repr(exc)[:300]
out["pip"] = pip
sys.stdout.write(json.dumps(out))
"""


_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,200}[A-Za-z0-9])?")  # PEP 508


class TargetError(Exception):
    """The target cannot be read: one line saying what and where."""


@dataclass
class Dist:
    name: str  # canonical (PEP 503) name
    display: str
    version: str
    requires: list[str]
    top_level: list[str] = field(default_factory=list)


@dataclass
class PythonFacts:
    python: str  # the interpreter path as configured (absolute)
    version: str
    markers: dict[str, str]
    tags: list[str] | None
    dists: dict[str, Dist]
    index_url: str
    extra_index_urls: list[str]
    pip_version: str | None
    problems: list[str] = field(default_factory=list)  # distributions whose metadata could not be read


def check_trusted(path: str) -> None:
    """TargetError unless `path` (and what it links to) is root's or ours and writable by nobody else, and so is
    every directory on the way (a sticky one excepted)."""
    mine = {0, os.geteuid()}
    shown = untrusted.name(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        raise TargetError(f"{shown}: no such interpreter") from None
    except OSError as exc:
        raise TargetError(f"{shown}: cannot read: {exc.strerror}") from None
    seen: set[str] = set()
    for candidate in (os.path.abspath(path), os.path.realpath(path)):
        parts = Path(candidate).parts
        for depth in range(len(parts), 0, -1):
            here = os.path.join(*parts[:depth])
            if here in seen:
                continue
            seen.add(here)
            info = os.lstat(here)
            if stat.S_ISLNK(info.st_mode):
                continue  # a link's own mode means nothing; its directory and its target are checked
            why = _unsafe(info, mine, sticky_ok=depth != len(parts))
            if why:
                what = "it" if here == candidate else f"its directory {untrusted.name(here)}"
                raise TargetError(f"{shown}: {what} {why}; zenctl runs this interpreter as its own user, so it "
                                  "must be owned by root (or zenctl's account) and writable by nobody else")


def _unsafe(info: os.stat_result, mine: set[int], sticky_ok: bool) -> str | None:
    if info.st_uid not in mine:
        return f"is owned by uid {info.st_uid}"
    if info.st_mode & 0o022 and not (sticky_ok and info.st_mode & stat.S_ISVTX):
        who = "others" if info.st_mode & 0o002 else "its group"
        return f"is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def interpreter_key(python: str) -> str:
    """What the slow, per-interpreter facts (wheel tags, pip's config) are cached under: the interpreter file."""
    real = os.path.realpath(python)
    info = os.stat(real)
    import hashlib

    # pip's settings from the environment count, hashed: PIP_INDEX_URL may hold credentials (the key is stored)
    env = json.dumps(sorted((k, v) for k, v in os.environ.items() if k.startswith("PIP_")))
    return json.dumps([os.path.abspath(python), real, info.st_mtime_ns, info.st_size,
                       hashlib.sha256(env.encode()).hexdigest()[:16]])


def probe(python: str, *, index_url: str | None = None, extra_index_urls: list[str] = (),
          timeout: float = PROBE_TIMEOUT, cached: dict | None = None) -> tuple[PythonFacts, dict]:
    """Read the target through its interpreter: (facts, the slow facts to cache: tags and pip's config, which are
    read again only when `cached` lacks them). TargetError for a missing, untrusted or non-Python interpreter."""
    python = os.path.abspath(os.path.expanduser(python))
    check_trusted(python)
    cached = dict(cached or {})
    want = [w for w, key in (("tags", "tags"), ("pip", "pip_config")) if key not in cached
            and not (w == "pip" and index_url)]
    shown = untrusted.name(python)
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise TargetError(f"{shown}: not an executable file")
    data = _unchanged(cached.get("snapshot"))
    if data is None or want:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        returncode, stdout, stderr = _run_bounded([python, "-I", "-c", PROBE, *want], env, timeout, shown)
        if returncode != 0 or len(stdout) > MAX_OUTPUT:
            last = stderr.decode(errors="replace").strip().splitlines()[-1:]
            why = untrusted.line(last[0]) if last else (f"exit status {returncode}" if returncode else
                                                        f"more than {MAX_OUTPUT >> 20} MiB of output")
            raise TargetError(f"{shown}: is not a Python interpreter zenctl can read ({why[:200]})")
        try:
            data = json.loads(stdout)
            if not isinstance(data["dists"], list):
                raise TypeError
            str(data["version"])
        except (ValueError, KeyError, TypeError):
            raise TargetError(f"{shown}: is not a Python interpreter zenctl can read (it printed something else)") \
                from None
        cached["snapshot"] = _snapshot(data)
    dists, version = data["dists"], str(data["version"])
    pip = data.get("pip") or {}
    if "tags" in want:
        cached["tags"] = data.get("tags") or _host_tags(data)
    if "pip" in want:
        cached["pip_config"] = pip.get("config") or {}
    facts = PythonFacts(python=python, version=version, markers=data.get("markers") or {},
                        tags=cached.get("tags"), dists={}, index_url="", extra_index_urls=[],
                        pip_version=pip.get("version"))
    for item in dists:
        if "error" in item or not isinstance(item.get("name"), str):
            facts.problems.append(untrusted.line(str(item.get("error", "a distribution without a name")))[:300])
            continue
        if not _NAME.fullmatch(item["name"]):  # metadata anyone who can install a package writes
            facts.problems.append(f"a distribution named {untrusted.line(item['name'])[:100]!r} (not a valid name)")
            continue
        name = canonicalize_name(item["name"])
        facts.dists[name] = Dist(name, item["name"], str(item["version"]), [str(r) for r in item["requires"]],
                                 [str(t) for t in item.get("top_level") or []])
    pip_config = cached.get("pip_config") or {}
    for option in ("index-url", "extra-index-url"):  # a target without pip: its environment still says them
        value = os.environ.get("PIP_" + option.upper().replace("-", "_"))
        if value and f":env:.{option}" not in pip_config:
            pip_config = {**pip_config, f":env:.{option}": value}
    facts.index_url, facts.extra_index_urls = index_settings(pip_config, index_url, list(extra_index_urls))
    return facts, cached


def _host_tags(data: dict) -> list[str] | None:
    """The wheel tags of a CPython target, computed here for this host's platforms (the target runs on this host)
    from its version and ABI: importing pip's packaging in the target would cost it a tenth of a second. None (no
    filtering) for another implementation that could not say its own."""
    from packaging import tags

    nodot = str(data.get("py_version_nodot") or "")
    soabi = str(data.get("soabi") or "")
    if data.get("implementation") != "cpython" or not nodot.isdigit() or len(nodot) < 2:
        return None
    version = (int(nodot[0]), int(nodot[1:]))
    abi = f"cp{nodot}" + ("t" if "t-" in soabi.split("cpython-")[-1][:5] else "")
    platforms = list(tags.platform_tags())
    found = [*tags.cpython_tags(version, [abi], platforms), *tags.compatible_tags(version, f"cp{nodot}", platforms)]
    return [str(t) for t in found][:5000]


def _snapshot(data: dict) -> dict | None:
    """What the probe printed, with the modification times of the interpreter's sys.path directories: installing,
    upgrading or removing a distribution changes its site-packages directory, so while none changed, the next
    run reuses the probe without running the interpreter."""
    paths = [p for p in data.get("paths") or [] if isinstance(p, str)]
    try:
        mtimes = [os.stat(p).st_mtime_ns for p in paths]
    except OSError:
        return None
    keep = {k: v for k, v in data.items() if k not in ("tags", "pip")}
    return {"paths": paths, "mtimes": mtimes, "data": {**keep, "pip": {"version": (data.get("pip") or {})
                                                                               .get("version")}}}


def _unchanged(snapshot: dict | None) -> dict | None:
    if not isinstance(snapshot, dict) or not snapshot.get("paths"):
        return None
    try:
        if [os.stat(p).st_mtime_ns for p in snapshot["paths"]] != snapshot["mtimes"]:
            return None
    except (OSError, TypeError):
        return None
    return snapshot.get("data")


def _run_bounded(argv: list[str], env: dict, timeout: float, shown: str) -> tuple[int, bytes, bytes]:
    """Run the probe with its output in files the kernel caps (RLIMIT_FSIZE), so an interpreter that prints without
    end cannot fill zenctl's memory: (exit status, stdout, stderr tail)."""
    import resource
    import tempfile

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT + 1, MAX_OUTPUT + 1))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=timeout, env=env,
                                  cwd="/", preexec_fn=cap)  # noqa: PLW1509 (no threads run at this point)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{shown}: did not answer within {timeout:g}s") from None
        except OSError as exc:
            raise TargetError(f"{shown}: cannot run it ({exc.strerror or exc}); is it a Python interpreter?") \
                from None
        out.seek(0)
        stdout = out.read(MAX_OUTPUT + 1)
        size = err.seek(0, os.SEEK_END)
        err.seek(max(0, size - 4096))
        return done.returncode, stdout, err.read()


def index_settings(pip_config: dict[str, str], index_url: str | None,
                   extra: list[str]) -> tuple[str, list[str]]:
    """The indexes the target's pip would use: the config's `index_url` replaces pip's settings; else pip's own
    (environment PIP_INDEX_URL over the install section over the global one of pip.conf), else PyPI."""
    if index_url:
        return _slash(index_url), [_slash(u) for u in extra]

    def pick(option: str) -> str | None:
        for section in (":env:", "install", "global"):
            if f"{section}.{option}" in pip_config:
                return pip_config[f"{section}.{option}"]
        return None

    main = pick("index-url") or DEFAULT_INDEX
    extras = (pick("extra-index-url") or "").split()
    return _slash(main), [_slash(u) for u in extras + list(extra)]


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


# --- requirements files ------------------------------------------------------------------------------------
@dataclass
class Pin:
    requirement: Requirement
    where: str  # file:line


def read_requirements(path: str, _depth: int = 0) -> tuple[list[Pin], list[Pin]]:
    """(requirements, constraints) of a pip requirements file (`-r` and `-c` followed, relative to the file).
    ValueError naming file:line for a line that is not a requirement; editables, URLs and options are skipped."""
    shown = untrusted.name(path)
    if _depth > 10:
        raise ValueError(f"{shown}: -r/-c nested more than 10 deep")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_REQ_FILE + 1)
    except OSError as exc:
        raise ValueError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_REQ_FILE:
        raise ValueError(f"{shown}: larger than {MAX_REQ_FILE >> 20} MiB, not a requirements file")
    text = raw.decode("utf-8", errors="replace")
    reqs: list[Pin] = []
    cons: list[Pin] = []
    base = os.path.dirname(os.path.abspath(path))
    for lineno, line in _logical_lines(text):
        where = f"{shown}:{lineno}"
        line = _strip_comment(line).strip()
        if not line:
            continue
        if line.startswith("-"):
            option, _, value = line.partition(" ") if " " in line else line.partition("=")
            value = value.strip().lstrip("=").strip()
            if option in ("-r", "--requirement", "-c", "--constraint") and value:
                more_r, more_c = read_requirements(os.path.join(base, value), _depth + 1)
                if option in ("-c", "--constraint"):
                    cons += more_r + more_c
                else:
                    reqs += more_r
                    cons += more_c
            continue  # -e, --index-url, --hash... : not version requirements
        if "://" in line or line.startswith((".", "/")):
            continue  # a URL or a path: not from an index
        text_req = line.split(" --", 1)[0].strip()  # per-requirement options (--hash)
        try:
            reqs.append(Pin(Requirement(text_req), where))
        except InvalidRequirement as exc:
            raise ValueError(f"{where}: {untrusted.line(text_req[:120])!s}: not a requirement "
                             f"({str(exc).splitlines()[0][:160]})") from None
    return reqs, cons


def _logical_lines(text: str):
    """(first line number, text) with backslash continuations joined."""
    buffer, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1]
            continue
        yield start, buffer + line
        buffer = ""
    if buffer:
        yield start, buffer


def _strip_comment(line: str) -> str:
    if line.startswith("#"):
        return ""
    index = line.find(" #")
    return line if index < 0 else line[:index]
