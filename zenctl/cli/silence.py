"""`zenctl silence add|list|remove`: hold alerts for matching problems for a while (recorded, not lost)."""

import typer

from zenctl.clikit import DbOpt, JsonOpt, QuietOpt, open_db, print_json

app = typer.Typer(help="Silences: hold alerts of matching problems (glob over agent:check) for a while.",
                  no_args_is_help=True)


@app.command("add")
def add(match: str = typer.Argument(..., metavar="MATCH", help="Glob over agent:check, e.g. 'system_health:*'."),
        for_: str = typer.Option(..., "--for", metavar="DURATION", help="How long: 30m, 2h, 1d."),
        reason: str = typer.Option("", "--reason", metavar="TEXT", help="Why; shown with held alerts."),
        db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Hold alerts of matching problems; they are sent when the silence ends if the problem is still open."""
    from zenctl.core import alerts
    from zenctl.core.control import whoami
    from zenctl.core.timeutil import parse_duration

    silence = alerts.add_silence(open_db(db), match, parse_duration(for_), reason, whoami())
    if json:
        print_json(silence)
    elif not quiet:
        print(f"silence {silence['id']}: {match!r} until {silence['ends']}")


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include ended and removed silences."),
          db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """List active silences."""
    from zenctl.core import alerts

    state = open_db(db, create=False)
    rows = alerts.silences(state, all_) if state else []
    if json:
        print_json({"silences": rows})
    elif rows or not quiet:
        from zenctl.core.render import render_rows

        render_rows("Silences", rows, ("id", "match", "ends", "reason", "created_by", "active"))


@app.command("remove")
def remove(silence_id: str = typer.Argument(..., metavar="ID"), db: DbOpt = None, json: JsonOpt = False,
           quiet: QuietOpt = False) -> None:
    """End a silence now; its held alerts go out on the next run if their problems are still open."""
    from zenctl.core import alerts
    from zenctl.core.control import whoami

    alerts.remove_silence(open_db(db), silence_id, whoami())
    if json:
        print_json({"removed": silence_id})
    elif not quiet:
        print(f"silence {silence_id} removed")
