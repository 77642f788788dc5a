"""A validated config kept in the state, so that a cron tick whose config did not change skips YAML and pydantic
(importing and building the models is most of what a tick used to cost).

The entry is the validated config as JSON (`model_dump(mode="json")`), with the file's key lines and the
environment variables that set keys, under a key that covers everything validation depends on: the file's path
and bytes, the values of the seed's environment variables, the accounts database (the `su` and `run_as` names are
checked against it), zenctl's code and installed packages, the agents the registry holds, and Python's version.
Anything else changes nothing a validation could see. One row per account in `agent_state` (owner `zenctl`,
which no agent may be called, since registry names are section names and `zenctl` is not one), sealed with the
account's key (core.seals): the state is group-writable, and a config root acts on must be one root validated.
Any problem reading or writing the entry is a miss: the config is then validated as before.
"""

import hashlib
import json
import os
import sqlite3
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


def get(state_path: Path, path: Path | None, wanted: str) -> dict | None:
    """The entry stored under key `wanted` by this account, or None (none, another key, not sealed by this
    account, unreadable)."""
    from zenctl.core.state import open_state

    try:
        state = open_state(state_path, create=False)
    except (StateError, OSError):
        return None
    if state is None:
        return None
    try:
        row = state.conn.execute("SELECT value FROM agent_state WHERE agent = ? AND key = ?",
                                 (OWNER, _row_key(path))).fetchone()
    except sqlite3.Error:
        return None
    finally:
        state.close()
    try:
        stored = json.loads(row[0]) if row else None
        if not isinstance(stored, dict) or stored.get("key") != wanted or not isinstance(stored.get("body"), str):
            return None
        if seals.signer(state_path, OWNER, (wanted, stored["body"]), stored.get("seal")) != os.geteuid():
            return None
        body = json.loads(stored["body"])
        return {"config": body["config"], "lines": _pairs(body["lines"]), "env": _pairs(body["env"])}
    except (ValueError, KeyError, TypeError):
        return None


def put(state_path: Path, path: Path | None, wanted: str, config: dict, lines: dict[KeyPath, int],
        env: dict[KeyPath, str]) -> None:
    """Keep a config validated now under key `wanted`, in a state that exists (best effort: a state that cannot be
    written only costs the next run a validation)."""
    import time

    from zenctl.core.state import open_state
    from zenctl.core.timeutil import iso

    body = json.dumps({"config": config, "lines": [[list(k), v] for k, v in lines.items()],
                       "env": [[list(k), v] for k, v in env.items()]}, separators=(",", ":"))
    try:
        if not os.path.isfile(state_path):
            return  # creating the state is the run's, after its checks (who shares it, where it is)
        sealed = seals.seal(state_path, OWNER, (wanted, body))
        state = open_state(state_path, create=False) if sealed else None
        if state is None:
            return
        try:
            with state.write() as conn:
                conn.execute(
                    "INSERT INTO agent_state (agent, key, value, updated) VALUES (?, ?, ?, ?) ON CONFLICT (agent, key) "
                    "DO UPDATE SET value = excluded.value, updated = excluded.updated",
                    (OWNER, _row_key(path), json.dumps({"key": wanted, "body": body, "seal": sealed}),
                     iso(time.time())))
        finally:
            state.close()
    except (StateError, OSError, sqlite3.Error):
        return


def _row_key(path: Path | None) -> str:
    """One row per account and config file: alternating configs (a test run beside cron's) do not evict each
    other, and the rows stay as few as the files root validates."""
    where = hashlib.sha256(str(path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:16] if path else "-"
    return f"config:{os.geteuid()}:{where}"


def _pairs(items: list) -> dict:
    return {tuple(k): v for k, v in items}
