"""`zenctl health ...`: the System Health agent."""

import typer

from zenctl.cli.common import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, open_db, print_json

app = typer.Typer(help="System Health agent: CPU, load, memory, swap, disk, inodes, services, and file-system repairs.",
                  no_args_is_help=True)


@app.command("check")
def check(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
          dry_run: DryRunOpt = False) -> None:
    """Run the System Health agent once. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN or could not run."""
    from zenctl.agents import get_agent
    from zenctl.core.config import load_config
    from zenctl.core.runtime import as_json, run_agent

    loaded = load_config(config)
    state = open_db(db)
    result = run_agent(get_agent("system_health"), loaded, state, dry_run=dry_run)
    changed = any(a.status in ("applied", "failed") for a in result.actions)
    if quiet and result.status == "ok" and not changed:
        pass
    elif json:
        print_json(as_json(result))
    else:
        from zenctl.core.render import render_run

        render_run(result)
    if result.error:
        error(result.error)
    raise typer.Exit(result.exit_code)
