"""Config of the System Health agent's housekeeping (`agents.system_health.tmp`, `logs`, `cache`): what
`zenctl maintain` cleans, and what the agent may clean when a mount runs out of space."""

import grp
import os
import pwd
from typing import Literal

from pydantic import Field, field_validator, model_validator

from zenctl.core.confbase import ByteSize, Duration, Model


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
    skip_open: bool = Field(True, description="Keep what some process uses: files it holds open, runs or maps, and its "
                            "working or root directory (seen through /proc/*/fd, exe, maps, cwd, root).")
    remove_empty_dirs: bool = Field(True, description="Remove directories left empty, when they are old too.")

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _directory(value, "temporary")


def _directory(value: str, what: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    value = os.path.normpath(value)
    if value == "/":
        raise ValueError(f"must not be / (name the {what} directory itself)")
    return value


class LogSet(Model):
    """Log files rotated like logrotate (logs.rotate): one set shares its triggers, retention and post-rotate
    command."""

    name: str = Field("", description="What the set is called in findings and the audit log (default: its first "
                                      "glob).", examples=["app"])
    paths: list[str] = Field(min_length=1, description="Absolute globs of the log files; a glob that matches "
                                                       "nothing is fine (missing logs are tolerated).",
                             examples=[["/var/log/app/*.log"]])
    size: ByteSize | None = Field(None, gt=0, description="Rotate a file larger than this (e.g. 100M).")
    age: Duration | None = Field(86400, gt=0, description="Rotate a file last rotated longer ago than this "
                                                          "(default 1 day); null for size only.")
    keep: int = Field(7, ge=1, le=1000, description="Rotated generations to keep; older ones are deleted.")
    compress: bool = Field(True, description="gzip rotated generations.")
    delaycompress: bool = Field(True, description="Leave the newest generation uncompressed until the next "
                                                  "rotation (a writer that reopens late still reaches it).")
    dateext: bool = Field(False, description="Name generations by date (app.log-20261124) instead of number "
                                             "(app.log.1).")
    copytruncate: bool = Field(False, description="Copy the file then cut the copied part off, for programs "
                                                  "that cannot reopen their log; default is rename and "
                                                  "postrotate.")
    postrotate: str | None = Field(None, description="Command run once after the set's files are renamed, so "
                                                     "writers reopen them (e.g. systemctl kill -s HUP app).",
                                   examples=["systemctl kill -s HUP app.service"])
    postrotate_timeout: Duration = Field(30, gt=0, description="Seconds the postrotate command may take.")
    rotate_empty: bool = Field(False, description="Rotate empty files too (logrotate's ifempty).")
    su: str | None = Field(None, description="USER GROUP to rotate as (logrotate's su): directories that user or "
                                             "group can write are accepted, and every file operation of the "
                                             "rotation and its rollback runs with their file-system identity "
                                             "(postrotate still runs as root).", examples=["root syslog"])

    @field_validator("su")
    @classmethod
    def _su_names(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.split()
        if len(parts) != 2:
            raise ValueError(f"{value!r} must be a user and a group, as in logrotate (e.g. \"root syslog\")")
        for lookup, what, name in ((pwd.getpwnam, "user", parts[0]), (grp.getgrnam, "group", parts[1])):
            try:
                lookup(name)
            except KeyError:
                raise ValueError(f"{value!r}: no such {what} {name!r} on this host") from None
        return " ".join(parts)

    @field_validator("paths")
    @classmethod
    def _absolute_globs(cls, value: list[str]) -> list[str]:
        for glob in value:
            if not glob.startswith("/"):
                raise ValueError(f"{glob!r} must be an absolute path or glob")
        return value

    @model_validator(mode="after")
    def _some_trigger(self) -> "LogSet":
        if self.size is None and self.age is None:
            raise ValueError("set size or age (or both): with neither, nothing would ever be rotated")
        if not self.name:
            object.__setattr__(self, "name", self.paths[0])
        return self


class CacheDir(Model):
    """A cache directory kept under a total size and a maximum age, least recently used first (cache.prune)."""

    path: str = Field(description="Absolute cache directory (never /).", examples=["/var/cache/app"])
    max_size: ByteSize | None = Field(None, description="Total size to keep the directory under (e.g. 2G).")
    max_age: Duration | None = Field(None, gt=0, description="Delete files not used for this long (e.g. 30d).")
    exclude: list[str] = Field(default_factory=list, description="Globs over the path relative to the directory, "
                                                                 "or the name; matching entries are kept.")
    skip_open: bool = Field(True, description="Keep files some process holds open.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _directory(value, "cache")

    @model_validator(mode="after")
    def _some_cap(self) -> "CacheDir":
        if self.max_size is None and self.max_age is None:
            raise ValueError("set max_size or max_age (or both): with neither, nothing would ever be pruned")
        return self
