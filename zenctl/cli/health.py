"""`zenctl health ...`: the System Health agent."""

from enum import Enum
from typing import Annotated

import typer

from zenctl.cli.common import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, show_run

app = typer.Typer(help="System Health agent: CPU, load, memory, swap, disk, inodes, services, and file-system repairs.",
                  no_args_is_help=True)


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
    from zenctl.core import dispatch
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    if prom_textfile:
        from zenctl.core.formats import check_writable_target

        problem = check_writable_target(prom_textfile)
        if problem:
            raise UsageError(f"--prom-textfile {problem}")
    result = dispatch.run_one("system_health", load_config(config), resolve_db_path(db), dry_run=dry_run)
    code = result.exit_code
    if prom_textfile:
        from zenctl.core.files import write_atomic
        from zenctl.core.formats import prometheus_text

        try:
            write_atomic(prom_textfile, prometheus_text(result))
        except OSError as exc:
            error(f"--prom-textfile {prom_textfile}: {exc.strerror or exc}")
            code = 3
    if output == Format.nagios:
        from zenctl.core.formats import nagios_line

        print(nagios_line(result))
    else:
        show_run(result, json or output == Format.json, quiet)
    if result.error:
        error(result.error)
    raise typer.Exit(code)
