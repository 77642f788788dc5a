"""`zenctl config validate|show|schema|example`."""

import os
import sys

import typer

from zenctl.clikit import ConfigOpt, JsonOpt, QuietOpt, error, print_json

app = typer.Typer(help="Check, show and document the configuration.", no_args_is_help=True)


@app.command("validate")
def validate(config: ConfigOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Check the config file and the environment overrides; every problem on its own line, exit 3 if any."""
    from zenctl.core.config import check_config

    path, problems = check_config(config, dict(os.environ))
    name = str(path) if path else "embedded defaults"
    if json:
        print_json({"valid": not problems, "file": str(path) if path else None, "errors": problems})
    elif problems:
        for problem in problems:
            error(problem)
    elif not quiet:
        print(f"{name}: valid")
    raise typer.Exit(3 if problems else 0)


@app.command("show")
def show(config: ConfigOpt = None, json: JsonOpt = False) -> None:
    """Print every effective value and where it came from: default, file:line, or env:VAR."""
    from zenctl.core.config import load_config
    from zenctl.core.config_docs import flatten

    from zenctl.core.policy import guarded_automatic

    loaded = load_config(config)
    for key in guarded_automatic(loaded.config):  # the seed asks a person for these; say that this config does not
        error(f"policy.modes.{key} is auto ({loaded.source(('policy', 'modes', key))}): {key} changes apply "
              "without approval, explicitly")
    rows = flatten(loaded.config.model_dump(mode="json"))
    if json:
        print_json({"file": str(loaded.path) if loaded.path else None,
                    "config": loaded.config.model_dump(mode="json"),
                    "sources": {".".join(map(str, key)): loaded.source(key) for key, _ in rows}})
        return
    from rich.table import Table

    from zenctl.core.render import console

    table = Table(title=f"Effective configuration ({loaded.path or 'embedded defaults'})", title_justify="left")
    for column in ("Key", "Value", "Source"):
        table.add_column(column, overflow="fold")
    for key, value in rows:
        table.add_row(".".join(map(str, key)), repr(value) if isinstance(value, str) else str(value),
                      loaded.source(key))
    console().print(table)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the config file (for editors: yaml-language-server)."""
    from zenctl.core.config import Config

    print_json(Config.model_json_schema())


@app.command("example")
def example() -> None:
    """Print a complete config file with every key documented (examples/zenctl.yaml is made by this)."""
    from zenctl.core.config_docs import example_yaml

    sys.stdout.write(example_yaml())
