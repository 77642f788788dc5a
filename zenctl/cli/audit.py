"""`zenctl audit`: read and verify the hash-chained audit log."""

import sys
import time

import typer

from zenctl.clikit import ConfigOpt, DbOpt, JsonOpt, QuietOpt, error, open_db, print_json

app = typer.Typer(help="Read the audit log (every run, finding, decision and result) or verify its hash chain.",
                  invoke_without_command=True)


@app.callback()
def show(
    ctx: typer.Context,
    last: str | None = typer.Option(None, "--last", metavar="DURATION", help="Entries of the last 1h, 30m, 2d..."),
    since: str | None = typer.Option(None, "--since", metavar="WHEN", help="From a time (ISO 8601) or a duration ago."),
    until: str | None = typer.Option(None, "--until", metavar="WHEN", help="Up to a time (ISO 8601) or a duration ago."),
    agent: str | None = typer.Option(None, "--agent", help="Only this agent (system_health, ...)."),
    event: str | None = typer.Option(None, "--event", help="Only this event; 'action' also matches action.*."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the newest N entries."),
    config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Print audit entries, oldest first (default: the last 24 hours)."""
    if ctx.invoked_subcommand:
        ctx.obj = {"db": db, "json": json, "quiet": quiet}
        return
    from zenctl.core import audit
    from zenctl.core.timeutil import iso, parse_duration, parse_when
    from zenctl.errors import UsageError

    if last and since:
        raise UsageError("--last and --since both set a start; use one")
    start = iso(parse_when(since) if since else time.time() - parse_duration(last or "24h"))
    end = iso(parse_when(until)) if until else None
    state = open_db(db, create=False)
    entries = audit.query(state, start, end, agent, event, limit) if state else []
    if json:
        print_json({"entries": entries})
    elif not quiet:
        from zenctl.core.untrusted import line  # entries quote what others wrote: never raw to a terminal

        write = sys.stdout.write
        for e in entries:
            write(line(f"{e['ts'][:19]}Z {e['seq']:>8} {e['agent']:<18} {e['event']:<16} {e['message']}") + "\n")
        if not entries and sys.stdout.isatty():  # a person sees why nothing came; a script's output stays empty
            error(_nothing(start, end, agent, event, state is None))


_WIDER = (("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400))


def _nothing(start: str, end: str | None, agent: str | None, event: str | None, no_state: bool) -> str:
    """One line for an empty listing on a terminal: the window and filters it searched, and a wider window."""
    from zenctl.core.timeutil import epoch

    what = f"no audit entries since {start[:19]}Z" + (f" until {end[:19]}Z" if end else "")
    what += (f" of agent {agent}" if agent else "") + (f" with event {event}" if event else "")
    if no_state:
        return what + " (no state file yet: nothing has run)"
    wider = next((flag for flag, seconds in _WIDER if time.time() - epoch(start) + 1 < seconds), None)
    return what + (f" (try --last {wider})" if wider and not end else "")


@app.command("verify")
def verify(ctx: typer.Context, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Check the hash chain: exit 0 when intact, 2 naming the first entry that was edited, inserted or deleted."""
    from zenctl.core import audit
    from zenctl.errors import StateError

    parent = ctx.obj or {}
    db, json, quiet = db or parent.get("db"), json or parent.get("json"), quiet or parent.get("quiet")
    state = open_db(db, create=False)
    if state is None:
        from zenctl.core.state import resolve_db_path

        raise StateError(f"{resolve_db_path(db)}: no state file to verify")
    result = audit.verify(state)
    if json:
        print_json({"ok": result.ok, "checked": result.checked, "bad_seq": result.bad_seq, "problem": result.problem})
    elif not result.ok:
        error(f"audit log {state.path}: {result.problem}")
    elif not quiet:
        print(f"audit log intact: {result.checked} entries, hash chain verified")
    raise typer.Exit(0 if result.ok else 2)
