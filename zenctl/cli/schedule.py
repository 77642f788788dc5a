"""`zenctl schedule show|install|remove`: the crontab lines that run the agents."""

import typer

from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, print_json

app = typer.Typer(help="Crontab lines that run the agents: show them, install them, remove them.",
                  no_args_is_help=True)
SystemOpt = typer.Option(False, "--system", help="Use /etc/cron.d/zenctl (root; a user column per agent: its run_as) "
                                          "instead of your own crontab.")


@app.command("show")
def show(system: bool = SystemOpt, config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False) -> None:
    """Print the crontab lines 'install' would put in place (changes nothing)."""
    from zenctl.core import schedule
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path

    text, notes = schedule.show(load_config(config), resolve_db_path(db), system)
    if json:
        print_json({"system": system, "lines": text.splitlines(), "notes": notes})
        return
    print(text, end="")
    for note in notes:
        print(f"# not scheduled: {note}")


@app.command("install")
def install(system: bool = SystemOpt, config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False,
            quiet: QuietOpt = False, dry_run: DryRunOpt = False) -> None:
    """Write the lines into your crontab (a marked block; every other line kept) or /etc/cron.d/zenctl.
    Idempotent. With --dry-run, print the diff only."""
    _change(False, system, config, db, json, quiet, dry_run)


@app.command("remove")
def remove(system: bool = SystemOpt, config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False,
           quiet: QuietOpt = False, dry_run: DryRunOpt = False) -> None:
    """Take zenctl's lines out of your crontab (or remove /etc/cron.d/zenctl). With --dry-run, print the diff."""
    _change(True, system, config, db, json, quiet, dry_run)


def _change(removing: bool, system: bool, config, db, json: bool, quiet: bool, dry_run: bool) -> None:
    from zenctl.core.cron_kinds import diff
    from zenctl.core import schedule
    from zenctl.core.config import load_config
    from zenctl.core.runtime import as_json
    from zenctl.core.state import open_state, resolve_db_path

    loaded = load_config(config)
    db_path = resolve_db_path(db)
    plan = schedule.plan(loaded, db_path, system, removing)
    result = schedule.apply(loaded, open_state(db_path), plan, system, dry_run) if plan.changed else None
    failed = result is not None and result.status != "ok"
    if json:
        print_json({"target": plan.target, "changed": plan.changed, "dry_run": dry_run,
                    "diff": diff(plan.before, plan.after, plan.target), "notes": plan.notes,
                    "run": as_json(result) if result else None})
    elif dry_run or not quiet or failed:
        print(diff(plan.before, plan.after, plan.target))
        verb = "would be" if dry_run else "is"
        print(f"{plan.target}: {'no change' if not plan.changed else verb + ' updated'}"
              + (f" (action {result.actions[0].id})" if result and result.actions else ""))
        for note in plan.notes:
            print(f"not scheduled: {note}")
    for action in (result.actions if result else []):
        if action.status == "failed":
            error(f"{plan.target}: {action.message}")
    raise typer.Exit(2 if failed else 0)
