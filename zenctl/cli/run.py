"""`zenctl run AGENT | --due`: what cron starts. `run_agents` is the command itself, without typer (the entry
point calls it directly for a plain command line); `command()` is it as typer declares it, for the app."""


def run_agents(agent: str | None = None, due: bool = False, config: str | None = None, db: str | None = None,
               json: bool = False, quiet: bool = False, dry_run: bool = False) -> int:
    """Run one agent once, or every agent that is due; the exit code."""
    from zenctl.clikit import error, print_json, show_run
    from zenctl.core import dispatch
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    if agent is None and not due:
        raise UsageError("name an AGENT or give --due (see 'zenctl run --help')")
    db_path = resolve_db_path(db)
    loaded = load_config(config, cache=db_path)
    if agent is not None:
        result = dispatch.run_one(agent, loaded, db_path, dry_run, only_if_due=due)
        if result is None:
            if json:
                print_json({"status": "ok", "agent": agent, "outcome": "not_due", "run": None})
            elif not quiet:
                print(f"{agent}: not due (or already running); nothing run")
            return 0
        show_run(result, json, quiet)
        if result.error:
            error(result.error)
        return result.exit_code
    outcomes = dispatch.run_due(loaded, db_path, dry_run)
    return _show_due(outcomes, json, quiet)


# For the entry point's typer-free path (zenctl.cli): {command words: (function, options beyond the common ones as
# option -> (parameter, True for a flag), the positional parameter)}.
FAST = {("run",): (run_agents, {"--due": ("due", True)}, "agent")}


def command():
    """`run` as typer declares it."""
    from typing import Annotated

    import typer

    from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt

    from zenctl.core import registry

    agents = ", ".join(registry.available())

    def run(agent: Annotated[str | None, typer.Argument(help=f"Agent to run: {agents}.", show_default=False)] = None,
            due: Annotated[bool, typer.Option("--due", help="Only agents whose interval or schedule is due "
                                                            "(all enabled agents when no AGENT is named).")] = False,
            config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
            dry_run: DryRunOpt = False) -> None:
        """Run one agent once, or with --due every agent that is due (one crontab line: * * * * * zenctl run --due -q).
        An agent with run_as runs as that account when zenctl starts as root. Exit code: the worst status."""
        raise typer.Exit(run_agents(agent, due, config, db, json, quiet, dry_run))

    return run


def _show_due(outcomes, json: bool, quiet: bool) -> int:
    """Print what `run --due` did; return the exit code (the worst run, 3 when an agent could not run)."""
    from zenctl.clikit import error, print_json, worth_printing
    from zenctl.core.agent import EXIT_CODES, worst
    from zenctl.core.timeutil import iso

    runs = []
    if any(o.run for o in outcomes):
        from zenctl.core.runtime import from_json  # with nothing run, the runtime (and psutil) is never imported

        runs = [from_json(o.run) for o in outcomes if o.run]
    status = worst([r.status for r in runs] + ["unknown" for o in outcomes if o.outcome == "error"])
    if json:
        print_json({"status": status, "agents": [
            {"agent": o.agent, "outcome": o.outcome, "reason": o.reason,
             "next_due": iso(o.next_due) if o.next_due and o.outcome == "not_due" else None, "run": o.run}
            for o in outcomes]})
        return EXIT_CODES[status]
    for result in runs:
        if worth_printing(result, quiet):
            from zenctl.core.render import render_run  # rich costs ~50 ms: only when there is something to show

            render_run(result)
    for o in outcomes:
        if o.outcome == "error":
            error(f"{o.agent}: {o.reason}")
        elif not quiet and o.outcome != "ran":
            when = f"; next due {iso(o.next_due)}" if o.next_due and o.outcome == "not_due" else ""
            print(f"{o.agent}: {o.outcome.replace('_', ' ')} ({o.reason}{when})")
    return EXIT_CODES[status]
