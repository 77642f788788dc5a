"""Quality checks: the judgements as pure functions of a profile, and through the CLI the history a dataset
builds in the state (row count change, mean and spread leaving the band of earlier runs), freshness by the
newest timestamp and by the file's age."""

import os
import time

import pytest

from tests.agents.data_validator.helpers import check, config, finding
from zenctl.agents.data_validator import quality
from zenctl.agents.data_validator.config import Checks, Drift
from zenctl.agents.data_validator.schema import load_schema

SCHEMA = {"fields": [{"name": "id", "type": "integer"}, {"name": "email", "type": "string"},
                     {"name": "amount", "type": "number"}, {"name": "updated", "type": "datetime"}]}


def profile_of(rows: list[list[str]], checks: Checks) -> quality.Profile:
    schema = load_schema(SCHEMA)
    profile = quality.Profile(["id", "email", "amount", "updated"], schema.fields, frozenset(schema.missing_values),
                              set(checks.distinct), [list(k) for k in checks.unique_keys],
                              checks.freshness.field if checks.freshness else None)
    for row in rows:
        profile.add(row)
    return profile


ROWS = [["1", "a@x", "10", "2025-01-01T00:00:00Z"], ["2", "", "20", "2025-01-02T00:00:00Z"],
        ["2", "", "30", "2025-01-03T00:00:00Z"], ["4", "d@x", "-5", "2025-01-04T00:00:00Z"]]


def test_null_rate_ranges_distinct_and_duplicate_keys():
    checks = Checks(null_rate={"email": 0.25, "amount": 0}, ranges={"amount": {"min": 0, "max": 100}},
                    distinct={"email": {"min": 3}}, unique_keys=[["id"]])
    problems = quality.judge(profile_of(ROWS, checks), checks, time.time(), None)
    found = {(p.check, p.field) for p in problems}
    assert found == {("null_rate", "email"), ("range", "amount"), ("distinct", "email"), ("duplicates", "id")}
    by = {p.check: p for p in problems}
    assert by["null_rate"].value == 0.5 and "2 of 4 rows" in by["null_rate"].message
    assert "smallest value -5 is below 0" in by["range"].message
    assert "row 4 (2)" in by["duplicates"].message  # the repeated key's data row, numbered as frictionless does


def test_freshness_by_the_newest_timestamp():
    checks = Checks(freshness={"field": "updated", "max_age": "1d"})
    profile = profile_of(ROWS, checks)
    newest = profile.newest.timestamp()
    assert not quality.judge(profile, checks, newest + 3600, None)
    (problem,) = quality.judge(profile, checks, newest + 3 * 86400, None)
    assert problem.check == "freshness" and "3.0d ago" in problem.message


def test_the_drift_band_is_the_median_and_mad_of_earlier_runs():
    centre, half = quality.band([10, 11, 9, 10, 30], sigmas=4)
    assert centre == 10 and half == pytest.approx(4 * 1.4826 * 1)  # the wild 30 does not widen it
    assert quality.band([5, 5, 5, 5, 5], sigmas=4) == (5, pytest.approx(0.05))  # the 1% floor
    history = [{"rows": 100, "fields": {"amount": {"mean": 10 + (i % 3) * 0.1, "std": 2}}} for i in range(6)]
    drift = Drift(min_runs=5)
    assert not quality.drift({"rows": 110, "fields": {"amount": {"mean": 10.1, "std": 2}}}, history, drift)
    problems = quality.drift({"rows": 40, "fields": {"amount": {"mean": 25, "std": 2}}}, history, drift)
    assert {p.check for p in problems} == {"drift.rows", "drift.mean"}
    assert not quality.drift({"rows": 40, "fields": {"amount": {"mean": 25, "std": 2}}}, history[:3],
                             drift)[1:]  # too few runs for a band; the row count is judged from one


@pytest.mark.integration
def test_drift_is_learned_from_the_datasets_own_runs(zenctl, tmp_path):
    data = tmp_path / "sales.csv"
    cfg = config(zenctl, [{"name": "sales", "path": str(data), "schema": SCHEMA,
                           "checks": {"drift": {"min_runs": 3}}}])
    for run in range(4):
        rows = "".join(f"{i},a@x,{10 + (i + run) % 3},2025-01-01T00:00:00Z\n" for i in range(60))
        data.write_text("id,email,amount,updated\n" + rows)
        code, out = check(zenctl, cfg)
        assert code == 0, out["findings"]
    data.write_text("id,email,amount,updated\n" + "".join(f"{i},a@x,{500 + i},2025-01-01T00:00:00Z\n"
                                                           for i in range(20)))
    code, out = check(zenctl, cfg)
    found = finding(out, "data:sales:quality")
    assert code == 1 and found["status"] == "warning"
    checks = {p["check"] for p in found["evidence"]["problems"]}
    assert {"drift.rows", "drift.mean", "drift.std"} <= checks
    assert found["evidence"]["history_runs"] == 4


@pytest.mark.integration
def test_freshness_by_the_files_age(zenctl, tmp_path):
    data = tmp_path / "sales.csv"
    data.write_text("id,email,amount,updated\n1,a@x,1,2025-01-01T00:00:00Z\n")
    old = time.time() - 3 * 86400
    os.utime(data, (old, old))
    cfg = config(zenctl, [{"name": "sales", "path": str(data), "schema": SCHEMA,
                           "checks": {"freshness": {"max_age": "1d"}}}])
    code, out = check(zenctl, cfg)
    found = finding(out, "data:sales:quality")
    assert code == 1 and "file modified 3.0d ago, older than 1.0d" in found["message"]
