"""Built-in action kinds; importing this package registers them all."""

from zenctl.actions import cron, fs, service, snapshot  # noqa: F401
