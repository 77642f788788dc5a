"""System Health's settings (`agents.system_health`): thresholds and windows, the paths it keeps in shape, the
services it checks, and the housekeeping it runs."""

import os
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from zenctl.agents.health.services_config import ServiceConfig
from zenctl.core.confbase import Duration, Model, Percent
from zenctl.core.config import AgentConfig, unique
from zenctl.housekeeping.config import CacheDir, LogSet, TmpRoot


class PathSpec(Model):
    """A path the System Health agent keeps in shape (the seed's file-system repairs)."""

    path: str = Field(description="Absolute path to check.", examples=["/srv/app/data"])
    ensure: Literal["directory", "file"] = Field("directory", description="What must exist at the path.")
    mode: str | None = Field(None, description='Permission bits as a quoted octal string.', examples=["0750"])
    owner: str | None = Field(None, description="Owning user, by name or numeric id.", examples=["app"])
    group: str | None = Field(None, description="Owning group, by name or numeric id.", examples=["app"])

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return os.path.normpath(value)

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError('must be a quoted octal string such as "0750" (unquoted, YAML reads it as a number)')
        if not re.fullmatch(r"0?[0-7]{3,4}", value):
            raise ValueError('must be octal permission bits such as "0750"')
        return f"{int(value, 8):04o}"

    @field_validator("owner", "group", mode="before")
    @classmethod
    def _name_or_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SystemHealthConfig(AgentConfig):
    """CPU, load, memory, swap, disk and inode usage against thresholds; file-system repairs."""

    interval: int | None = Field(300, ge=1, description="Seconds between runs when scheduled by interval.")
    cpu_threshold: Percent = Field(80, description="CPU % over cpu_window that is critical.")
    cpu_warning: Percent = Field(70, description="CPU % over cpu_window that is a warning.")
    cpu_window: int = Field(
        300, ge=0, description="Seconds the CPU average is judged over, from stored samples; 0 = since last run."
    )
    memory_threshold: Percent = Field(90, description="Memory % in use that is critical.")
    memory_warning: Percent = Field(80, description="Memory % in use that is a warning.")
    memory_window: int = Field(0, ge=0, description="Seconds memory must stay high (mean of stored samples).")
    swap_threshold: Percent = Field(80, description="Swap % in use that is critical.")
    swap_warning: Percent = Field(50, description="Swap % in use that is a warning.")
    disk_threshold: Percent = Field(90, description="Disk space % used on a mount that is critical.")
    disk_warning: Percent = Field(80, description="Disk space % used on a mount that is a warning.")
    inode_threshold: Percent = Field(90, description="Inode % used on a mount that is critical.")
    inode_warning: Percent = Field(80, description="Inode % used on a mount that is a warning.")
    load_threshold: float = Field(4.0, ge=0, description="5-minute load average per CPU that is critical.")
    load_warning: float = Field(2.0, ge=0, description="5-minute load average per CPU that is a warning.")
    ignore_mounts: list[str] = Field(
        default_factory=list, description="Mount points to skip (shell globs).", examples=[["/snap/*"]]
    )
    statvfs_timeout: float = Field(
        2.0, gt=0, le=60, description="Seconds to wait for one mount's usage (a hung NFS mount) before UNKNOWN."
    )
    paths: list[PathSpec] = Field(
        default_factory=list, description="Paths to keep in shape: created when missing, mode and owner fixed."
    )
    services: list[ServiceConfig] = Field(
        default_factory=list, description="Services to check; a failing one is restarted through the ladder."
    )
    tmp: list[TmpRoot] = Field(
        default_factory=list, description="Temporary-file roots cleaned by `zenctl maintain tmp` (tmp.clean).")
    logs: list[LogSet] = Field(
        default_factory=list, description="Log files rotated by `zenctl maintain logs` (logs.rotate).")
    cache: list[CacheDir] = Field(
        default_factory=list, description="Cache directories pruned by `zenctl maintain cache` (cache.prune).")
    disk_housekeeping: bool = Field(
        True, description="When a mount is over disk_threshold, run tmp.clean, logs.rotate and cache.prune on "
                          "what is configured on that mount, in that order, until it is back under.")
    suggestions: bool = Field(True, description="Add notify-only hints: top processes, zombies, swap use while "
                                                "memory is free, what fills a full mount.")
    suggest_scan_seconds: Duration = Field(
        2, le=60, description="Time limit for finding the largest directories of a full mount (0: never scan).")

    @field_validator("services")
    @classmethod
    def _unique_names(cls, value: list[ServiceConfig]) -> list[ServiceConfig]:
        unique([service.name for service in value], "service name {!r} is used twice")
        return value

    @field_validator("logs")
    @classmethod
    def _unique_log_sets(cls, value: list[LogSet]) -> list[LogSet]:
        unique([log_set.name for log_set in value], "log set name {!r} is used twice (give each set its own name)")
        return value

    @model_validator(mode="after")
    def _warning_not_above_critical(self) -> "SystemHealthConfig":
        for name in ("cpu", "memory", "swap", "disk", "inode", "load"):
            warning, critical = getattr(self, f"{name}_warning"), getattr(self, f"{name}_threshold")
            if warning > critical:
                raise ValueError(f"{name}_warning ({warning:g}) is above {name}_threshold ({critical:g})")
        return self
