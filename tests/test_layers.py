"""The house's layers, checked on every test run: entry point, agents, shared packages, core; no agent imports
another (import-linter's contracts in pyproject.toml), no import cycle anywhere, and core and the CLI kit never
name an agent (they read the registry)."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_import_cycles():
    graph = grimp.build_graph("zenctl")
    cycles = [(a, b) for a in sorted(graph.modules) for b in graph.find_modules_directly_imported_by(a)
              if graph.chain_exists(importer=b, imported=a)]
    assert not cycles, f"import cycles (each edge shown once per direction): {cycles[:5]}"


def test_core_names_no_agent():
    """No string that is an agent's name, and no attribute by that name, in core's code (examples in docstrings
    and field examples, like `system_health:*`, are text for people, not code that picks an agent)."""
    from zenctl.core import registry

    names = set(registry.names())
    offenders = []
    for path in sorted((ROOT / "zenctl" / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Constant) and node.value in names) or (
                    isinstance(node, ast.Attribute) and node.attr in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
