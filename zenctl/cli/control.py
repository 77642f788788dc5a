"""`zenctl stop`, `zenctl resume`, `zenctl rollback`: a person's hand on the whole host."""

import typer

from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, error, open_db, print_json


def stop(emergency: bool = typer.Option(False, "--emergency", help="Also terminate running agent runs (SIGTERM, "
                                                                    "then SIGKILL after 5 s)."),
         reason: str = typer.Option("no reason given", "--reason", metavar="TEXT", help="Why; audited."),
         db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Stop all agents: no new run starts, and running ones apply nothing more, until 'zenctl resume'."""
    from zenctl.core import control

    terminated = control.stop(open_db(db), emergency, reason)
    if json:
        print_json({"stopped": True, "emergency": emergency, "reason": reason, "terminated": terminated})
    elif not quiet:
        print(f"zenctl {'emergency-' if emergency else ''}stopped: {reason}")
        from zenctl.core.untrusted import line

        for run in terminated:  # rows of the state file: printed with control characters escaped
            print(line(f"  terminated {run['agent']} run {run['run_id']} (pid {run['pid']}, {run['how']})"))
        print("review: zenctl audit --last 1h   re-enable: zenctl resume [--notify-only-runs N]")


def resume(agent: str | None = typer.Option(None, "--agent", help="Re-enable only this agent."),
           notify_only_runs: int = typer.Option(0, "--notify-only-runs", min=0, metavar="N",
                                                help="The first N runs of each resumed agent plan but apply nothing."),
           config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Re-enable agents after stop (and, without --agent, leave safe mode)."""
    from zenctl.core import alerts, control
    from zenctl.core.config import load_config

    loaded = load_config(config)
    state = open_db(db)
    cleared = control.resume(state, agent, notify_only_runs)
    if "safe mode" in cleared:
        import time

        with state.write():
            alerts.queue(state, loaded.config, "zenctl:safe_mode", "resolve", "ok",
                         f"zenctl safe mode left by {control.whoami()}", {}, None, time.time())
        alerts.deliver(state, loaded.config, None)
    if json:
        print_json({"resumed": agent or "all", "cleared": cleared, "notify_only_runs": notify_only_runs})
    elif not quiet:
        print(f"resumed {agent or 'all agents'}" + (f"; cleared {', '.join(cleared)}" if cleared else "")
              + (f"; the next {notify_only_runs} run(s) of each apply nothing" if notify_only_runs else ""))


def rollback(action_id: str | None = typer.Argument(None, metavar="[ACTION_ID]", help="The action to undo."),
             since: str | None = typer.Option(None, "--since", metavar="WHEN",
                                              help="Undo every reversible action since then (1h, or ISO 8601), "
                                                   "newest first."),
             force: bool = typer.Option(False, "--force", help="Restore even if the path changed since the action."),
             config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
             dry_run: DryRunOpt = False) -> None:
    """Restore what actions changed from their snapshots. Exit 0 all restored, 2 some refused or failed."""
    from zenctl.core.config import load_config
    from zenctl.core.rollback import rollback as do_rollback
    from zenctl.core.runtime import as_json
    from zenctl.core.timeutil import parse_when

    result = do_rollback(open_db(db), load_config(config), action_id, parse_when(since) if since else None, force,
                         dry_run)
    if json:
        print_json(as_json(result))
    elif not quiet or result.status != "ok":
        from zenctl.core.render import render_run

        if not result.actions and not result.findings:
            print("nothing to roll back")
        else:
            render_run(result)
    for finding in result.findings:
        error(finding.message)
    raise typer.Exit(result.exit_code)
