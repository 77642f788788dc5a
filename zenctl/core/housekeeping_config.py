"""Config of the System Health agent's housekeeping (`agents.system_health.tmp`, and later `logs`, `cache`): what
`zenctl maintain` cleans, and what the agent may clean when a mount runs out of space."""

import os
from typing import Literal

from pydantic import Field, field_validator

from zenctl.core.confbase import Duration, Model


class TmpRoot(Model):
    """A directory of temporary files cleaned like systemd-tmpfiles/tmpreaper (tmp.clean)."""

    root: str = Field(description="Absolute directory to clean (never /).", examples=["/var/tmp/app"])
    age: Duration = Field(864000, gt=0, description="Delete what is older than this (default 10 days).")
    age_by: list[Literal["atime", "mtime", "ctime"]] = Field(
        default_factory=lambda: ["atime", "mtime", "ctime"], min_length=1,
        description="Times that must all be older than age (the newest of them counts).")
    exclude: list[str] = Field(default_factory=list, description="Globs over the path relative to root, or the "
                                                                 "name; matching entries are kept (and not entered).",
                               examples=[["*.pid", "systemd-private-*"]])
    skip_open: bool = Field(True, description="Keep files some process holds open (seen through /proc/*/fd).")
    remove_empty_dirs: bool = Field(True, description="Remove directories left empty, when they are old too.")

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        value = os.path.normpath(value)
        if value == "/":
            raise ValueError("must not be / (name the temporary directory itself)")
        return value
