"""Built-in action kinds; importing this package registers them all."""

from zenctl.actions import cron, db, fs, housekeeping, logs, service, snapshot  # noqa: F401
