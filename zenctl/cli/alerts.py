"""`zenctl alerts list`: the alert outbox (pending, held by a silence, or, with --all, sent)."""

import typer

from zenctl.clikit import DbOpt, JsonOpt, QuietOpt, open_db, print_json

app = typer.Typer(help="The alert outbox: what was sent, what waits for a channel, what a silence holds.",
                  no_args_is_help=True)


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include sent and dropped alerts (newest 500)."),
          db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """List alerts not yet delivered: pending (a channel failed; retried next run) and held (silenced)."""
    from zenctl.core import alerts

    state = open_db(db, create=False)
    rows = alerts.listing(state, all_) if state else []
    if json:
        print_json({"alerts": rows})
    elif rows or not quiet:
        from zenctl.core.render import render_rows

        render_rows("Alerts", rows, ("id", "created", "channel", "event", "status", "summary", "last_error",
                                     "held_by"))
