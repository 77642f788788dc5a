"""A validated config kept beside the state, so that a cron tick whose config did not change skips YAML and pydantic
(importing and building the models is most of what a tick used to cost).

The entry is the validated config as JSON (`model_dump(mode="json")`), with the file's key lines and the
environment variables that set keys, under a key that covers everything validation depends on: the file's path
and bytes, the values of the seed's environment variables, the accounts database (log sets' `su` names are
checked against it), zenctl's code and installed packages, the agents the registry holds, and Python's version.
Anything else changes nothing a validation could see. One file per account and config file in the account's
private directory beside the state (`<state>.keys/UID.used/config-*.json`, 0600): the entry holds the whole config,
secrets included, so it never goes into the state, which the agents' group can read; and it is sealed with the
account's key (core.seals), so a config root acts on is one root validated. Any problem reading or writing the
entry is a miss: the config is then validated as before.
"""

import contextlib
import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from zenctl.core import seals
from zenctl.core.yamlsource import KeyPath
from zenctl.errors import StateError

OWNER = "zenctl"
FORMAT = 1  # bump when the entry's layout or the view's meaning changes


class View(dict):
    """A validated config section, read-only by attribute (`section.cpu_threshold`) as the models read, and a
    dict (`policy.modes.items()`). tests/core/test_configcache.py checks that no field of any model is named
    like a dict method, which would hide it."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the config is read-only ({name})")

    def model_dump(self, mode: str = "json") -> dict:
        """The plain data, as the model's `model_dump(mode="json")` gives it."""
        return json.loads(json.dumps(self))


class ConfigView(View):
    """The whole configuration (the root), with the `Config` model's one method."""

    __slots__ = ()

    def agent(self, name: str) -> View:
        """The config section of agent `name`."""
        return self["agents"][name]


def view(data: dict) -> ConfigView:
    return ConfigView({key: _wrap(value) for key, value in data.items()})


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return View({key: _wrap(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    return value


def key(path: Path | None, text: str | None, environ: dict[str, str], variables: list[str]) -> str:
    """What a validation of this config depends on, hashed; `variables`: the environment variables that set keys."""
    from zenctl.core import registry

    digest = hashlib.sha256()
    for part in (
        FORMAT, sys.version, os.geteuid(),
        str(path.absolute()) if path else "", text,
        sorted((var, environ.get(var, "")) for var in variables),
        [repr(spec) for spec in registry.specs()],
        _stamp([Path("/etc/passwd"), Path("/etc/group")]),
        _code_stamp(),
    ):
        digest.update(json.dumps(part, default=str).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


def _stamp(paths: list[Path]) -> list:
    out = []
    for path in paths:
        try:
            info = os.stat(path)
            out.append((str(path), info.st_ino, info.st_size, info.st_mtime_ns))
        except OSError:
            out.append((str(path), None))
    return out


def _code_stamp() -> list:
    """zenctl's source files (a working tree changes without a new version) and the directories packages are
    installed into (an upgraded pydantic or croniter may judge the same file differently)."""
    import zenctl

    files = []
    for root, dirs, names in os.walk(os.path.dirname(zenctl.__file__)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files.extend(os.path.join(root, name) for name in sorted(names) if name.endswith(".py"))
    return _stamp([Path(f) for f in files]) + _stamp([Path(p) for p in sys.path if p.endswith("-packages")])


MAX_ENTRY_BYTES = 8 << 20  # a config is at most 1 MiB of YAML (yamlsource.MAX_BYTES); its dump stays well below


def _private_dir(state_path: Path) -> Path | None:
    """This account's private directory beside the state (`<state>.keys/UID.used`, 0700, made by root for every
    account it runs as; see core.seals), or None when it is missing or not this account's alone. The entry holds the
    whole config, secrets included (alert keys, DSNs, index credentials), so it never goes into the state, which
    the agents' group can read."""
    if not os.path.isfile(state_path):
        return None  # creating the state (and its keys) is the run's, after its checks
    seals.ensure_own(state_path)
    directory = seals.keys_dir(state_path) / f"{os.geteuid()}.used"
    try:
        st = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return directory


def _entry_name(path: Path | None) -> str:
    """One entry per config file: alternating configs (a test run beside cron's) do not evict each other."""
    where = hashlib.sha256(str(path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:16] if path else "-"
    return f"config-{where}.json"


def get(state_path: Path, path: Path | None, wanted: str) -> dict | None:
    """The entry this account stored under key `wanted`, or None (none, another key, not sealed by this account,
    not this account's file, unreadable: anything wrong is a miss)."""
    try:
        directory = _private_dir(state_path)
        if directory is None:
            return None
        fd = os.open(directory / _entry_name(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1 or st.st_mode & 0o077:
                return None
            raw = handle.read(MAX_ENTRY_BYTES + 1)
        if len(raw) > MAX_ENTRY_BYTES:
            return None
        stored = json.loads(raw)
        if (not isinstance(stored, dict) or stored.get("key") != wanted or not isinstance(stored.get("body"), str)
                or not isinstance(stored.get("seal"), str)):
            return None
        if seals.signer(state_path, OWNER, (wanted, stored["body"]), stored["seal"]) != os.geteuid():
            return None
        body = json.loads(stored["body"])
        return {"config": body["config"], "lines": _pairs(body["lines"]), "env": _pairs(body["env"])}
    except Exception:  # noqa: BLE001 - a cache: whatever is wrong with it (even a RecursionError) is a miss
        return None


def put(state_path: Path, path: Path | None, wanted: str, config: dict, lines: dict[KeyPath, int],
        env: dict[KeyPath, str]) -> None:
    """Keep a config validated now under key `wanted`, in this account's private directory (best effort: one
    that cannot be written only costs the next run a validation). Written to a new file and renamed into place."""
    body = json.dumps({"config": config, "lines": [[list(k), v] for k, v in lines.items()],
                       "env": [[list(k), v] for k, v in env.items()]}, separators=(",", ":"))
    try:
        directory = _private_dir(state_path)
        sealed = seals.seal(state_path, OWNER, (wanted, body)) if directory is not None else None
        if sealed is None:
            return
        final = directory / _entry_name(path)
        temporary = directory / f".{final.name}.{os.urandom(4).hex()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"key": wanted, "body": body, "seal": sealed}, handle)
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except (StateError, OSError, ValueError):
        return


def _pairs(items: list) -> dict:
    return {tuple(k): v for k, v in items}
