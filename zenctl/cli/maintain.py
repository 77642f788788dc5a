"""`zenctl maintain TASK...`: System Health's housekeeping, run now."""

from typing import Annotated

import typer

from zenctl.cli.common import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, show_run


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
