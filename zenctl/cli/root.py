"""The typer app behind `zenctl`: every command, its help in panels, completion. zenctl.cli.main builds it only for
what its typer-free path does not answer (help, completion, every command but the few cron runs)."""

import sys

import typer
from typer.core import TyperGroup

from zenctl import __version__
from zenctl.cli import alerts, approvals, audit, config, control, run, schedule, silence, status
from zenctl.core import registry

# The agents' own commands, from the registry: each agent's main command, then `run`, then their other commands.
AGENT_COMMANDS = [command for spec in registry.specs() if spec.cli for command in registry.load(spec.cli)()]
_MAIN = [name for spec in registry.specs() if spec.cli for name, _ in registry.load(spec.cli)()[:1]]

# `zenctl --help` in panels, in this order: the agents first, then what governs them, what reports, what sets up.
PANELS = {
    "Agents": (*_MAIN, "run", *(name for name, _ in AGENT_COMMANDS if name not in _MAIN)),
    "Governance": ("approve", "reject", "approvals", "stop", "resume", "rollback", "silence", "alerts"),
    "Audit and status": ("status", "audit"),
    "Configuration": ("config", "schedule", "completion"),
}
_PANEL = {name: panel for panel, names in PANELS.items() for name in names}
_ORDER = list(_PANEL)


class _Panelled(TyperGroup):
    """The root group, its commands listed in PANELS order (typer lists commands before groups, and help prints a
    panel where its first command comes)."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(super().list_commands(ctx), key=_ORDER.index)  # _add() gave every command a panel


app = typer.Typer(
    name="zenctl",
    help="Autonomous, audited, dry-runnable background agents for one host, run by cron.",
    cls=_Panelled,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _add(name: str, what) -> None:
    """Register a command function or a sub-app under its help panel."""
    if isinstance(what, typer.Typer):
        app.add_typer(what, name=name, rich_help_panel=_PANEL[name])
    else:
        app.command(name, rich_help_panel=_PANEL[name])(what)


for _name, _what in AGENT_COMMANDS:
    _add(_name, _what)
_add("run", run.command())
_add("approve", approvals.approve)
_add("reject", approvals.reject)
_add("approvals", approvals.app)
_add("stop", control.stop)
_add("resume", control.resume)
_add("rollback", control.rollback)
_add("silence", silence.app)
_add("alerts", alerts.app)
_add("status", status.status)
_add("audit", audit.app)
_add("config", config.app)
_add("schedule", schedule.app)


def _version(value: bool) -> None:
    if value:
        print(f"zenctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """zenctl: one audited, dry-runnable, reversible action pipeline behind four agents."""


def completion(shell: str = typer.Argument(..., help="bash, zsh or fish")) -> None:
    """Print a static completion script for SHELL (the files in completions/ are made by this)."""
    from zenctl.cli.completion import script

    sys.stdout.write(script(typer.main.get_command(app), shell))


_add("completion", completion)
