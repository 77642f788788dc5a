"""The System Health agent's commands: `zenctl health check`, and `zenctl maintain TASK...` (its housekeeping, run
now). `health_check` is the check itself, without typer (the entry point calls it directly for a plain command
line, see FAST); `commands()` declares both commands for the typer app."""

FORMATS = ("table", "json", "nagios")


def health_check(config: str | None = None, db: str | None = None, json: bool = False, quiet: bool = False,
                 dry_run: bool = False, output: str = "table", prom_textfile: str | None = None) -> int:
    """Run the System Health agent once; the exit code."""
    from zenctl.clikit import error, show_run
    from zenctl.core import dispatch
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    if prom_textfile:
        from zenctl.core.formats import check_writable_target

        problem = check_writable_target(prom_textfile)
        if problem:
            raise UsageError(f"--prom-textfile {problem}")
    db_path = resolve_db_path(db)
    result = dispatch.run_one("system_health", load_config(config, cache=db_path), db_path, dry_run=dry_run)
    code = result.exit_code
    if prom_textfile:
        from zenctl.core.files import write_atomic
        from zenctl.core.formats import prometheus_text

        try:
            write_atomic(prom_textfile, prometheus_text(result))
        except OSError as exc:
            error(f"--prom-textfile {prom_textfile}: {exc.strerror or exc}")
            code = 3
    if output == "nagios":
        from zenctl.core.formats import nagios_line

        print(nagios_line(result))
    else:
        show_run(result, json or output == "json", quiet)
    if result.error:
        error(result.error)
    return code


# For the entry point's typer-free path (zenctl.cli): {command words: (function, options beyond the common ones as
# option -> (parameter, the values it accepts: None any), the positional parameter)}.
FAST = {("health", "check"): (health_check, {"--format": ("output", FORMATS), "--prom-textfile": ("prom_textfile", None)},
                              None)}


def commands() -> list[tuple[str, object]]:
    """The agent's commands for `zenctl --help`, its main one first (the registry's `cli`)."""
    from enum import Enum
    from typing import Annotated

    import typer

    from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, show_run

    app = typer.Typer(help="System Health agent: CPU, load, memory, swap, disk, inodes, services, and file-system "
                           "repairs.", no_args_is_help=True)

    class Format(str, Enum):
        table = "table"
        json = "json"
        nagios = "nagios"

    @app.command("check")
    def check(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
              dry_run: DryRunOpt = False,
              output: Annotated[Format, typer.Option(
                  "--format", help="table, json (as --json), or nagios: one plugin line with perfdata.")] = Format.table,
              prom_textfile: Annotated[str | None, typer.Option(
                  "--prom-textfile", metavar="PATH",
                  help="Also write every check status and metric in Prometheus format to PATH, atomically "
                       "(node_exporter textfile collector).")] = None) -> None:
        """Run the System Health agent once. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN or could not run."""
        raise typer.Exit(health_check(config, db, json, quiet, dry_run, output.value, prom_textfile))

    def maintain(tasks: Annotated[list[str], typer.Argument(help="What to do: tmp, logs, cache, db (one or more).",
                                                            metavar="TASK...")],
                 config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
                 dry_run: DryRunOpt = False) -> None:
        """Run housekeeping now: tmp cleans the temporary roots (agents.system_health.tmp), logs rotates the log sets
        that are due (logs), cache prunes cache directories over their caps (cache), db ends PostgreSQL sessions idle
        in transaction too long (postgres services with reset_idle_after). Each is an action, previewed with
        --dry-run, gated by policy (tmp.*, logs.*, cache.*, db.reset_connections are auto) and audited. Exit codes as
        for a run."""
        from zenctl.agents.health.maintain import TASKS, MaintainAgent
        from zenctl.core.config import load_config
        from zenctl.core.dispatch import run_instance
        from zenctl.core.state import resolve_db_path
        from zenctl.errors import UsageError

        unknown = [task for task in tasks if task not in TASKS]
        if unknown:
            raise UsageError(f"unknown maintenance task {unknown[0]!r} (known: {', '.join(TASKS)})")
        ordered = [task for task in TASKS if task in tasks]
        result = run_instance(MaintainAgent(ordered), load_config(config), resolve_db_path(db), dry_run)
        show_run(result, json, quiet)
        if result.error:
            error(result.error)
        raise typer.Exit(result.exit_code)

    return [("health", app), ("maintain", maintain)]
