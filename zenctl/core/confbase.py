"""Building blocks of the config models, shared by the sections defined in other modules (services,
housekeeping): the strict base model and the value types with their error messages."""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from zenctl.core.timeutil import duration_seconds

Mode = Literal["auto", "approve", "notify", "disabled"]
Percent = Annotated[float, Field(ge=0, le=100)]


def _seconds(value: Any) -> Any:
    """A duration as seconds: a number, or text such as `90s`, `30m`, `2h`, `1d`."""
    if isinstance(value, str):
        seconds = duration_seconds(value) if not value.strip().replace(".", "", 1).isdigit() else float(value)
        if seconds is None:
            raise ValueError('must be a duration such as "90s", "30m", "2h" or "1d", or a number of seconds')
        return seconds
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]

_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
               "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}
_BYTE_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def _bytes(value: Any) -> Any:
    """A size as bytes: a number, or text such as `512k`, `100M`, `1.5G` (powers of 1024, as logrotate reads)."""
    if isinstance(value, str):
        match = _BYTE_SIZE.match(value.lower())
        if not match or match.group(2) not in _BYTE_UNITS:
            raise ValueError('must be a size such as "512k", "100M" or "2G", or a number of bytes')
        return int(float(match.group(1)) * _BYTE_UNITS[match.group(2)])
    return value


ByteSize = Annotated[int, BeforeValidator(_bytes), Field(ge=0)]


_KNOWN_VALID_CRON = {"0 3 * * *"}  # the embedded default: skips importing croniter (40 ms) on every run


def _cron(value: str | None) -> str | None:
    """A five-field cron expression that croniter accepts."""
    if value is None or value in _KNOWN_VALID_CRON:
        return value
    if len(value.split()) != 5:
        raise ValueError("must be a cron expression of five fields (minute hour day month weekday)")
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError("is not a valid cron expression")
    return value


CronExpression = Annotated[str, AfterValidator(_cron)]


class Model(BaseModel):
    """Every config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
