"""The example agent through the installed zenctl, registered the way zenctl's own agents are: its SPEC joins
the registry's list before the CLI starts. It proposes its own action kind, which is gated by policy, previewed,
applied, audited and rolled back like any other."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAUNCH = ("import sys, zenctl.agents as agents; from zenctl.core import registry; "
          "from tests.agents.example import SPEC; registry.install([*agents.AGENTS, SPEC]); "
          "from zenctl.cli import main; sys.argv[0] = 'zenctl'; main()")

pytestmark = pytest.mark.integration


def example(zenctl, *args: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-c", LAUNCH, *args, "--json"], capture_output=True, text=True,
                          cwd=zenctl.tmp, timeout=60, env={**zenctl.env, "PYTHONPATH": str(ROOT)})
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_example_agent_is_gated_previewed_applied_and_rolled_back(zenctl, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("first\n")
    config = zenctl.config(f"agents:\n  example:\n    path: {target}\n")

    code, preview = example(zenctl, "run", "example", "--dry-run", "-c", str(config))
    assert code == 1 and preview["actions"][0]["status"] == "previewed"
    assert preview["actions"][0]["preview"] == f"append 'zenctl was here' to {target}"
    assert target.read_text() == "first\n"

    code, run = example(zenctl, "run", "example", "-c", str(config))
    action = run["actions"][0]
    assert (action["kind"], action["mode"], action["status"]) == ("example.stamp", "auto", "applied")
    assert code == 0 and target.read_text() == "first\nzenctl was here\n"
    assert run["findings"][0]["evidence"]["runs"] == 2  # its private state: the dry-run counted too

    code, undone = example(zenctl, "rollback", action["id"], "-c", str(config))
    assert code == 0 and undone["actions"][0]["kind"] == "snapshot.restore"
    assert target.read_text() == "first\n"

    gated = zenctl.config(f"agents:\n  example:\n    path: {target}\npolicy:\n  modes:\n    example.stamp: approve\n",
                          "gated.yaml")
    code, waiting = example(zenctl, "run", "example", "-c", str(gated))
    assert waiting["actions"][0]["status"] == "awaiting_approval" and target.read_text() == "first\n"
    code, approved = example(zenctl, "approve", waiting["actions"][0]["approval_id"], "--run", "-c", str(gated))
    assert approved["approval"]["status"] == "executed" and target.read_text() == "first\nzenctl was here\n"
    _, audit = example(zenctl, "audit", "--event", "action.decision")
    assert {e["data"]["kind"] for e in audit["entries"]} == {"example.stamp", "snapshot.restore"}


def test_the_example_agent_is_unknown_to_plain_zenctl(zenctl):
    done = zenctl("run", "example")
    assert done.returncode == 3 and "unknown agent 'example'" in done.stderr
