"""The `zenctl` command: typer apps per command group; every failure ends as one line and exit code 3."""

import os
import sys

import typer

from zenctl import __version__
from zenctl.cli import alerts, approvals, audit, config, control, health, maintain, run, schedule, silence, status
from zenctl.cli.common import error
from zenctl.errors import EXIT_UNKNOWN, ZenctlError

app = typer.Typer(
    name="zenctl",
    help="Autonomous, audited, dry-runnable background agents for one host, run by cron.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(health.app, name="health")
app.add_typer(approvals.app, name="approvals")
app.command("approve")(approvals.approve)
app.command("reject")(approvals.reject)
app.add_typer(audit.app, name="audit")
app.add_typer(alerts.app, name="alerts")
app.add_typer(silence.app, name="silence")
app.command("status")(status.status)
app.command("stop")(control.stop)
app.command("resume")(control.resume)
app.command("rollback")(control.rollback)
app.command("run")(run.run)
app.command("maintain")(maintain.maintain)
app.add_typer(schedule.app, name="schedule")
app.add_typer(config.app, name="config")


def _version(value: bool) -> None:
    if value:
        print(f"zenctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """zenctl: one audited, dry-runnable, reversible action pipeline behind four agents."""


@app.command("completion")
def completion(shell: str = typer.Argument(..., help="bash, zsh or fish")) -> None:
    """Print a static completion script for SHELL (the files in completions/ are made by this)."""
    from zenctl.cli.completion import script

    sys.stdout.write(script(typer.main.get_command(app), shell))


def main() -> None:
    """Entry point: run the app; map usage errors and zenctl errors to one line on stderr and exit 3."""
    try:
        code = app(standalone_mode=False, prog_name="zenctl")
    except ZenctlError as exc:
        error(str(exc))
        code = exc.exit_code
    except typer.Abort:
        error("aborted")
        code = EXIT_UNKNOWN
    except KeyboardInterrupt:
        error("interrupted")
        code = 130
    except Exception as exc:
        if hasattr(exc, "format_message"):  # a usage error from the command-line parser
            command = getattr(getattr(exc, "ctx", None), "command_path", "zenctl")
            error(f"{exc.format_message()} (see '{command} --help')")
            code = EXIT_UNKNOWN
        elif os.environ.get("ZENCTL_DEBUG"):
            raise
        else:
            error(f"internal error: {type(exc).__name__}: {exc} (set ZENCTL_DEBUG=1 for a traceback)")
            code = EXIT_UNKNOWN
    sys.exit(code if isinstance(code, int) else 0)
