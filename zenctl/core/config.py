"""Configuration: the file lookup order, the seed's environment overrides, validation against the models
(core.configmodels), and where each effective value came from.

`load_config(cache=STATE)` is the cron path: a config whose file, environment and code are unchanged since it was
last validated comes back from the state (core.configcache) as a read-only view, without importing pydantic or
YAML; anything else is read and validated exactly as before, with the same errors at the same file:line.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zenctl.core.yamlsource import KeyPath, parse_yaml, read_config
from zenctl.errors import ConfigError

# The models live in core.configmodels (pydantic); their names stay importable from here for the agents' config
# modules (`from zenctl.core.config import AgentConfig`), loaded on first use only.
_MODEL_NAMES = {"Config", "AgentsConfig", "AgentConfig", "PolicyConfig", "SafeModeConfig", "EscalationConfig",
                "EmailConfig", "PagerDutyConfig", "WebhookConfig", "MaintenanceWindow", "AlertsConfig", "unique",
                "Model", "Mode", "Duration", "CronExpression", "Percent"}


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from zenctl.core import configmodels

        return getattr(configmodels, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def env_overrides() -> dict[str, KeyPath]:
    """The seed's environment variables and the key each one sets."""
    from zenctl.core import registry

    return {
        **{f"AGENT_{name.upper()}_ENABLED": ("agents", name, "enabled") for name in registry.names()},
        "ALERT_EMAIL": ("alerts", "email", "to"),
        "ALERT_PAGERDUTY_ENABLED": ("alerts", "pagerduty", "enabled"),
        "MAX_AUTO_REPAIRS_PER_HOUR": ("policy", "max_auto_repairs_per_hour"),
    }


@dataclass
class LoadedConfig:
    """The effective configuration and where each value came from."""

    config: Any  # a read-only view of the validated Config model (configcache.ConfigView)
    path: Path | None = None
    lines: dict[KeyPath, int] = field(default_factory=dict)
    env: dict[KeyPath, str] = field(default_factory=dict)

    def source(self, key: KeyPath) -> str:
        """`env:VAR`, `file:line`, or `default` for one key path as `config show` lists them."""
        if key in self.env:
            return f"env:{self.env[key]}"
        if key in self.lines:
            return f"{self.path}:{self.lines[key]}"
        return "default"


def candidate_paths(environ: dict[str, str]) -> list[Path]:
    """Implicit lookup order after --config and ZENCTL_CONFIG."""
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [Path("zenctl.yaml"), Path(xdg) / "zenctl" / "zenctl.yaml", Path("/etc/zenctl/zenctl.yaml")]


def find_config(explicit: str | None, environ: dict[str, str]) -> Path | None:
    """The config file to read, or None for embedded defaults. An explicit path must exist."""
    chosen = explicit or environ.get("ZENCTL_CONFIG")
    if chosen:
        return Path(chosen)
    return next((p for p in candidate_paths(environ) if p.is_file()), None)


def _prepare(explicit: str | None, environ: dict[str, str], trusted: bool = True):
    """Read the file (if any) and apply the environment: (path, data, lines, env) ready to validate. `trusted`:
    the config will be acted on, so it must be a file nobody but root or this account could have written."""
    path = find_config(explicit, environ)
    text = read_config(path, trusted) if path is not None else None
    return (path, *_parsed(path, text, environ))


def _parsed(path: Path | None, text: str | None, environ: dict[str, str]):
    data: Any = {}
    lines: dict[KeyPath, int] = {}
    if path is not None and text is not None:
        data, lines = parse_yaml(text, path)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: the config must be a mapping of keys (agents:, policy:, alerts:)")
    return data, lines, _apply_env(data, environ)


def load_config(explicit: str | None = None, environ: dict[str, str] | None = None,
                cache: Path | None = None) -> LoadedConfig:
    """Find, read, override from the environment and validate; ConfigError on the first problem. With `cache`
    (the state file's path), a config validated before under the same key comes back from the state as a
    read-only view (core.configcache), and one validated now is kept there. The config is always such a view of
    the validated data (`model_dump(mode="json")`), cached or not, so every command and every run sees the same
    values in the same types."""
    from zenctl.core import configcache  # no pydantic, no YAML: those only on a miss

    environ = dict(os.environ) if environ is None else environ
    path = find_config(explicit, environ)
    text = read_config(path, True) if path is not None else None  # trust is checked on every run, hit or miss
    key = configcache.key(path, text, environ, list(env_overrides())) if cache is not None else None
    if key is not None:
        entry = configcache.get(cache, path, key)
        if entry is not None:
            return LoadedConfig(configcache.view(entry["config"]), path, entry["lines"], entry["env"])
    data, lines, env = _parsed(path, text, environ)
    from pydantic import ValidationError

    from zenctl.core.configmodels import Config

    try:
        dumped = Config.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        messages = validation_messages(exc, path, lines, env, environ, data)
        more = f" (and {len(messages) - 1} more: run zenctl config validate)" if len(messages) > 1 else ""
        raise ConfigError(messages[0] + more) from None
    if key is not None:
        configcache.put(cache, path, key, dumped, lines, env)
    return LoadedConfig(configcache.view(dumped), path, lines, env)


def check_config(explicit: str | None, environ: dict[str, str]) -> tuple[Path | None, list[str]]:
    """For `config validate`: every problem, one line each (a file that cannot be read raises). Validating acts
    on nothing, so a draft anyone wrote may be checked."""
    from pydantic import ValidationError

    from zenctl.core.configmodels import Config

    path, data, lines, env = _prepare(explicit, environ, trusted=False)
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        return path, validation_messages(exc, path, lines, env, environ, data)
    return path, []


def validation_messages(exc, path: Path | None, lines, env, environ, data=None) -> list[str]:
    """One line per validation problem, each naming file:line (or the variable) and the key."""
    out = []
    for error in exc.errors():
        loc = _without_tags(tuple(error["loc"]), data, error["type"] == "missing")
        value = error.get("input")
        if error["type"].endswith("_type") and isinstance(value, dict) and "type" in value:
            # a union chosen by its `type` key (services): point at that key, with its value
            loc, value = (*loc, "type"), value.get("type") if isinstance(value, dict) else value
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Keys should be strings"):
            message = "keys must be text; YAML reads unquoted yes/no/true/false/on/off and numbers otherwise: quote it"
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            dotted = ".".join(str(p) for p in loc)
        got = "" if isinstance(value, dict) or error["type"] in ("extra_forbidden", "missing") else f" (got {value!r})"
        var = next((env[loc[:d]] for d in range(len(loc), 0, -1) if loc[:d] in env), None)
        if var:
            out.append(f"environment variable {var}={environ.get(var)!r}: {dotted}: {message}")
            continue
        line = next((lines[loc[:d]] for d in range(len(loc), 0, -1) if loc[:d] in lines), None)
        where = f"{path}:{line}" if path and line else (str(path) if path else "embedded defaults")
        out.append(f"{where}: {dotted}: {message}{got}")
    return out


def _without_tags(loc: tuple, data, missing: bool) -> tuple:
    """Drop the union tag pydantic puts after a list index (services.0.http.url -> services.0.url): it is not a
    key of the file. Found by walking the file's data: a name after an index that the item does not have (but the
    last name of a `missing` error is the key the file lacks), or has with a value the path cannot go into (the
    `command` tag of a command check that has a `command` key)."""
    out, node = [], data
    for i, part in enumerate(loc):
        last = i + 1 == len(loc)
        if (isinstance(part, str) and i and isinstance(loc[i - 1], int) and isinstance(node, dict)
                and ((part not in node and not (last and missing))
                     or (not last and not isinstance(node.get(part), (dict, list))))):
            continue
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    return tuple(out)


def _apply_env(data: dict, environ: dict[str, str]) -> dict[KeyPath, str]:
    """Set the keys named by the seed's environment variables; an empty variable counts as unset."""
    applied: dict[KeyPath, str] = {}
    for var, key in env_overrides().items():
        raw = environ.get(var, "").strip()
        if not raw:
            continue
        value: Any = [part.strip() for part in raw.split(",") if part.strip()] if var == "ALERT_EMAIL" else raw
        node = data
        for part in key[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                break  # the file has a non-mapping here; validation reports it
        else:
            node[key[-1]] = value
            applied[key] = var
    return applied
