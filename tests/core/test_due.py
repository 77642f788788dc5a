"""Due and stale decisions with time passed in: intervals, cron schedules, DST changes, a clock set back."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from zenctl.core.due import Timing, is_due, next_due, stale_reason

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(*parts, zone=BERLIN, fold=0) -> float:
    return datetime(*parts, tzinfo=zone, fold=fold).timestamp()


def test_interval_slots_are_aligned_so_a_late_start_does_not_drift():
    every5 = Timing(interval=300)
    base = 1_800_000_000.0 - 1_800_000_000.0 % 300  # a slot boundary
    assert is_due(every5, None, base + 1)
    assert not is_due(every5, base + 0.4, base + 299)  # same slot
    assert is_due(every5, base + 0.4, base + 300.2)  # cron fires 0.2 s into the next slot: due, no drift
    assert not is_due(every5, base + 290, base + 299)  # a manual run late in the slot counts for that slot
    assert next_due(every5, base + 0.4, base + 10) == base + 300


def test_clock_set_back_makes_the_agent_due_and_not_stale():
    every5 = Timing(interval=300)
    now = 1_800_000_000.0
    last = now + 3600  # the last run "happened" an hour in the future: the clock went back
    assert is_due(every5, last, now)
    assert stale_reason(every5, last, now) is None
    assert not is_due(every5, now + 30, now)  # small skew is not a jump


def test_schedule_due_once_per_fire_time():
    daily3 = Timing(schedule="0 3 * * *")
    last = at(2026, 11, 23, 3, 0, 1)
    assert not is_due(daily3, last, at(2026, 11, 23, 14, 0), BERLIN)
    assert is_due(daily3, last, at(2026, 11, 24, 3, 0, 0, 300000), BERLIN)
    assert is_due(daily3, last, at(2026, 11, 24, 9, 0), BERLIN)  # missed at 3:00 (host off): runs at next tick
    assert not is_due(daily3, at(2026, 11, 24, 9, 0, 1), at(2026, 11, 24, 9, 5), BERLIN)
    assert next_due(daily3, last, at(2026, 11, 23, 14, 0), BERLIN) == at(2026, 11, 24, 3, 0)


def test_a_new_agent_waits_for_its_first_fire_time():
    daily3 = Timing(schedule="0 3 * * *", grace=900)
    assert not is_due(daily3, None, at(2026, 11, 24, 14, 0), BERLIN)
    assert is_due(daily3, None, at(2026, 11, 24, 3, 0, 0, 500000), BERLIN)
    assert is_due(daily3, None, at(2026, 11, 24, 3, 10), BERLIN)  # within the grace
    assert not is_due(daily3, None, at(2026, 11, 24, 3, 20), BERLIN)


def test_spring_forward_a_job_in_the_skipped_hour_still_runs_that_day():
    # 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT, so 02:30 never happens
    job = Timing(schedule="30 2 * * *")
    last = at(2026, 3, 7, 2, 30, zone=NEW_YORK)
    assert is_due(job, last, at(2026, 3, 8, 3, 0, 5, zone=NEW_YORK), NEW_YORK)
    ran = at(2026, 3, 8, 3, 0, 5, zone=NEW_YORK)
    assert not is_due(job, ran, at(2026, 3, 8, 3, 31, zone=NEW_YORK), NEW_YORK)


def test_fall_back_a_fixed_time_job_runs_once_but_a_per_minute_job_keeps_running():
    # 2026-11-01 in New York: 02:00 EDT goes back to 01:00 EST, so 01:00-01:59 happens twice
    fixed = Timing(schedule="30 1 * * *")
    first_run = at(2026, 11, 1, 1, 30, 1, zone=NEW_YORK, fold=0)
    second_pass = at(2026, 11, 1, 1, 30, 1, zone=NEW_YORK, fold=1)
    assert second_pass - first_run == 3600
    assert not is_due(fixed, first_run, second_pass, NEW_YORK)
    every_minute = Timing(schedule="* * * * *")
    late_first_pass = at(2026, 11, 1, 1, 59, 1, zone=NEW_YORK, fold=0)
    assert is_due(every_minute, late_first_pass, at(2026, 11, 1, 1, 5, 1, zone=NEW_YORK, fold=1), NEW_YORK)


def test_stale_after_twice_the_interval():
    every5 = Timing(interval=300)
    now = 1_800_000_000.0
    assert stale_reason(every5, now - 599, now) is None
    reason = stale_reason(every5, now - 601, now)
    assert "no run since" in reason and "every 300 s" in reason
    assert stale_reason(every5, None, now) is None  # never ran and never scheduled: not judged


def test_stale_after_the_schedules_due_time_plus_grace():
    daily3 = Timing(schedule="0 3 * * *", grace=900)
    yesterday = at(2026, 11, 23, 3, 0, 2)
    assert stale_reason(daily3, yesterday, at(2026, 11, 24, 3, 10), BERLIN) is None  # within the grace
    assert "was due at" in stale_reason(daily3, yesterday, at(2026, 11, 24, 3, 16), BERLIN)
    assert stale_reason(daily3, at(2026, 11, 24, 3, 0, 3), at(2026, 11, 24, 9, 0), BERLIN) is None


@pytest.mark.parametrize("interval,spec", [(60, "* * * * *"), (300, "*/5 * * * *"), (3600, "0 * * * *"),
                                           (21600, "0 */6 * * *"), (86400, "0 0 * * *"), (90, "* * * * *"),
                                           (420, "* * * * *"), (30, "* * * * *")])
def test_intervals_become_cron_fields(interval, spec):
    from zenctl.core.crontab import cron_spec

    assert cron_spec(interval, None) == spec


def test_fires_kept_in_the_state_give_the_same_decisions_without_croniter(tmp_path):
    """`run --due` keeps a schedule's fire times until the next one (remembered_fires): every decision made from
    them equals the one croniter makes, and a changed schedule or a garbled memo is worked out again."""
    import json

    from zenctl.core.due import fires, remembered_fires
    from zenctl.core.state import open_state

    state = open_state(tmp_path / "zenctl.db")
    try:
        daily = Timing(schedule="0 3 * * *", grace=900)
        start = 1_800_000_000.0
        for now in (start, start + 60, start + 3600, start + 86400 + 7):
            known = remembered_fires(state, "a", daily.schedule, now)
            assert known == fires(daily.schedule, now)
            for last in (None, now - 90000, now - 3600, now - 60, now + 7200):
                assert is_due(daily, last, now, known=known) == is_due(daily, last, now)
                assert next_due(daily, last, now, known=known) == next_due(daily, last, now)
                assert stale_reason(daily, last, now, known=known) == stale_reason(daily, last, now)
        hourly = "5 * * * *"
        assert remembered_fires(state, "a", hourly, start) == fires(hourly, start)
        with state.write() as conn:
            conn.execute("UPDATE agent_state SET value = ? WHERE agent = 'zenctl' AND key = 'due:a'",
                         (json.dumps({"schedule": hourly, "fire": "x"}),))
        assert remembered_fires(state, "a", hourly, start) == fires(hourly, start)
    finally:
        state.close()


def test_a_tick_with_nothing_due_imports_no_cron_library(zenctl):
    from tests.conftest import CALM, OTHERS_OFF

    zenctl.config(CALM.replace("  system_health:\n", "  system_health:\n    schedule: '0 0 1 1 *'\n") + OTHERS_OFF)
    for _ in range(2):  # the first creates the state, the second keeps the validated config (core.configcache)
        zenctl("run", "--due")
    done = zenctl("run", "--due", "--json", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0 and json.loads(done.stdout)["agents"][0]["outcome"] == "not_due"
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "croniter" not in imported and "psutil" not in imported
