"""What the Data Validation tests share: a config for one dataset, and running `zenctl data check` on it."""

import json
from pathlib import Path

import yaml

SCHEMA = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
                     {"name": "day", "type": "date"}, {"name": "amount", "type": "number"}]}


def config(zenctl, datasets: list[dict], extra: str = "", name: str = "zenctl.yaml") -> Path:
    text = yaml.safe_dump({"agents": {"data_validator": {"datasets": datasets}}}, sort_keys=False)
    return zenctl.config(text + extra, name)


def check(zenctl, cfg: Path, *args: str) -> tuple[int, dict]:
    done = zenctl("data", "check", "-c", str(cfg), "--json", *args)
    assert done.stdout, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def finding(run: dict, check_name: str) -> dict:
    return next(f for f in run["findings"] if f["check"] == check_name)


def actions(run: dict, kind: str | None = None) -> list[dict]:
    return [a for a in run["actions"] if kind is None or a["kind"] == kind]


def rollback(zenctl, cfg: Path, *args: str) -> tuple[int, dict]:
    done = zenctl("rollback", *args, "-c", str(cfg), "--json")
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def approve_pending(zenctl, cfg: Path) -> dict:
    _, listing = zenctl.json("approvals", "list")
    pending = [a for a in listing["approvals"] if a["status"] == "pending"]
    assert pending, listing
    code, out = zenctl.json("approve", pending[-1]["id"], "--run", "-c", str(cfg))
    return out
