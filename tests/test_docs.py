"""Docs the tests keep honest: the example config, the completions, and README coverage of every command."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ZENCTL
from zenctl.core.config import Config
from zenctl.core.config_docs import example_yaml, flatten

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_current_and_valid():
    text = (ROOT / "examples" / "zenctl.yaml").read_text()
    assert text == example_yaml(), "regenerate: zenctl config example > examples/zenctl.yaml"
    Config.model_validate(yaml.safe_load(text))


def test_example_documents_every_key():
    text = (ROOT / "examples" / "zenctl.yaml").read_text()
    from zenctl.agents.health.config import PathSpec

    keys = {str(key[-1]) for key, _ in flatten(Config().model_dump())} | set(PathSpec.model_fields)
    missing = [k for k in keys if not re.search(rf"^\s*#?\s*(- )?{re.escape(k)}:", text, re.M)]
    assert not missing


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions_are_current(shell):
    generated = subprocess.run([ZENCTL, "completion", shell], capture_output=True, text=True, check=True).stdout
    assert (ROOT / "completions" / f"zenctl.{shell}").read_text() == generated, \
        f"regenerate: zenctl completion {shell} > completions/zenctl.{shell}"


def test_bash_completion_completes_subcommands():
    script = ROOT / "completions" / "zenctl.bash"
    out = subprocess.run(["bash", "-c", f'source {script}; COMP_WORDS=(zenctl health ""); COMP_CWORD=2; _zenctl; '
                          'echo "${COMPREPLY[@]}"'], capture_output=True, text=True).stdout
    assert "check" in out.split()


def test_readme_covers_every_command():
    readme = (ROOT / "README.md").read_text()
    commands = ["zenctl health check", "zenctl audit", "zenctl audit verify", "zenctl status",
                "zenctl config validate", "zenctl config show", "zenctl config schema", "zenctl config example",
                "zenctl completion", "zenctl run", "zenctl run --due", "zenctl schedule show",
                "zenctl schedule install", "zenctl schedule remove"]
    assert [c for c in commands if c not in readme] == []
    for option in ("--dry-run", "--json", "--quiet", "--config", "--db", "--last", "--since", "--until",
                   "--agent", "--event"):
        assert option in readme
