"""OSV matching: range semantics, explicit versions, withdrawn, aliases folded, severity, malformed files named;
against real pypa advisory-database files (data/advisories, CC-BY-4.0) and records written here."""

import json
import shutil
from pathlib import Path

import pytest

from tests.agents.dependency_manager.pyindex import build_osv_dir, osv_record
from zenctl.agents.dependency_manager import advisories as adv

DATA = Path(__file__).parent / "data" / "advisories"


def ids(version: str, records: list[dict]) -> list[str]:
    found = []
    for record in records:
        found += [a for a in adv.parse_record(record, "test")]
    return [v.id for v in adv.match(version, found)]


def test_introduced_fixed_ranges_in_any_order():
    record = osv_record("X-1", "pkg")
    record["affected"][0]["ranges"][0]["events"] = [
        {"introduced": "1.8"}, {"fixed": "1.8.4"}, {"introduced": "1.7"}, {"fixed": "1.7.10"}, {"introduced": "0"},
        {"fixed": "1.4.22"}]
    assert ids("1.0", [record]) == ["X-1"]
    assert ids("1.4.22", [record]) == []
    assert ids("1.5", [record]) == []
    assert ids("1.7.9", [record]) == ["X-1"]
    assert ids("1.7.10", [record]) == []
    assert ids("1.8.3", [record]) == ["X-1"]
    assert ids("1.9", [record]) == []


def test_last_affected_includes_that_version_only():
    record = osv_record("X-2", "pkg", introduced="2.0", last_affected="2.3")
    assert ids("1.9", [record]) == []
    assert ids("2.3", [record]) == ["X-2"]
    assert ids("2.3.1", [record]) == []


def test_explicit_versions_list_and_unfixed():
    record = osv_record("X-3", "pkg", introduced="5.0", versions=["1.2.3"])
    assert ids("1.2.3", [record]) == ["X-3"]
    assert ids("1.2.4", [record]) == []
    assert ids("9.0", [record]) == ["X-3"]  # introduced, never fixed
    [v] = adv.match("9.0", adv.parse_record(record, "t"))
    assert v.fixed is None


def test_withdrawn_is_ignored():
    assert ids("1.0", [osv_record("X-4", "pkg", fixed="2.0", withdrawn="2024-01-01T00:00:00Z")]) == []


def test_aliases_fold_one_vulnerability_under_two_ids():
    a = osv_record("PYSEC-1", "pkg", fixed="1.0.1", aliases=["CVE-1"])
    b = osv_record("GHSA-x", "pkg", fixed="1.0.1", aliases=["CVE-1"], severity="HIGH")
    other = osv_record("PYSEC-2", "pkg", fixed="1.2", aliases=["CVE-2"])
    found = adv.match("1.0.0", [x for r in (a, b, other) for x in adv.parse_record(r, "t")])
    assert [v.id for v in found] == ["PYSEC-1", "PYSEC-2"]
    assert found[0].aliases == ["GHSA-x", "CVE-1"]
    assert found[0].severity == "high" and found[0].fixed == "1.0.1"


def test_fix_is_the_smallest_fixed_version_above_installed():
    record = osv_record("X-5", "pkg")
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "1.2.5"}, {"introduced": "2.0"},
                                                    {"fixed": "2.1.1"}]
    [v] = adv.match("2.0.3", adv.parse_record(record, "t"))
    assert v.fixed == "2.1.1"
    [v] = adv.match("1.0", adv.parse_record(record, "t"))
    assert v.fixed == "1.2.5"


def test_cvss_v3_scores():
    assert adv.cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert adv.cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == 6.1
    assert adv.cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H") == 7.5
    assert adv.cvss3_score("garbage") is None


def test_real_database_files():
    db, errors = adv.load_dir(str(DATA))
    assert errors == []
    by = {p: {a.id for a in adv_list} for p, adv_list in db.items()}
    assert by["requests"] == {"PYSEC-2014-13", "PYSEC-2018-28"}
    # requests 0.12.01 is listed only by its spelling in `versions` (PEP 440 0.12.1): matched either way
    assert [v.id for v in adv.match("0.12.01", db["requests"])] == ["PYSEC-2014-13", "PYSEC-2018-28"]
    got = {v.id: v for v in adv.match("2.19.1", db["requests"])}
    assert set(got) == {"PYSEC-2018-28"} and got["PYSEC-2018-28"].fixed == "2.20.0"
    assert "CVE-2018-18074" in got["PYSEC-2018-28"].aliases
    # GIT ranges (commit hashes) are not versions: the ECOSYSTEM range decides
    assert [v.fixed for v in adv.match("2.2.4", db["flask"])] == ["2.2.5"]
    assert adv.match("2.2.5", db["flask"]) == []
    assert [v.fixed for v in adv.match("2.3.1", db["flask"])] == ["2.3.2"]
    # urllib3: two branches fixed separately
    assert {v.id: v.fixed for v in adv.match("2.0.6", db["urllib3"])} == {"PYSEC-2023-212": "2.0.7"}
    assert {v.id: v.fixed for v in adv.match("1.24.1", db["urllib3"])} == {"PYSEC-2023-207": "1.24.2",
                                                                           "PYSEC-2023-212": "1.26.18"}
    [sev] = [v.severity for v in adv.match("1.24.1", db["urllib3"]) if v.id == "PYSEC-2023-207"]
    assert sev == "medium"  # CVSS 6.1
    assert [v.fixed for v in adv.match("1.8.3", db["django"])] == ["1.8.4"]
    assert {v.id for v in adv.match("5.3", db["pyyaml"])} == {"PYSEC-2020-96", "PYSEC-2021-142"}


def test_malformed_files_are_named_and_the_rest_used(tmp_path):
    root = build_osv_dir(tmp_path / "adv")
    bad = root / "vulns" / "demo"
    (bad / "BROKEN-1.yaml").write_text("id: [unclosed\n")
    (bad / "BROKEN-2.json").write_text("{not json")
    (bad / "BROKEN-3.json").write_text(json.dumps({"id": "X", "affected": "no"}))
    (bad / "BROKEN-4.yaml").write_text("- just\n- a list\n")
    shutil.copytree(DATA / "vulns" / "requests", root / "vulns" / "requests")
    db, errors = adv.load_dir(str(root))
    assert len(errors) == 4
    assert all("BROKEN-" in e for e in errors)
    assert any("BROKEN-3.json" in e and "affected" in e for e in errors)
    assert [v.id for v in adv.match("1.0.0", db["demo"])] == ["PYSEC-2099-1"]  # PYSEC-2099-3 withdrawn
    assert "requests" in db


def test_missing_directory_is_one_error(tmp_path):
    db, errors = adv.load_dir(str(tmp_path / "nope"))
    assert db == {} and len(errors) == 1 and "not a directory" in errors[0]


@pytest.mark.parametrize("text", ["id: X\naffected:\n- package: {name: p, ecosystem: PyPI}\n  ranges:\n"
                                  "  - type: ECOSYSTEM\n    events: [{introduced: '0', fixed: '1'}]\n",
                                  "id: X\naffected:\n- package: {name: p, ecosystem: PyPI}\n  ranges:\n"
                                  "  - type: ECOSYSTEM\n    events: [{bogus: '1'}]\n"])
def test_bad_events_are_errors(tmp_path, text):
    (tmp_path / "X.yaml").write_text(text)
    db, errors = adv.load_dir(str(tmp_path))
    assert db == {} and len(errors) == 1


def test_only_the_installed_packages_folders_are_read(tmp_path):
    root = tmp_path / "db"
    shutil.copytree(DATA, root)
    (root / "vulns" / "django" / "BROKEN.yaml").write_text("id: [\n")  # never read: django is not installed
    db, errors = adv.load_dir(str(root), packages={"requests", "pyyaml"})
    assert set(db) == {"requests", "pyyaml"} and errors == []
    db, errors = adv.load_dir(str(root))
    assert "django" in db and len(errors) == 1


def test_service_results_fold_by_alias():
    a = adv.Vulnerability("PYSEC-1", ["CVE-1", "GHSA-1"], None, "1.0.1", "s")
    b = adv.Vulnerability("CVE-1", ["GHSA-1"], "high", "1.0.2", "")
    c = adv.Vulnerability("PYSEC-2", [], None, None, "")
    folded = adv.fold([a, b, c])
    assert [(v.id, v.aliases, v.fixed, v.severity) for v in folded] == [
        ("PYSEC-1", ["GHSA-1", "CVE-1"], "1.0.2", "high"), ("PYSEC-2", [], None, None)]


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time

    lines = ["id: BOMB", "a0: &a0 ['1.0', '1.1', '1.2', '1.3', '1.4', '1.5', '1.6', '1.7', '1.8', '1.9']"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += ["affected:", "- package: {name: p, ecosystem: PyPI}", "  versions: *a8"]
    (tmp_path / "BOMB.yaml").write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    db, errors = adv.load_dir(str(tmp_path))
    assert db == {} and len(errors) == 1 and "not a version" in errors[0]
    assert time.monotonic() - start < 5
