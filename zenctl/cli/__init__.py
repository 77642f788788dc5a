"""The `zenctl` command; every failure ends as one line and exit code 3.

`main` answers what cron runs every minute (`--version`, `run`, and the agents' commands that declare `FAST`, such
as `health check`) without importing typer (~30 ms a run). Everything else, every --help, and any command line it
does not read exactly as typer would (an unknown, repeated or combined option, `--`, a value that looks like an
option) goes to the typer app in zenctl.cli.root, which answers it, errors included, in its own words.
"""

import errno
import os
import sys


def _without_pydantic_plugins() -> None:
    """zenctl's config models take no pydantic plugin: one that another installed package declares must neither
    see nor change how zenctl validates. pydantic finds its plugins through `pydantic.plugin._loader`, which scans
    every installed distribution's metadata (~25 ms a run); that module is replaced, in this process only, by one
    that finds none. (PYDANTIC_DISABLE_PLUGINS would leak into the commands zenctl runs.)"""
    import types

    loader = types.ModuleType("pydantic.plugin._loader", "zenctl: no pydantic plugins (see zenctl.cli)")
    loader.get_plugins = lambda: ()
    sys.modules["pydantic.plugin._loader"] = loader


_without_pydantic_plugins()  # before anything below builds a config model

# The options every fast command takes (as zenctl.clikit declares them): option -> (parameter, accepted values:
# True for a flag, None for any value) and the variables typer reads for those not given.
_COMMON = {"--config": ("config", None), "-c": ("config", None), "--db": ("db", None), "--json": ("json", True),
           "--quiet": ("quiet", True), "-q": ("quiet", True), "--dry-run": ("dry_run", True), "-n": ("dry_run", True)}
_ENVVARS = {"config": "ZENCTL_CONFIG", "db": "ZENCTL_DB"}


def _fast_commands() -> dict:
    """{command words: (function, its further options, its positional parameter or None)}: `run` and what the
    agents' CLI modules declare in `FAST` (those modules import typer only to build their typer commands)."""
    import importlib

    import zenctl.agents  # noqa: F401  (installs the registry of agents before anything reads it)
    from zenctl.cli import run
    from zenctl.core import registry

    commands = dict(run.FAST)
    for spec in registry.specs():
        if spec.cli:
            commands.update(getattr(importlib.import_module(spec.cli.partition(":")[0]), "FAST", {}))
    return commands


def _parse(args: list[str]):
    """(function, keyword arguments) when typer would read `args` as a fast command with these values; None for
    anything else."""
    if "_ZENCTL_COMPLETE" in os.environ:  # click's completion protocol
        return None
    found = next(((words, fast) for words, fast in _fast_commands().items() if tuple(args[:len(words)]) == words),
                 None)
    if found is None:
        return None
    (words, (function, options, positional)), given = found, {}
    options = {**_COMMON, **options}
    rest = iter(args[len(words):])
    for token in rest:
        name, eq, attached = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in options and options[name][1] is True and not eq:
            key, value = options[name][0], True
        elif name in options and options[name][1] is not True:
            key, accepted = options[name]
            value = attached if eq else next(rest, None)
            if not value or (not eq and value.startswith("-")) or (accepted is not None and value not in accepted):
                return None
        elif positional and not token.startswith("-"):
            key, value = positional, token
        else:
            return None
        if key in given:
            return None
        given[key] = value
    for key, var in _ENVVARS.items():
        given.setdefault(key, os.environ.get(var) or None)
    return function, given


def _fast(function, kwargs: dict) -> int:
    """Call a fast command as typer's main would: EOF aborts, ^C is exit 130, a closed stdout is exit 1."""
    from zenctl.errors import ZenctlError

    try:
        return function(**kwargs)
    except EOFError:
        sys.stderr.write("\n")
        raise ZenctlError("aborted") from None
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to a reader that left
        return 1


def _typer() -> int:
    import typer

    from zenctl.cli.root import app
    from zenctl.errors import ZenctlError

    try:
        return app(standalone_mode=False, prog_name="zenctl")
    except typer.Abort:
        raise ZenctlError("aborted") from None


def _answer() -> int:
    """The command's exit code; usage errors and zenctl errors as one line on stderr."""
    args = sys.argv[1:]
    if args == ["--version"]:
        from zenctl import __version__

        print(f"zenctl {__version__}")
        return 0
    fast = _parse(args)
    return _fast(*fast) if fast else _typer()


def main() -> None:
    """Entry point: run the command; map usage errors and zenctl errors to one line on stderr and exit 3."""
    from zenctl.clikit import error
    from zenctl.errors import EXIT_UNKNOWN, ZenctlError

    try:
        code = _answer()
    except ZenctlError as exc:
        error(str(exc))
        code = exc.exit_code
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
