"""The Data Validation agent's commands: `zenctl data check` (the agent run), `zenctl data validate PATH` and
`zenctl data infer PATH` (one-off, on any file, outside the agent's config). `data_check` is the check itself,
without typer (the entry point's typer-free path calls it for a plain command line, see FAST)."""


def data_check(config: str | None = None, db: str | None = None, json: bool = False, quiet: bool = False,
               dry_run: bool = False, dataset: str | None = None) -> int:
    """Run the Data Validation agent once (every dataset, or one); the exit code."""
    from zenctl.agents.data_validator.agent import DataValidatorAgent
    from zenctl.clikit import error, show_run
    from zenctl.core import dispatch
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    loaded = load_config(config)
    if dataset is not None:
        names = [d.name for d in loaded.config.agents.data_validator.datasets]
        if dataset not in names:
            raise UsageError(f"--dataset {dataset!r}: no such dataset in agents.data_validator.datasets"
                             + (f" (known: {', '.join(names)})" if names else " (none configured)"))
    dispatch.check_available("data_validator")
    result = dispatch.run_instance(DataValidatorAgent(only=dataset), loaded, resolve_db_path(db), dry_run)
    show_run(result, json, quiet)
    if result.error:
        error(result.error)
    return result.exit_code


FAST = {("data", "check"): (data_check, {"--dataset": ("dataset", None)}, None)}


def commands() -> list[tuple[str, object]]:
    """The agent's commands for `zenctl --help` (the registry's `cli`)."""
    from typing import Annotated

    import typer

    from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt

    app = typer.Typer(help="Data Validation agent: datasets against Table Schemas, quality checks over time, "
                           "repairs with undo, schema changes with approval.", no_args_is_help=True)

    @app.command("check")
    def check(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
              dry_run: DryRunOpt = False,
              dataset: Annotated[str | None, typer.Option(
                  "--dataset", metavar="NAME", help="Check only this dataset (its name in the config).")] = None
              ) -> None:
        """Run the Data Validation agent once: validate, check quality, propose repairs and migrations. Exit 0 OK,
        1 WARNING, 2 CRITICAL, 3 UNKNOWN or could not run."""
        raise typer.Exit(data_check(config, db, json, quiet, dry_run, dataset))

    @app.command("validate")
    def validate(path: Annotated[str, typer.Argument(help="A data file (CSV, TSV, JSON Lines, JSON), a glob, or a "
                                                          "Data Package descriptor (datapackage.json).")],
                 schema: Annotated[str | None, typer.Option(
                     "--schema", metavar="FILE", help="Table Schema (JSON or YAML); none: inferred.")] = None,
                 json: JsonOpt = False, quiet: QuietOpt = False,
                 limit: Annotated[int, typer.Option(
                     "--limit", metavar="N", min=1, help="Errors listed per file (counts stay exact).")] = 1000
                 ) -> None:
        """Validate data against a Table Schema, as `frictionless validate` does (its error codes, row and field
        numbers; --json in its shape). Exit 0 valid, 2 invalid, 3 could not read."""
        from zenctl.agents.data_validator.commands import data_validate

        raise typer.Exit(data_validate(path, schema=schema, json=json, limit=limit, quiet=quiet))

    @app.command("infer")
    def infer(path: Annotated[str, typer.Argument(help="A data file to infer the schema of.")],
              output: Annotated[str | None, typer.Option(
                  "--output", "-o", metavar="FILE", help="Write the schema here instead of printing it.")] = None
              ) -> None:
        """Infer a Table Schema from a data file (field names, types, formats). Exit 0, or 3 could not read."""
        from zenctl.agents.data_validator.commands import data_infer

        raise typer.Exit(data_infer(path, output=output))

    return [("data", app)]
