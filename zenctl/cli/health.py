"""`zenctl health ...`: the System Health agent."""

import typer

from zenctl.cli.common import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, show_run

app = typer.Typer(help="System Health agent: CPU, load, memory, swap, disk, inodes, services, and file-system repairs.",
                  no_args_is_help=True)


@app.command("check")
def check(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
          dry_run: DryRunOpt = False) -> None:
    """Run the System Health agent once. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN or could not run."""
    from zenctl.core import dispatch
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path

    result = dispatch.run_one("system_health", load_config(config), resolve_db_path(db), dry_run=dry_run)
    show_run(result, json, quiet)
    if result.error:
        error(result.error)
    raise typer.Exit(result.exit_code)
