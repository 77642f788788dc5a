"""What every command shares: the options DESIGN.md puts on every command, JSON and error printing."""

import json
import sys
from typing import Any

_OPTIONS = ("ConfigOpt", "DbOpt", "JsonOpt", "QuietOpt", "DryRunOpt")


def __getattr__(name: str) -> Any:
    """The options, built on first use: they need typer (~30 ms to import), which the entry point's typer-free
    path for cron's commands (zenctl.cli) does without while it uses the helpers below."""
    if name not in _OPTIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from typing import Annotated

    import typer

    globals().update(
        ConfigOpt=Annotated[str | None, typer.Option(
            "--config", "-c", envvar="ZENCTL_CONFIG", metavar="PATH",
            help="Config file (default lookup: ./zenctl.yaml, $XDG_CONFIG_HOME/zenctl/zenctl.yaml, "
                 "/etc/zenctl/zenctl.yaml).")],
        DbOpt=Annotated[str | None, typer.Option(
            "--db", envvar="ZENCTL_DB", metavar="PATH",
            help="State file (default $XDG_STATE_HOME/zenctl/zenctl.db; as root /var/lib/zenctl/zenctl.db).")],
        JsonOpt=Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")],
        QuietOpt=Annotated[bool, typer.Option("--quiet", "-q",
                                              help="Print nothing unless there is a problem or a change.")],
        DryRunOpt=Annotated[bool, typer.Option("--dry-run", "-n", help="Preview every action; change nothing.")],
    )
    return globals()[name]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def error(message: str) -> None:
    """One line on stderr; control characters escaped (errors quote paths and answers others chose)."""
    from zenctl.core.untrusted import line

    sys.stderr.write(f"zenctl: {line(message)}\n")


def open_db(db: str | None, create: bool = True):
    """The state file named by --db / ZENCTL_DB / the default; None if absent and not `create`."""
    from zenctl.core.state import open_state, resolve_db_path

    return open_state(resolve_db_path(db), create=create)


def worth_printing(result, quiet: bool) -> bool:
    """With --quiet, a run prints only when it is not OK or changed something (so cron mails only those)."""
    changed = any(a.status in ("applied", "failed") for a in result.actions)
    return not (quiet and result.status == "ok" and not changed and not result.error)


def show_run(result, json: bool, quiet: bool) -> None:
    """Print a run as --json or tables, or nothing when --quiet and there is nothing to say."""
    if not worth_printing(result, quiet):
        return
    if json:
        from zenctl.core.runtime import as_json

        print_json(as_json(result))
    else:
        from zenctl.core.render import render_run

        render_run(result)
