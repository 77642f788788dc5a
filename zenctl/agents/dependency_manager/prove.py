"""Proving an update before it lands, and the pip/uv plumbing the upgrade kinds share.

A candidate (one or more `name==version` changes for one Python target) is installed into a throwaway venv rebuilt
from the target's exact freeze, with the same Python, in a private temp dir (0700, removed after): then `pip check`
(only problems the freeze did not already have count), an import of every top-level module of the upgraded
distributions (from top_level.txt or RECORD, in a subprocess), and the target's `test` command, all within one
deadline. The result is kept as a proof record in the store beside the state (`<state>.deps/proofs/`), which
`zenctl deps show` prints and the agent reads so a failed candidate is not tried again until a newer version
appears. Wheels are cached in `<state>.deps/cache/` between runs.

Everything runs as argv, never through a shell; package names and versions come from an index (attacker-
influenced) and are checked as PEP 508 names and PEP 440 versions before they reach an argv. Every command runs in
its own session and is killed with its process group at its deadline; only the tail of its output is kept.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from zenctl.core.untrusted import line, storable

TAIL = 4096  # bytes of a command's output kept in a proof record
PROOF_TIMEOUT = 900.0  # seconds for a whole proof unless the proposal says otherwise
RECORD_LIMIT = 256 * 1024  # a proof record larger than this is not read (the store is ours, but bound it anyway)
RECORDS_SCANNED = 5000  # proof records looked at by a search, newest first
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?$")  # PEP 508 names, bounded
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,100}$")  # what may reach argv; Version() decides the rest
_CHECK_NOISE = re.compile(r"^(Checked \d+ packages?|Found \d+ incompatibilit|All installed packages are compatible|"
                          r"No broken requirements found)")
PYPI = "https://pypi.org/simple/"
SEED = ("pip", "setuptools", "wheel", "distribute")  # what pip freeze leaves out: tooling, not the application


class ProofError(Exception):
    """The proof (or an install) could not even run: bad parameters, no interpreter, no installer, a bad store."""


# --- names and versions from the index ---------------------------------------------------------------------
def valid_name(name: object) -> str:
    """A PEP 508 distribution name, as given; ProofError for anything else (an option, a path, a URL)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ProofError(f"not a valid package name: {line(repr(name))[:120]}")
    return name


def valid_version(version: object) -> str:
    """A PEP 440 version, as given; ProofError for anything else."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ProofError(f"not a valid version: {line(repr(version))[:120]}")
    try:
        Version(version)
    except InvalidVersion:
        raise ProofError(f"not a valid version: {line(repr(version))[:120]}") from None
    return version


def key(name: str) -> str:
    return canonicalize_name(name)


@dataclass(frozen=True)
class Change:
    """One distribution moving from `before` (None: not installed) to `after`."""

    name: str
    before: str | None
    after: str

    @classmethod
    def parse(cls, item: object) -> "Change":
        if not isinstance(item, dict):
            raise ProofError(f"a change must be a mapping with name, from and to, not {line(repr(item))[:80]}")
        before = item.get("from")
        return cls(valid_name(item.get("name")), None if before is None else valid_version(before),
                   valid_version(item.get("to")))

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.after}"

    def describe(self) -> str:
        return f"{self.name} {self.before or '(new)'} -> {self.after}"


def parse_changes(items: object) -> list[Change]:
    if not isinstance(items, list) or not items:
        raise ProofError("no changes given (params.changes must list name, from, to)")
    changes = [Change.parse(item) for item in items]
    if len({key(c.name) for c in changes}) != len(changes):
        raise ProofError("a package appears twice in the changes")
    return changes


def _url(value: object, what: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"(https?|file)://[^\s\x00-\x1f\x7f]+", value):
        raise ProofError(f"{what} is not an http(s) or file URL: {line(repr(value))[:120]}")
    return value


# --- the target -------------------------------------------------------------------------------------------
@dataclass
class TestCommand:
    __test__ = False  # not a pytest class

    argv: list[str]
    cwd: str | None
    timeout: float

    @classmethod
    def parse(cls, value: object) -> "TestCommand | None":
        if value in (None, {}, []):
            return None
        if isinstance(value, list):
            value = {"argv": value}
        if isinstance(value, str):
            raise ProofError("the test command must be an argv list (it never runs through a shell)")
        argv = (value.get("argv") or value.get("command")) if isinstance(value, dict) else None
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and "\x00" not in a for a in argv):
            raise ProofError("the test command must be a non-empty argv list of strings")
        timeout = value.get("timeout", 300)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ProofError(f"the test command's timeout must be a positive number, not {timeout!r}")
        cwd = value.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ProofError("the test command's cwd must be a path")
        return cls(list(argv), cwd, float(timeout))

    def describe(self) -> str:
        import shlex

        text = line(shlex.join(self.argv))
        return f"`{text}`" + (f" in {line(self.cwd)}" if self.cwd else "") + f" (timeout {self.timeout:g} s)"


@dataclass
class Target:
    """What the upgrade kinds need to know about a Python target (from the proposal's parameters)."""

    name: str
    python: str
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    test: TestCommand | None = None
    constraints: list[str] = field(default_factory=list)
    store: Path | None = None
    requirements: list[str] = field(default_factory=list)  # files whose requirements must still hold after
    installer: str = "auto"  # auto (uv when found, else pip) | uv | pip
    timeout: float = PROOF_TIMEOUT

    @classmethod
    def from_params(cls, target: str, p: dict) -> "Target":
        python = p.get("python")
        if not isinstance(python, str) or not python.startswith("/") or "\x00" in python:
            raise ProofError(f"the target's python must be an absolute path, not {line(repr(python))[:120]}")
        index = p.get("index_url")
        extra = p.get("extra_index_urls") or []
        if not isinstance(extra, list):
            raise ProofError("extra_index_urls must be a list")
        constraints = [str(c) for c in p.get("constraints") or [] if c]
        requirements = [str(r) for r in p.get("requirements") or [] if r]
        store = p.get("store")
        installer = p.get("installer") or "auto"
        if installer not in ("auto", "uv", "pip"):
            raise ProofError(f"installer must be auto, uv or pip, not {line(repr(installer))[:40]}")
        timeout = p.get("proof_timeout") or PROOF_TIMEOUT
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ProofError(f"proof_timeout must be a positive number, not {timeout!r}")
        return cls(str(p.get("target") or target), python, None if index is None else _url(index, "index_url"),
                   [_url(u, "extra_index_urls") for u in extra], TestCommand.parse(p.get("test")), constraints,
                   Path(store) if store else None, requirements=requirements, installer=installer,
                   timeout=float(timeout))


# --- running commands -------------------------------------------------------------------------------------
@dataclass
class Ran:
    """A finished command: exit code (None: killed at its deadline), seconds, and the tail of its output."""

    code: int | None
    seconds: float
    tail: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment commands get: zenctl's own, without what would point Python or the installers elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PIP_", "UV_", "VIRTUAL_ENV", "CONDA")) and k != "__PYVENV_LAUNCHER__"}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_NO_COLOR": "1",
                "UV_NO_CONFIG": "1", "UV_NO_PROGRESS": "1", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})
    env.update(extra or {})
    return env


def run(argv: list[str], timeout: float, cwd: str | None = None, env: dict[str, str] | None = None) -> Ran:
    """Run `argv` (never a shell) in its own session, stdin closed, output to an unlinked temp file (bounded
    memory whatever it prints); at `timeout` kill its whole process group. The tail of its output is kept."""
    start = time.monotonic()
    if timeout <= 0:
        return Ran(None, 0.0, "not started: the proof's time was used up")
    with tempfile.TemporaryFile() as out:
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=cwd, env=env if env is not None else clean_env(),
                                       start_new_session=True, close_fds=True)
        except OSError as exc:
            return Ran(127, 0.0, f"cannot run {line(argv[0])}: {exc.strerror or exc}")
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            code = None
        except BaseException:  # an emergency stop: never leave the command behind
            _kill(process)
            raise
        _kill_leftovers(process)
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - TAIL))
        tail = out.read().decode("utf-8", "replace")
    if code is None:
        tail += f"\n[killed after {timeout:g} s: timed out]"
    return Ran(code, time.monotonic() - start, storable(tail))


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _kill_leftovers(process: subprocess.Popen) -> None:
    """A command that exited but left children in its group (a test's server) does not outlive the proof."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- the store: wheel cache and proof records -------------------------------------------------------------
def store_for(state_path: Path | str) -> Path:
    """Where the dependency agent keeps its wheel cache, proof records and freezes: beside the state file."""
    return Path(f"{state_path}.deps")


def _own_dir(path: Path) -> Path:
    """`path` as a directory only this account can write: created 0700, else checked (not a symlink, ours, not
    group/world-writable). A cache someone else can write would hand root their wheels."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ProofError(f"cannot create {line(str(path))}: {exc.strerror}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise ProofError(f"{line(str(path))} is not a directory (a symlink?); refusing to use it")
    if st.st_uid != os.geteuid():
        raise ProofError(f"{line(str(path))} belongs to uid {st.st_uid}, not to this account; refusing to use it")
    if st.st_mode & 0o022:
        raise ProofError(f"{line(str(path))} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                         "refusing to use it")
    return path


def ensure_store(store: Path) -> Path:
    _own_dir(store)
    for sub in ("cache", "proofs", "freezes"):
        _own_dir(store / sub)
    return store


def _write_json(path: Path, data: dict) -> None:
    """Whole or not at all: written beside, fsynced, renamed over."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def proof_key(target: str, changes: list[Change]) -> str:
    plan = json.dumps([target, sorted([key(c.name), c.after] for c in changes)], separators=(",", ":"))
    return hashlib.sha256(plan.encode()).hexdigest()[:32]


def _read_record(path: Path) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(RECORD_LIMIT + 1)
    if len(data) > RECORD_LIMIT:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def records(store: Path | str) -> list[dict]:
    """Every readable proof record in the store, newest first (at most RECORDS_SCANNED)."""
    folder = Path(store) / "proofs"
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".json") and e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    found = [_read_record(Path(e.path)) for e in entries[:RECORDS_SCANNED]]
    return [r for r in found if r]


def proofs_for(store: Path | str, package: str) -> list[dict]:
    """The proof records that moved `package`, newest first (`zenctl deps show PACKAGE`)."""
    wanted = key(package)
    return [r for r in records(store) if any(key(str(c.get("name", ""))) == wanted for c in r.get("changes", []))]


def failed_proof(store: Path | str, target: str, name: str, version: str) -> dict | None:
    """The newest failed proof of `name==version` on `target` (alone or in a group), or None: a candidate that
    failed is not tried again until a newer version appears."""
    wanted = key(name)
    for record in records(store):
        if record.get("target") != target or record.get("ok"):
            continue
        if any(key(str(c.get("name", ""))) == wanted and c.get("to") == version for c in record.get("changes", [])):
            return record
    return None


def proof_record(store: Path | str, target: str, changes: list[Change]) -> dict | None:
    """The last proof of exactly these changes on `target`."""
    return _read_record(Path(store) / "proofs" / f"{proof_key(target, changes)}.json")


# --- installers ---------------------------------------------------------------------------------------------
def find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


class Installer:
    """pip or uv, driven by argv against a given interpreter, with the target's index and our wheel cache."""

    name = "pip"

    def __init__(self, target: Target, cache: Path | None):
        self.target = target
        self.cache = cache
        self._delegate: bool | None = None

    def delegates(self) -> bool:
        """True when the target's pip can act on another interpreter (`pip --python`, pip 22.3+): the proof venv
        then needs no pip of its own, which saves ensurepip's seconds."""
        if self._delegate is None:
            ran = run([self.target.python, "-I", "-c", "import pip; print(pip.__version__)"], 30)
            try:
                self._delegate = ran.ok and Version(ran.tail.strip()) >= Version("22.3")
            except InvalidVersion:
                self._delegate = False
        return self._delegate

    def _pip(self, python: str) -> list[str]:
        if python != self.target.python and self.delegates():
            return [self.target.python, "-I", "-m", "pip", "--python", python]
        return [python, "-I", "-m", "pip"]

    def _index_args(self) -> list[str]:
        args = ["--index-url", self.target.index_url] if self.target.index_url else []
        for url in self.target.extra_index_urls:
            args += ["--extra-index-url", url]
        return args

    def venv(self, dest: Path, timeout: float) -> Ran:
        bare = ["--without-pip"] if self.delegates() else []
        return run([self.target.python, "-I", "-m", "venv", *bare, str(dest)], timeout)

    def install(self, python: str, pins: list[str], timeout: float, constraints: list[str] = (),
                no_deps: bool = False, offline: bool = False) -> Ran:
        args = [*self._pip(python), "install", "--no-input", "--disable-pip-version-check", "-q"]
        args += ["--no-index"] if offline else self._index_args()
        args += ["--cache-dir", str(self.cache)] if self.cache else ["--no-cache-dir"]
        args += ["--no-deps"] if no_deps else []
        for path in constraints:
            args += ["-c", path]
        return run(args + ["--", *pins], timeout, env=self._env())

    def _env(self) -> dict[str, str]:
        """With the index the scan resolved from pip's settings, pip.conf must not add more (find-links...)."""
        return clean_env({"PIP_CONFIG_FILE": os.devnull} if self.target.index_url else None)

    def uninstall(self, python: str, names: list[str], timeout: float) -> Ran:
        return run([*self._pip(python), "uninstall", "-y", "-q", "--", *names], timeout, env=self._env())

    def check(self, python: str, timeout: float) -> Ran:
        return run([*self._pip(python), "check"], timeout, env=self._env())


class UvInstaller(Installer):
    name = "uv"

    def __init__(self, target: Target, cache: Path | None, uv: str):
        super().__init__(target, cache)
        self.uv = uv

    def _common(self) -> list[str]:
        return ["--cache-dir", str(self.cache)] if self.cache else ["--no-cache"]

    def _index_args(self) -> list[str]:
        # uv does not read pip.conf: the scan resolved the index the target's pip uses; without one, PyPI
        return super()._index_args() if self.target.index_url else ["--index-url", PYPI, *super()._index_args()]

    def venv(self, dest: Path, timeout: float) -> Ran:
        return run([self.uv, "venv", "-q", *self._common(), "--python", self.target.python, "--no-project",
                    str(dest)], timeout)

    def install(self, python: str, pins: list[str], timeout: float, constraints: list[str] = (),
                no_deps: bool = False, offline: bool = False) -> Ran:
        args = [self.uv, "pip", "install", "-q", *self._common(), "--python", python]
        args += [*(["--offline"] if offline else []), *self._index_args()]  # the cache is keyed by the index
        args += ["--no-deps"] if no_deps else []
        for path in constraints:
            args += ["-c", path]
        return run(args + ["--", *pins], timeout)

    def uninstall(self, python: str, names: list[str], timeout: float) -> Ran:
        return run([self.uv, "pip", "uninstall", "-q", "--python", python, "--", *names], timeout)

    def check(self, python: str, timeout: float) -> Ran:
        return run([self.uv, "pip", "check", "--python", python], timeout)


def installer_for(target: Target, cache_root: Path | None) -> Installer:
    """uv when asked or found (much faster, and it has no pip to need in the target), else the target's pip."""
    uv = find_uv() if target.installer in ("auto", "uv") else None
    if target.installer == "uv" and not uv:
        raise ProofError("installer uv asked for, but no uv found on PATH or beside zenctl's python")
    if uv:
        return UvInstaller(target, cache_root / "uv" if cache_root else None, uv)
    return Installer(target, cache_root / "pip" if cache_root else None)


def check_problems(ran: Ran) -> set[str]:
    """The problems `pip check` / `uv pip check` reported, one per line, without their summary lines."""
    lines = {text.strip() for text in ran.tail.splitlines() if text.strip()}
    return {text for text in lines if not _CHECK_NOISE.match(text) and not text.startswith("[killed")}


# --- reading an interpreter ---------------------------------------------------------------------------------
_FREEZE = r"""
import json, re, sys
from importlib import metadata
dists = {}
for d in metadata.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    k = re.sub(r"[-_.]+", "-", name).lower()
    if k in dists:
        continue
    try:
        direct = bool(d.read_text("direct_url.json"))
    except Exception:
        direct = False
    dists[k] = {"name": name, "version": d.version, "direct": direct}
import os, sysconfig
managed = sys.prefix == sys.base_prefix and os.path.exists(
    os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
json.dump({"version": "%d.%d.%d" % sys.version_info[:3], "prefix": sys.prefix, "dists": dists,
           "externally_managed": managed}, sys.stdout)
"""

_IMPORTS = r"""
import importlib, json, sys, traceback
from importlib import metadata
names, out = json.loads(sys.argv[1]), sys.argv[2]
result = {}
def tops(d):
    text = d.read_text("top_level.txt")
    if text:
        return [t.strip() for t in text.splitlines() if t.strip()]
    found = []
    for f in d.files or []:
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data", ".egg-info")):
            continue
        top = parts[0]
        if len(parts) == 1:
            if top.endswith(".py"):
                top = top[:-3]
            elif top.endswith((".so", ".pyd")):
                top = top.split(".")[0]
            else:
                continue
        if top not in found:
            found.append(top)
    return found
for n in names:
    try:
        d = metadata.distribution(n)
    except metadata.PackageNotFoundError:
        result[n] = {"error": "not installed"}
        continue
    mods = [m for m in tops(d) if m.replace("/", ".").isidentifier()][:50]
    errors = {}
    for m in mods:
        try:
            importlib.import_module(m)
        except BaseException as exc:
            errors[m] = (traceback.format_exception_only(type(exc), exc)[-1].strip())[:500]
    result[n] = {"modules": mods, "errors": errors}
with open(out, "w") as handle:
    json.dump(result, handle)
"""


@dataclass
class Freeze:
    """What an interpreter has installed: canonical name -> (name as spelled, version, installed from a URL)."""

    version: str
    prefix: str
    dists: dict[str, dict]
    externally_managed: bool = False  # PEP 668: a distribution's system Python, whose packages apt owns

    def versions(self) -> dict[str, str]:
        return {k: d["version"] for k, d in self.dists.items()}

    def pins(self, skip: set[str] = frozenset()) -> list[str]:
        """`name==version` of every distribution installed from an index (URL installs cannot be re-fetched)."""
        return [f"{d['name']}=={d['version']}" for k, d in sorted(self.dists.items())
                if k not in skip and not d.get("direct") and _pinnable(d)]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.versions(), sort_keys=True).encode()).hexdigest()


def _pinnable(dist: dict) -> bool:
    try:
        valid_name(dist["name"])
        valid_version(dist["version"])
    except ProofError:
        return False
    return True


def read_freeze(python: str, timeout: float = 60) -> Freeze:
    """The exact freeze of `python`, read by that interpreter itself (isolated mode: not from its cwd)."""
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise ProofError(f"{line(python)} is not an executable file")
    with tempfile.TemporaryDirectory(prefix="zenctl-freeze-") as cwd:
        try:
            done = subprocess.run([python, "-I", "-c", _FREEZE], capture_output=True, cwd=cwd, env=clean_env(),
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ProofError(f"{line(python)} did not list its packages within {timeout:g} s") from None
        except OSError as exc:
            raise ProofError(f"{line(python)} cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ProofError(f"{line(python)} could not list its packages: {line(tail[0])[:200]}")
    try:
        data = json.loads(done.stdout[:16 * 1024 * 1024])
        return Freeze(str(data["version"]), str(data["prefix"]), dict(data["dists"]),
                      bool(data.get("externally_managed")))
    except (ValueError, KeyError, TypeError):
        raise ProofError(f"{line(python)} is not a Python zenctl can read packages from") from None


def requirement_problems(files: list[str], freeze: Freeze) -> tuple[list[str], int]:
    """What the target's requirements and constraints files ask that `freeze` no longer gives (file:line, the
    requirement, the version it has); and how many requirements were checked. Markers are judged for the
    freeze's Python."""
    from zenctl.agents.dependency_manager.targets import read_requirements

    major_minor = ".".join(freeze.version.split(".")[:2])
    environment = {"python_version": major_minor, "python_full_version": freeze.version}
    problems, count = [], 0
    for path in files:
        try:
            requirements, constraints = read_requirements(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        for pin in requirements + constraints:
            req = pin.requirement
            if req.marker is not None and not req.marker.evaluate(environment):
                continue
            count += 1
            have = freeze.dists.get(key(req.name), {}).get("version")
            if have is not None and not req.specifier.contains(have, prereleases=True):
                problems.append(f"{pin.where}: {line(str(req))[:120]} but {req.name} would be {have}")
    return problems, count


def import_modules(python: str, names: list[str], timeout: float, workdir: Path) -> tuple[Ran, dict]:
    """Import every top-level module of `names` in a subprocess of `python`; (the run, {name: {modules, errors}})."""
    out = workdir / f"imports-{os.getpid()}-{time.monotonic_ns()}.json"
    ran = run([python, "-I", "-c", _IMPORTS, json.dumps(names), str(out)], timeout, cwd=str(workdir))
    try:
        result = json.loads(out.read_text())
    except (OSError, ValueError):
        result = {}
    finally:
        out.unlink(missing_ok=True)
    return ran, result


def import_problems(ran: Ran, result: dict, names: list[str]) -> list[str]:
    if not ran.ok and not result:
        return [f"the import check exited {ran.code}: {_last(ran.tail)}"]
    problems = []
    for name in names:
        item = result.get(name, {"error": "not checked"})
        if item.get("error"):
            problems.append(f"{name}: {item['error']}")
        for module, error in (item.get("errors") or {}).items():
            problems.append(f"import {module} ({name}): {error}")
    return problems


def _last(tail: str) -> str:
    lines = [t for t in tail.strip().splitlines() if t.strip()]
    return line(lines[-1])[:300] if lines else "no output"


# --- the proof ------------------------------------------------------------------------------------------------
@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""
    tail: str = ""
    code: int | None = 0


@dataclass
class Proof:
    target: str
    python: str
    changes: list[dict]
    ok: bool = False
    failed_step: str | None = None
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0
    freeze_sha256: str = ""
    interpreter: str = ""
    installer: str = ""
    skipped: list[str] = field(default_factory=list)  # URL installs the proof venv could not rebuild

    @property
    def tail(self) -> str:
        failed = next((s for s in self.steps if not s.ok), None)
        return failed.tail if failed else ""

    def as_record(self) -> dict:
        data = asdict(self)
        data["tail"] = self.tail
        return data


def steps_planned(target: Target) -> list[str]:
    """The proof's steps, in the words the preview uses."""
    planned = ["a throwaway venv rebuilt from the target's exact freeze (same Python)",
               "install the candidate", "pip check"]
    if target.requirements or target.constraints:
        planned.append("the requirements and constraints files still hold")
    planned.append("import the upgraded distributions' top-level modules")
    if target.test:
        planned.append(f"test {target.test.describe()}")
    return planned


def prove(target: Target, changes: list[Change], freeze: Freeze | None = None, keep: bool = True) -> Proof:
    """Prove `changes` on a copy of `target`; the proof (also written to the store when `keep`). Never raises for
    what the candidate does; ProofError only when the proof cannot be set up at all."""
    from zenctl.core.timeutil import iso

    start = time.monotonic()
    deadline = start + target.timeout
    store = ensure_store(target.store) if target.store else None
    installer = installer_for(target, store / "cache" if store else None)
    freeze = freeze or read_freeze(target.python)
    proof = Proof(target.name, target.python, [{"name": c.name, "from": c.before, "to": c.after} for c in changes],
                  started=iso(), freeze_sha256=freeze.digest(), interpreter=freeze.version, installer=installer.name)
    proof.skipped = sorted(d["name"] for d in freeze.dists.values() if d.get("direct") or not _pinnable(d))
    moving = {key(c.name) for c in changes}

    def left() -> float:
        return deadline - time.monotonic()

    def step(name: str, ran: Ran, detail: str = "", ok: bool | None = None) -> bool:
        passed = ran.ok if ok is None else ok
        tail = ran.tail if passed or ran.tail.strip() else detail  # a check's own verdict is its output
        proof.steps.append(Step(name, passed, round(ran.seconds, 3), detail, tail, ran.code))
        if not passed:
            proof.failed_step = name
            how = (f"timed out (the proof has {target.timeout:g} s)" if ran.code is None
                   else f"exited {ran.code}: {_last(ran.tail)}")
            proof.reason = detail if ok is not None else f"{detail}: {how}" if detail else how
        return passed

    work = Path(tempfile.mkdtemp(prefix="zenctl-proof-"))  # 0700: only we can reach the venv
    try:
        venv = work / "venv"
        python = str(venv / "bin" / "python")
        if not step("venv", installer.venv(venv, left())):
            return _done(proof, start, store, keep)
        probe = run([python, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], min(30, left()))
        if probe.tail.strip() != freeze.version:
            step("venv", probe, f"the venv runs Python {line(probe.tail.strip())[:40]}, the target "
                                f"{freeze.version}", ok=False)
            return _done(proof, start, store, keep)
        tools = {k for k in SEED if k in freeze.dists and k not in moving}
        pins = freeze.pins(skip=tools)
        if pins:
            ran = installer.install(python, pins, left(), no_deps=True)
            if not step("rebuild", ran, f"{len(pins)} distributions at their installed versions"):
                proof.reason = f"could not rebuild the target's freeze: {_last(ran.tail)}"
                return _done(proof, start, store, keep)
        if tools:  # pip's own tooling, as pip freeze leaves it out: best effort (a private index may lack it)
            ran = installer.install(python, freeze.pins(skip=set(freeze.dists) - tools), min(300, left()),
                                    no_deps=True)
            if not ran.ok:
                proof.skipped += sorted(freeze.dists[k]["name"] for k in tools)
        baseline = check_problems(installer.check(python, min(120, left())))
        others = work / "constraints.txt"
        others.write_text("\n".join(freeze.pins(skip=moving)) + "\n")
        constraints = [str(others), *target.constraints]
        if not step("install", installer.install(python, [c.pin for c in changes], left(), constraints),
                    ", ".join(c.describe() for c in changes)):
            return _done(proof, start, store, keep)
        ran = installer.check(python, min(120, left()))
        new = sorted(check_problems(ran) - baseline)
        if not step("pip check", ran, "; ".join(line(p) for p in new[:5]), ok=not new and ran.code is not None):
            return _done(proof, start, store, keep)
        after = read_freeze(python, min(60, max(left(), 1)))
        wrong = [f"{c.name} is {after.dists.get(key(c.name), {}).get('version', 'not installed')}"
                 for c in changes if after.dists.get(key(c.name), {}).get("version") != c.after]
        if wrong:
            step("install", Ran(1, 0.0, ""), f"installed versions differ: {', '.join(wrong)}", ok=False)
            return _done(proof, start, store, keep)
        if target.requirements or target.constraints:
            problems, count = requirement_problems(target.requirements + target.constraints, after)
            if not step("requirements", Ran(0 if not problems else 1, 0.0, ""),
                        "; ".join(problems[:5]) or f"{count} requirements of the target's files hold",
                        ok=not problems):
                return _done(proof, start, store, keep)
        names = [after.dists[key(c.name)]["name"] for c in changes]
        names += sorted(d["name"] for k, d in after.dists.items() if k not in freeze.dists)
        ran, result = import_modules(python, names, left(), work)
        problems = import_problems(ran, result, names)
        modules = sorted({m for item in result.values() for m in item.get("modules", [])})
        if not step("imports", ran, "; ".join(problems[:5]) if problems else "imported " + ", ".join(modules),
                    ok=not problems):
            return _done(proof, start, store, keep)
        if target.test:
            test = target.test
            argv = [python if a == "{python}" else a for a in test.argv]
            env = clean_env({"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{clean_env()['PATH']}"})
            if not step("test", run(argv, min(test.timeout, left()), test.cwd or str(work), env), test.describe()):
                return _done(proof, start, store, keep)
        proof.ok = True
        return _done(proof, start, store, keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _done(proof: Proof, start: float, store: Path | None, keep: bool) -> Proof:
    proof.seconds = round(time.monotonic() - start, 3)
    if store and keep:
        changes = [Change(c["name"], c["from"], c["to"]) for c in proof.changes]
        try:
            _write_json(store / "proofs" / f"{proof_key(proof.target, changes)}.json", proof.as_record())
        except OSError:
            pass  # the proof's verdict stands; only its record is lost
    return proof


# --- changing a target in place -----------------------------------------------------------------------------
def save_freeze(store: Path, target: str, freeze: Freeze, action: str) -> Path:
    """A copy of the exact freeze before a change, for recovery by hand (`pip install --no-deps -r` it)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", target)[:60]
    path = store / "freezes" / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{safe}-{action}.txt"
    lines = [f"# exact freeze of {target} before {action}; put back with:",
             f"#   PYTHON -m pip install --no-deps -r {path.name}  (then uninstall what is not listed)",
             *freeze.pins()]
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def diff(before: Freeze, after: Freeze) -> dict[str, list]:
    """What moved between two freezes: key -> [name, version before (None: absent), version after (None: gone)]."""
    moved = {}
    for k in set(before.dists) | set(after.dists):
        old, new = before.dists.get(k), after.dists.get(k)
        if (old or {}).get("version") != (new or {}).get("version"):
            moved[k] = [(old or new)["name"], old and old["version"], new and new["version"]]
    return moved


def put_back(installer: Installer, python: str, want: dict[str, list], timeout: float = 600) -> list[str]:
    """Set the distributions in `want` (key -> [name, version or None to remove]) exactly: the previous versions
    reinstalled with --no-deps (from the index, else from the wheel cache offline), the added ones removed.
    Problems, [] when everything is as wanted."""
    deadline = time.monotonic() + timeout
    now = read_freeze(python)
    pins, remove = [], []
    for k, (name, version) in sorted(want.items()):
        current = now.dists.get(k, {}).get("version")
        if version is None and current is not None:
            remove.append(valid_name(now.dists[k]["name"]))
        elif version is not None and current != version:
            pins.append(f"{valid_name(name)}=={valid_version(version)}")
    problems = []
    if pins:
        ran = installer.install(python, pins, deadline - time.monotonic(), no_deps=True)
        if not ran.ok:
            ran = installer.install(python, pins, deadline - time.monotonic(), no_deps=True, offline=True)
        if not ran.ok:
            problems.append(f"reinstalling {', '.join(pins)} failed: {_last(ran.tail)}")
    if remove:
        ran = installer.uninstall(python, remove, deadline - time.monotonic())
        if not ran.ok:
            problems.append(f"removing {', '.join(remove)} failed: {_last(ran.tail)}")
    after = read_freeze(python)
    for k, (name, version) in sorted(want.items()):
        current = after.dists.get(k, {}).get("version")
        if current != version:
            problems.append(f"{name} is {current or 'not installed'}, not {version or 'removed'}")
    return list(dict.fromkeys(problems))
