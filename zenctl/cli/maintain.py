"""`zenctl maintain tmp`: System Health's housekeeping, run now."""

from typing import Annotated

import typer

from zenctl.cli.common import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, show_run


def maintain(task: Annotated[str, typer.Argument(help="What to clean: tmp.", metavar="TASK")],
             config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
             dry_run: DryRunOpt = False) -> None:
    """Run housekeeping now: tmp cleans the configured temporary roots (agents.system_health.tmp). Each cleanup is
    an action, previewed with --dry-run, gated by policy (tmp.* is auto) and audited. Exit codes as for a run."""
    from zenctl.agents.health.maintain import TASKS, MaintainAgent
    from zenctl.core.config import load_config
    from zenctl.core.dispatch import run_instance
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    if task not in TASKS:
        raise UsageError(f"unknown maintenance task {task!r} (known: {', '.join(TASKS)})")
    result = run_instance(MaintainAgent([task]), load_config(config), resolve_db_path(db), dry_run)
    show_run(result, json, quiet)
    if result.error:
        error(result.error)
    raise typer.Exit(result.exit_code)
