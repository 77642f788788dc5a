"""Times as zenctl stores and prints them: UTC, ISO 8601, fixed width so text order is time order."""

import re
import time
from datetime import datetime, timezone

from zenctl.errors import UsageError

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
# A stored time further than this past now was written while the clock was ahead (then set back): no gate may
# wait for it. Small enough to catch a wrong clock, large enough for clocks of two hosts sharing a state.
CLOCK_SLACK = 60.0


def iso(epoch: float | None = None) -> str:
    """Epoch seconds as `2026-11-24T11:04:05.123456Z`."""
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, timezone.utc).strftime(_FMT)


def duration_seconds(text: str) -> float | None:
    """`90s`, `30m`, `1h`, `2d`, `1w` as seconds; None when `text` is not such a duration."""
    match = _DURATION.match(text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def parse_duration(text: str) -> float:
    """A command-line duration as seconds; UsageError when it is not one."""
    seconds = duration_seconds(text)
    if seconds is None:
        raise UsageError(f"invalid duration {text!r}: use a number and one of s, m, h, d, w (e.g. 1h)")
    return seconds


def from_future(stored: float | None, now: float) -> bool:
    """Whether a stored time lies beyond `now` (and the slack): written by a clock that was ahead."""
    return stored is not None and stored > now + CLOCK_SLACK


def epoch(stamp: str) -> float:
    """A stored ISO 8601 time (`...Z`) as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time: a duration meaning that long ago (`1h`), or an ISO 8601 time (UTC unless it says)."""
    now = time.time() if now is None else now
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}: use a duration ago (1h) or ISO 8601 (2026-11-24T10:00:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def ago(seconds: float) -> str:
    """A short human age: `42s`, `5m`, `3h`, `2d`."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


JUST_NOW = 5.0  # seconds either side of now that a person reads as "now"


def for_person(stamp: str | None, now: float | None = None) -> str:
    """A stored time as a person reads it, in local time (as cron reads schedules, and as `ls` prints):
    `11:56:50 (just now)` today, `2026-11-24 11:56 (1d ago)` another day, `in 3m` ahead. `-` for none. The
    stored value keeps its microseconds; --json prints that."""
    if not stamp:
        return "-"
    now = time.time() if now is None else now
    when = epoch(stamp)
    local = datetime.fromtimestamp(when).astimezone()
    today = local.date() == datetime.fromtimestamp(now).astimezone().date()
    shown = local.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M")
    delta = now - when
    if abs(delta) < JUST_NOW:
        return f"{shown} (just now)"
    return f"{shown} ({ago(delta)} ago)" if delta > 0 else f"{shown} (in {ago(-delta)})"
