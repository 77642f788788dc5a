"""When an agent is due and when it is stale, from its `interval` or `schedule` and its last run in the state.

zenctl has no daemon: cron starts `zenctl run --due` and these functions decide, from the stored runs, which agents
that tick should run. An interval's slots are aligned to the epoch (as `*/5` is aligned to the hour), so a run that
starts a little late does not push every later run back. A schedule is read in local time, as cron reads it; on
the day clocks go back, a fixed-time job runs once, not twice (as Debian's cron does). A last run in the future
means the clock was set back: the agent is due, and not stale.

Stale is the Healthchecks.io rule: an agent that has run (or been scheduled by `zenctl schedule install`) but whose
last run is older than twice its interval, or older than its schedule's last due time plus a grace.
"""

import os
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from zenctl.core.timeutil import from_future


@dataclass(frozen=True)
class Timing:
    """How one agent is scheduled: every `interval` seconds, or at the cron `schedule`, with a `grace`."""

    interval: int | None = None
    schedule: str | None = None
    grace: float = 900.0

    def describe(self) -> str:
        if self.schedule:
            return f"cron {self.schedule!r}"
        return f"every {self.interval} s" if self.interval else "not scheduled"


def timing_of(agent_config) -> Timing:
    return Timing(agent_config.interval, agent_config.schedule, agent_config.grace)


def local_zone() -> tzinfo:
    """The zone cron reads schedules in: $TZ, else /etc/localtime, else UTC."""
    from zoneinfo import ZoneInfo

    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle)
    except (OSError, ValueError):
        return timezone.utc


def last_run(state, agent: str) -> float | None:
    """Start of the agent's last real run (not a dry-run, not an overlap that never ran), as epoch seconds."""
    from zenctl.core.timeutil import epoch

    row = state.conn.execute(
        "SELECT MAX(started) FROM runs WHERE agent = ? AND status != 'overlap' AND dry_run = 0", (agent,)).fetchone()
    return epoch(row[0]) if row and row[0] else None


def _fixed_time(schedule: str) -> bool:
    """True for a job at fixed hours (`30 1 * * *`), false for one that repeats within the hour (`*/5 * * * *`)."""
    minute, hour = schedule.split()[:2]
    return not (minute.startswith("*") or hour.startswith("*"))


def last_fire(schedule: str, now: float, zone: tzinfo | None = None) -> tuple[float, float]:
    """The schedule's latest fire time at or before `now`, and the earliest epoch that counts as the same slot
    (earlier only for a fixed-time job in the hour that repeats when clocks go back)."""
    from croniter import croniter

    zone = zone or local_zone()
    fire = croniter(schedule, datetime.fromtimestamp(now + 0.001, zone)).get_prev(datetime)
    start = fire.timestamp()
    first = fire.replace(fold=0)
    if first.timestamp() < start and _fixed_time(schedule):  # the wall time occurred earlier today too
        start = first.timestamp()
    return fire.timestamp(), start


def is_due(timing: Timing, last: float | None, now: float, zone: tzinfo | None = None) -> bool:
    """Whether a `run --due` at `now` should run the agent, given the start of its last run."""
    if from_future(last, now):
        return True
    if timing.schedule:
        fire, slot_start = last_fire(timing.schedule, now, zone)
        if last is None:
            return now - fire <= timing.grace  # a new agent waits for its first fire time, then may be late
        return last < slot_start
    if timing.interval:
        return last is None or last < now - now % timing.interval
    return False


def next_due(timing: Timing, last: float | None, now: float, zone: tzinfo | None = None) -> float | None:
    """When the agent is next due (`now` when it is due now); None when it is not scheduled."""
    if is_due(timing, last, now, zone):
        return now
    if timing.schedule:
        from croniter import croniter

        zone = zone or local_zone()
        return croniter(timing.schedule, datetime.fromtimestamp(now, zone)).get_next(datetime).timestamp()
    if timing.interval:
        return now - now % timing.interval + timing.interval
    return None


def stale_reason(timing: Timing, reference: float | None, now: float, zone: tzinfo | None = None) -> str | None:
    """Why the agent counts as stale (it should have run by now), or None. `reference` is its last run, or when
    its schedule was installed if it never ran; with neither, it is not judged."""
    from zenctl.core.timeutil import ago, iso

    if reference is None or from_future(reference, now):
        return None
    if timing.schedule:
        expected, _ = last_fire(timing.schedule, now - timing.grace, zone)
        if reference < expected:
            return (f"no run since {iso(reference)} ({ago(now - reference)} ago); {timing.describe()} was due at "
                    f"{iso(expected)} (grace {timing.grace:g} s)")
        return None
    if timing.interval and now - reference > 2 * timing.interval:
        return (f"no run since {iso(reference)} ({ago(now - reference)} ago); expected {timing.describe()} "
                f"(stale after {2 * timing.interval} s)")
    return None
