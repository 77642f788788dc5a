"""One error base per axis, each a one-line message and an exit code.

Every error a user can cause ends as one line on stderr and exit code 3 (UNKNOWN: could not run),
never as a traceback. The CLI catches ZenctlError; nothing below it prints.
"""

EXIT_UNKNOWN = 3  # Nagios UNKNOWN, also "could not run"


class ZenctlError(Exception):
    """Base of every error zenctl reports to the user."""

    exit_code = EXIT_UNKNOWN


class ConfigError(ZenctlError):
    """The configuration (a file or an environment variable) is missing, unreadable or invalid."""


class StateError(ZenctlError):
    """The state file cannot be used: not SQLite, a directory, unreadable, or from a newer zenctl."""


class UsageError(ZenctlError):
    """A command-line value is wrong (a duration, a time, a combination of options)."""


class HostError(ZenctlError):
    """The host lacks or refuses something zenctl needs (a crontab program, a table it would accept)."""
