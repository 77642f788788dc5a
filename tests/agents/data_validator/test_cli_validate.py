"""`zenctl data validate` and `zenctl data infer` as a user runs them (the installed command in a subprocess): exit
codes 0 valid / 2 invalid / 3 could not read, frictionless's --json shape, the listing cap said, bad input as one
line on stderr and never a traceback."""

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DATA = Path(__file__).with_name("data")


@pytest.fixture
def fixtures(tmp_path):
    for name in ("invalid.csv", "schema-errors.csv", "schema-valid.json", "duplicate-headers.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def test_validate_json_matches_observed_full(zenctl, fixtures):
    expected = {f["fixture"]: f for f in json.loads((DATA / "expected_errors.json").read_text())["fixtures"]}
    for name, fx in expected.items():
        done = zenctl("data", "validate", *fx["cli_args"], "--json")
        assert done.returncode == 2, done.stderr
        report = json.loads(done.stdout)
        assert report["valid"] is False and list(report)[:5] == ["valid", "stats", "warnings", "errors", "tasks"]
        got = [[i + 1, e.get("rowNumber"), e.get("fieldNumber"), e["type"]]
               for i, t in enumerate(report["tasks"]) for e in t["errors"]]
        assert got == fx["observed_full"], name


def test_validate_text_and_cap(zenctl, fixtures):
    done = zenctl("data", "validate", "--schema", "schema-valid.json", "schema-errors.csv", "--limit", "3")
    assert done.returncode == 2 and done.stderr == ""
    out = done.stdout
    assert out.startswith("schema-errors.csv: invalid: 9 errors in 4 rows")
    assert "constraint-error 3" in out and "primary-key 2" in out
    assert "listing stopped after 3 errors; the counts above are exact (6 more not listed)" in out
    code, report = zenctl.json("data", "validate", "--schema", "schema-valid.json", "schema-errors.csv",
                               "--limit", "3")
    task = report["tasks"][0]
    assert code == 2 and len(task["errors"]) == 3 and task["stats"]["errors"] == 9 and task["errorsTruncated"]


def test_valid_file_and_quiet(zenctl, tmp_path):
    (tmp_path / "ok.csv").write_text("id,name\n1,a\n2,b\n")
    done = zenctl("data", "validate", "ok.csv")
    assert done.returncode == 0 and done.stdout == "ok.csv: valid (2 rows)\n"
    done = zenctl("data", "validate", "ok.csv", "-q")
    assert done.returncode == 0 and done.stdout == ""


def test_unreadable_and_bad_schema_are_one_line(zenctl, tmp_path):
    done = zenctl("data", "validate", "missing.csv")
    assert done.returncode == 3 and "Traceback" not in done.stderr + done.stdout
    (tmp_path / "d.csv").write_text("a\n1\n")
    (tmp_path / "s.json").write_text('{"fields": [{"name": "a", "type": "integr"}]}')
    done = zenctl("data", "validate", "d.csv", "--schema", "s.json")
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "s.json: fields[0].type" in done.stderr
    (tmp_path / "s.yaml").write_text("fields: [\n")
    done = zenctl("data", "validate", "d.csv", "--schema", "s.yaml")
    assert done.returncode == 3 and "not valid YAML" in done.stderr and "Traceback" not in done.stderr


def test_control_characters_in_data_are_escaped(zenctl, tmp_path):
    (tmp_path / "evil.csv").write_text('a,b\n1,2\n"\x1b]52;c;aGk=\x07x",3\n', newline="")
    done = zenctl("data", "validate", "evil.csv", "--schema", str(_schema(tmp_path)))
    assert done.returncode == 2 and "\x1b" not in done.stdout and "\\x1b" in done.stdout


def _schema(tmp_path):
    path = tmp_path / "ints.json"
    path.write_text('{"fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "integer"}]}')
    return path


def test_data_package(zenctl, tmp_path):
    (tmp_path / "people.csv").write_text("id\n1\n2\n")
    (tmp_path / "orders.csv").write_text("id,person\n1,1\n2,5\n")
    (tmp_path / "datapackage.json").write_text(json.dumps({"resources": [
        {"name": "people", "path": "people.csv", "schema": {"fields": [{"name": "id", "type": "integer"}]}},
        {"name": "orders", "path": "orders.csv", "schema": {
            "fields": [{"name": "id", "type": "integer"}, {"name": "person", "type": "integer"}],
            "foreignKeys": [{"fields": "person", "reference": {"resource": "people", "fields": "id"}}]}}]}))
    code, report = zenctl.json("data", "validate", "datapackage.json")
    assert code == 2 and [t["name"] for t in report["tasks"]] == ["people", "orders"]
    assert [(e["rowNumber"], e["type"]) for e in report["tasks"][1]["errors"]] == [(3, "foreign-key")]


def test_infer_prints_and_writes(zenctl, tmp_path):
    (tmp_path / "d.csv").write_text("id,when,mail\n1,2024-01-02,a@example.com\n2,2024-01-03,b@example.com\n")
    done = zenctl("data", "infer", "d.csv")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert [(f["name"], f["type"], f.get("format")) for f in schema["fields"]] == [
        ("id", "integer", None), ("when", "date", None), ("mail", "string", "email")]
    done = zenctl("data", "infer", "d.csv", "-o", "schema.json")
    assert done.returncode == 0 and json.loads((tmp_path / "schema.json").read_text()) == schema
    assert zenctl("data", "validate", "d.csv", "--schema", "schema.json").returncode == 0
    done = zenctl("data", "infer", "nope.csv")
    assert done.returncode == 3 and done.stderr.count("\n") == 1


def test_progress_on_a_terminal_only(zenctl, tmp_path):
    import os
    import pty
    import subprocess

    from tests.conftest import ZENCTL

    big = tmp_path / "big.csv"
    with open(big, "w") as out:
        out.write("id,name\n")
        out.write("1,abcdef\n" * 4_200_000)
    master, slave = pty.openpty()
    proc = subprocess.run([ZENCTL, "data", "validate", "big.csv"], cwd=tmp_path, env=zenctl.env, stdout=subprocess.PIPE,
                          stderr=slave, timeout=300)
    os.close(slave)
    seen = b""
    try:
        while True:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            seen += chunk
    except OSError:
        pass
    os.close(master)
    assert proc.returncode == 0 and b"validating..." in seen and b"% of 37,800,008 bytes" in seen
    assert proc.stdout == b"big.csv: valid (4,200,000 rows)\n"
    quiet = zenctl("data", "validate", "big.csv")  # stderr a pipe: no progress
    assert quiet.returncode == 0 and quiet.stderr == ""
