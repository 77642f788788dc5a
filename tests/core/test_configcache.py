"""The validated config kept in the state (core.configcache): a tick whose config, environment and code did not
change reads it instead of importing YAML and pydantic; anything that could change a validation misses, and a
forged entry is never used."""

import json
import os
from pathlib import Path

from tests.conftest import CALM
from zenctl.core import configcache


def imports(done) -> set[str]:
    """The top-level modules a run imported (PYTHONPROFILEIMPORTTIME's lines on stderr)."""
    return {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
            if line.startswith("import time:")}


def check(zenctl, *args, env=None):
    return zenctl("health", "check", "--json", *args, env={"PYTHONPROFILEIMPORTTIME": "1", **(env or {})})


def threshold(done, check: str = "cpu") -> float:
    return next(f for f in json.loads(done.stdout)["findings"] if f["check"] == check)["threshold"]


def entry_files(zenctl) -> list:
    """The kept configs: files in the account's private directory beside the state, never rows of the state."""
    return sorted(Path(f"{zenctl.db}.keys", f"{os.geteuid()}.used").glob("config-*.json"))


def entries(zenctl) -> list[dict]:
    return [json.loads(f.read_text()) for f in entry_files(zenctl)]


def test_an_unchanged_config_skips_yaml_and_pydantic_with_the_same_result(zenctl):
    zenctl.config(CALM)
    first = check(zenctl)  # creates the state: nothing kept yet (the run makes the state, after its checks)
    second = check(zenctl)  # validates and keeps it
    third = check(zenctl)
    assert first.returncode == second.returncode == third.returncode == 0, third.stderr
    assert {"yaml", "pydantic"} <= imports(second)
    assert not {"yaml", "pydantic"} & imports(third)
    assert threshold(second) == threshold(third) == 100
    assert len(entries(zenctl)) == 1


def test_a_changed_file_or_environment_is_validated_again(zenctl):
    config = zenctl.config(CALM)
    for _ in range(2):
        check(zenctl)
    config.write_text(CALM.replace("load_threshold: 1000\n    load_warning: 1000", "load_threshold: 999\n    load_warning: 999"))
    changed = check(zenctl)
    assert "pydantic" in imports(changed) and threshold(changed, "load") == 999
    config.write_text(CALM.replace("    cpu_threshold: 100\n", "    cpu_threshold: 101\n"))
    bad = check(zenctl)
    assert bad.returncode == 3 and "zenctl: zenctl.yaml:3: agents.system_health.cpu_threshold: Input should be less" in bad.stderr, bad.stderr
    config.write_text(CALM)
    check(zenctl)
    off = check(zenctl, env={"AGENT_SYSTEM_HEALTH_ENABLED": "false"})
    assert "pydantic" in imports(off)
    wrong = check(zenctl, env={"MAX_AUTO_REPAIRS_PER_HOUR": "many"})
    assert wrong.returncode == 3 and "environment variable MAX_AUTO_REPAIRS_PER_HOUR='many'" in wrong.stderr


def test_secrets_of_the_config_never_reach_the_state(zenctl):
    """The state is readable by the agents' group; the kept config (alert keys, DSNs) is the account's alone."""
    zenctl.config(CALM + "alerts:\n  pagerduty:\n    routing_key: s3cr3t-routing-key\n")
    for _ in range(3):
        check(zenctl)
    for part in zenctl.db.parent.glob(f"{zenctl.db.name}*"):  # the file, its WAL and shared memory
        assert not part.is_file() or b"s3cr3t-routing-key" not in part.read_bytes(), part
    (path,) = entry_files(zenctl)
    st = path.stat()
    assert st.st_mode & 0o077 == 0 and path.parent.stat().st_mode & 0o077 == 0 and "s3cr3t" in path.read_text()


def test_a_forged_or_garbled_entry_is_never_used(zenctl):
    zenctl.config(CALM)
    for _ in range(2):
        check(zenctl)
    (entry,) = entries(zenctl)
    body = json.loads(entry["body"])
    body["config"]["agents"]["system_health"]["cpu_threshold"] = 1  # what a group member might want root to see
    forged = dict(entry, body=json.dumps(body))
    (path,) = entry_files(zenctl)
    for value in (json.dumps(forged), "{not json", json.dumps({**entry, "seal": None}), "[" * 100_000,
                  json.dumps({**entry, "seal": 1})):
        path.write_text(value)
        done = check(zenctl)
        assert done.returncode == 0 and "pydantic" in imports(done) and threshold(done) == 100
    assert not {"yaml", "pydantic"} & imports(check(zenctl))  # the entry was kept again, sealed


def test_the_file_is_checked_for_trust_on_every_run(zenctl):
    config = zenctl.config(CALM)
    for _ in range(2):
        check(zenctl)
    os.chmod(config, 0o666)
    done = check(zenctl)
    assert done.returncode == 3 and "writable" in done.stderr, done.stderr


def test_no_config_field_is_hidden_by_a_view_method():
    """A field named like a dict method (`items`, `keys`, `copy`...) would read as the method on the view."""
    from typing import get_args

    from pydantic import BaseModel

    from zenctl.core.configmodels import Config

    taken = set(dir(configcache.ConfigView))
    seen, todo, clashes = set(), [Config], []
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if name in taken:
                clashes.append(f"{model.__name__}.{name}")
            stack = [field.annotation]
            while stack:
                kind = stack.pop()
                if isinstance(kind, type) and issubclass(kind, BaseModel):
                    todo.append(kind)
                stack.extend(get_args(kind))  # list[X], X | None, Annotated[Union[...], ...]
    assert len(seen) > 10 and not clashes, clashes


def test_the_view_reads_like_the_model():
    view = configcache.view({"agents": {"a": {"x": 1, "items": [{"y": 2}]}}, "policy": {"modes": {"fs.*": "auto"}}})
    assert view.agent("a").x == 1 and view.agents.a["items"][0].y == 2
    assert dict(view.policy.modes.items()) == {"fs.*": "auto"} and view.policy.modes.get("x") is None
    assert view.model_dump() == {"agents": {"a": {"x": 1, "items": [{"y": 2}]}}, "policy": {"modes": {"fs.*": "auto"}}}
    try:
        view.agents.a.x = 2
    except AttributeError:
        pass
    else:
        raise AssertionError("the view must be read-only")
