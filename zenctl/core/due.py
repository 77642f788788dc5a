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
import sqlite3
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


def fires(schedule: str, now: float, zone: tzinfo | None = None) -> tuple[float, float, float, float]:
    """The schedule around `now`: its last fire time, that slot's start (see last_fire), its next fire time and
    the fire before the last. All four hold for any time from the last fire to the next, which is what makes
    them worth keeping."""
    from croniter import croniter

    zone = zone or local_zone()
    fire, start = last_fire(schedule, now, zone)
    following = croniter(schedule, datetime.fromtimestamp(now, zone)).get_next(datetime).timestamp()
    before = croniter(schedule, datetime.fromtimestamp(fire, zone)).get_prev(datetime).timestamp()
    return fire, start, following, before


def remembered_fires(state, agent: str, schedule: str, now: float) -> tuple[float, float, float, float]:
    """`fires` for a `run --due` tick, kept in the state (agent_state, owner `zenctl`) until the next fire time:
    the ticks between two fire times (1,439 a day for a daily job) then need no cron arithmetic, and no croniter
    (20 ms to import). Keyed by the schedule and the local zone ($TZ, and the zone file /etc/localtime is, names
    and holds), and sealed with the account's key (core.seals): the state is group-writable, and a forged memo
    could otherwise keep an agent from running, and from being reported stale, for as long as it said."""
    import json

    from zenctl.core import seals

    try:
        info = os.stat("/etc/localtime")
        zone_id = [os.environ.get("TZ", ""), os.path.realpath("/etc/localtime"), info.st_ino, info.st_size,
                   info.st_mtime_ns]
    except OSError:
        zone_id = [os.environ.get("TZ", ""), None]
    key = f"due:{agent}"
    try:
        row = state.conn.execute("SELECT value FROM agent_state WHERE agent = 'zenctl' AND key = ?", (key,)).fetchone()
        kept = json.loads(row[0]) if row else None
        body = kept["body"]
        if (seals.signer(state.path, "due", (key, body), kept["seal"]) == os.geteuid()):
            memo = json.loads(body)
            known = tuple(float(memo[k]) for k in ("fire", "start", "next", "before"))
            if memo["schedule"] == schedule and memo["zone"] == zone_id and known[0] <= now < known[2]:
                return known
    except Exception:  # noqa: BLE001 - a memo: whatever is wrong with it (even a RecursionError) is a miss
        pass
    known = fires(schedule, now)
    body = json.dumps({"schedule": schedule, "zone": zone_id, **dict(zip(("fire", "start", "next", "before"), known))})
    from zenctl.core.timeutil import iso
    from zenctl.errors import StateError

    try:
        value = json.dumps({"body": body, "seal": seals.seal(state.path, "due", (key, body))})
        with state.write() as conn:
            conn.execute("INSERT INTO agent_state (agent, key, value, updated) VALUES ('zenctl', ?, ?, ?) ON CONFLICT "
                         "(agent, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                         (key, value, iso(now)))
    except (StateError, sqlite3.Error, OSError):
        pass  # a memo: the next tick works it out again
    return known


def is_due(timing: Timing, last: float | None, now: float, zone: tzinfo | None = None,
           known: tuple[float, ...] | None = None) -> bool:
    """Whether a `run --due` at `now` should run the agent, given the start of its last run. `known`: the
    schedule's `fires` around `now`, when the caller has them."""
    if from_future(last, now):
        return True
    if timing.schedule:
        fire, slot_start = known[:2] if known else last_fire(timing.schedule, now, zone)
        if last is None:
            return now - fire <= timing.grace  # a new agent waits for its first fire time, then may be late
        return last < slot_start
    if timing.interval:
        return last is None or last < now - now % timing.interval
    return False


def next_due(timing: Timing, last: float | None, now: float, zone: tzinfo | None = None,
             known: tuple[float, ...] | None = None) -> float | None:
    """When the agent is next due (`now` when it is due now); None when it is not scheduled."""
    if is_due(timing, last, now, zone, known):
        return now
    if timing.schedule:
        if known:
            return known[2]
        from croniter import croniter

        zone = zone or local_zone()
        return croniter(timing.schedule, datetime.fromtimestamp(now, zone)).get_next(datetime).timestamp()
    if timing.interval:
        return now - now % timing.interval + timing.interval
    return None


def stale_reason(timing: Timing, reference: float | None, now: float, zone: tzinfo | None = None,
                 known: tuple[float, ...] | None = None) -> str | None:
    """Why the agent counts as stale (it should have run by now), or None. `reference` is its last run, or when
    its schedule was installed if it never ran; with neither, it is not judged."""
    from zenctl.core.timeutil import ago, iso

    if reference is None or from_future(reference, now):
        return None
    if timing.schedule:
        when = now - timing.grace
        if known and when >= known[0]:
            expected = known[0]
        elif known and when >= known[3]:
            expected = known[3]
        else:
            expected, _ = last_fire(timing.schedule, when, zone)
        if reference < expected:
            return (f"no run since {iso(reference)} ({ago(now - reference)} ago); {timing.describe()} was due at "
                    f"{iso(expected)} (grace {timing.grace:g} s)")
        return None
    if timing.interval and now - reference > 2 * timing.interval:
        return (f"no run since {iso(reference)} ({ago(now - reference)} ago); expected {timing.describe()} "
                f"(stale after {2 * timing.interval} s)")
    return None
