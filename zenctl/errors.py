"""One error base per axis, each a one-line message and an exit code.

Every error a user can cause ends as one line on stderr and exit code 3 (UNKNOWN: could not run),
never as a traceback. The CLI catches ZenctlError; nothing below it prints.
"""

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


class ZenctlError(Exception):
    """Base of every error zenctl reports to the user."""

    exit_code = EXIT_UNKNOWN


class ConfigError(ZenctlError):
    """The configuration (a file or an environment variable) is missing, unreadable or invalid."""


class StateError(ZenctlError):
    """The state file cannot be used: not SQLite, a directory, unreadable, or from a newer zenctl."""


class UsageError(ZenctlError):
    """A command-line value is wrong (a duration, a time, a combination of options)."""


class RunLocked(ZenctlError):
    """Another run of the same agent holds its run lock."""


class AuditTampered(ZenctlError):
    """`audit verify` found an entry that does not fit the hash chain."""

    exit_code = 2
