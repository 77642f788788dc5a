"""`zenctl data check` as a user meets it: the run's JSON, --dataset, --dry-run, exit codes, and bad input (an
unknown dataset, a schema that is not Table Schema, a config key with a wrong value) as one line or one clear
finding, never a traceback."""

import json
import os

import pytest

from tests.agents.data_validator.helpers import SCHEMA, check, config, finding

pytestmark = pytest.mark.integration

VALID = b"id,name,day,amount\n1,Ann,2025-04-03,1.5\n2,Bob,2025-04-04,2\n"
INVALID = b"id,name,day,amount\n1,Ann,2025-04-03,1.5\nx,Bob,2025-04-04,2,9\n3,Cy\n"


def test_check_reports_each_dataset_with_frictionless_counts(zenctl, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(VALID)
    bad.write_bytes(INVALID)
    cfg = config(zenctl, [{"name": "good", "path": str(good), "schema": SCHEMA},
                          {"name": "bad", "path": str(bad), "schema": SCHEMA, "max_errors": 2}])
    code, run = check(zenctl, cfg)
    assert code == 2 and run["agent"] == "data_validator" and run["status"] == "critical"
    assert finding(run, "data:good")["status"] == "ok"
    bad_finding = finding(run, "data:bad")
    evidence = bad_finding["evidence"]
    assert evidence["counts"] == {"type-error": 1, "extra-cell": 1, "missing-cell": 2}
    assert evidence["listed"] == 2 and evidence["truncated"] is True  # the cap never hides the count
    assert [(e["type"], e["rowNumber"], e["fieldNumber"]) for e in evidence["errors"]] == [
        ("type-error", 3, 1), ("extra-cell", 3, 5)]
    assert "4 error(s) in 3 row(s)" in bad_finding["message"] and "listing the first 2" in bad_finding["message"]

    code, one = check(zenctl, cfg, "--dataset", "good")
    assert code == 0 and {f["check"].split(":")[1] for f in one["findings"]} == {"good"}


def test_check_table_output_and_quiet(zenctl, tmp_path):
    data = tmp_path / "good.csv"
    data.write_bytes(VALID)
    cfg = config(zenctl, [{"name": "good", "path": str(data), "schema": SCHEMA}])
    done = zenctl("data", "check", "-c", str(cfg))
    assert done.returncode == 0 and "data:good" in done.stdout
    quiet = zenctl("data", "check", "-c", str(cfg), "-q")
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_an_unknown_dataset_is_one_line(zenctl, tmp_path):
    cfg = config(zenctl, [{"name": "good", "path": str(tmp_path / "x.csv"), "schema": SCHEMA}])
    done = zenctl("data", "check", "-c", str(cfg), "--dataset", "nope")
    assert done.returncode == 3 and done.stderr.count("\n") == 1
    assert "--dataset 'nope'" in done.stderr and "known: good" in done.stderr


def test_a_schema_that_is_not_table_schema_is_named_with_its_key(zenctl, tmp_path):
    data = tmp_path / "good.csv"
    data.write_bytes(VALID)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"fields": [{"name": "id", "type": "integr"}]}))
    cfg = config(zenctl, [{"name": "good", "path": str(data), "schema": "schema.json"}])  # relative to the config
    code, run = check(zenctl, cfg)
    found = finding(run, "data:good")
    assert code == 3 and found["status"] == "unknown"
    assert str(schema) in found["message"] and "fields[0].type" in found["message"] and "integr" in found["message"]


def test_a_missing_file_and_no_match_are_findings(zenctl, tmp_path):
    cfg = config(zenctl, [{"name": "glob", "path": str(tmp_path / "none-*.csv"), "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    assert code == 2 and "no file matches" in finding(run, "data:glob")["message"]
    cfg = config(zenctl, [{"name": "gone", "path": str(tmp_path / "gone.csv"), "schema": SCHEMA}], name="b.yaml")
    code, run = check(zenctl, cfg)
    found = finding(run, "data:gone")
    assert code == 3 and found["status"] == "unknown" and "gone.csv" in found["message"]


def test_a_glob_of_files_is_one_dataset(zenctl, tmp_path):
    for day in ("01", "02"):
        (tmp_path / f"sales-{day}.csv").write_bytes(VALID if day == "01" else INVALID)
    cfg = config(zenctl, [{"name": "sales", "path": str(tmp_path / "sales-*.csv"), "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    evidence = finding(run, "data:sales")["evidence"]
    assert code == 2 and evidence["files"] == 2 and evidence["rows"] == 5
    assert evidence["errors"][0]["file"].endswith("sales-02.csv")


@pytest.mark.parametrize("dataset, key", [
    ({"name": "a", "schema": SCHEMA}, "give exactly one source"),
    ({"name": "a", "sqlite": "x.db", "schema": SCHEMA}, "needs table or query"),
    ({"name": "a", "sqlite": "x.db", "query": "DELETE FROM t", "schema": SCHEMA}, "must be a SELECT"),
    ({"name": "a", "sqlite": "x.db", "table": "t", "schema": SCHEMA, "repairs": ["normalize_encoding"]},
     "normalize_encoding is for files"),
    ({"name": "a b", "path": "x.csv", "schema": SCHEMA}, "datasets.0.name"),
    ({"name": "a", "path": "x.csv", "schema": SCHEMA, "checks": {"null_rate": {"id": 3}}}, "null_rate"),
])
def test_bad_dataset_config_is_one_line_naming_the_key(zenctl, dataset, key):
    cfg = config(zenctl, [dataset])
    done = zenctl("data", "check", "-c", str(cfg))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert key in done.stderr and "agents.data_validator.datasets.0" in done.stderr


def test_dry_run_changes_nothing_and_says_what_would_happen(zenctl, tmp_path):
    data = tmp_path / "orders.csv"
    data.write_bytes(b"id,name,day,amount\n1, Ann ,2025-04-03,1\n")
    cfg = config(zenctl, [{"name": "orders", "path": str(data), "schema": SCHEMA, "repairs": ["trim"]}])
    code, run = check(zenctl, cfg, "--dry-run")
    assert run["dry_run"] is True and run["actions"][0]["status"] == "previewed"
    assert data.read_bytes() == b"id,name,day,amount\n1, Ann ,2025-04-03,1\n"


def test_data_help_lists_the_commands(zenctl):
    done = zenctl("data", "--help")
    assert done.returncode == 0
    for command in ("check", "validate", "infer"):
        assert command in done.stdout


def test_a_planted_symlink_or_hard_link_is_not_read(zenctl, tmp_path):
    """Root reads the dataset: a link to someone else's file must not put that file's cells into the audit log."""
    secret = tmp_path / "secret.csv"
    secret.write_bytes(b"id,name,day,amount\nroot-only,x,y,z\n")
    link = tmp_path / "orders.csv"
    link.symlink_to(secret)
    db_link = tmp_path / "app.db"
    db_link.symlink_to(zenctl.db)
    cfg = config(zenctl, [{"name": "orders", "path": str(link), "schema": SCHEMA},
                          {"name": "state", "sqlite": str(db_link), "table": "runs", "schema": SCHEMA}])
    code, run = check(zenctl, cfg)
    assert code == 3
    for name in ("orders", "state"):
        found = finding(run, f"data:{name}")
        assert found["status"] == "unknown" and "symlink" in found["message"], found
    assert "root-only" not in json.dumps(run)
    link.unlink()
    os.link(secret, link)
    code, run = check(zenctl, cfg, "--dataset", "orders")
    assert "hard link" in finding(run, "data:orders")["message"] and "root-only" not in json.dumps(run)


def test_foreign_keys_to_the_same_file_and_to_another_dataset(zenctl, tmp_path):
    customers, orders = tmp_path / "customers.csv", tmp_path / "orders.csv"
    customers.write_bytes(b"id,name,parent\n1,a,\n2,b,1\n3,c,9\n")
    orders.write_bytes(b"id,customer\n1,1\n2,7\n3,2\n")
    customer_schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
                                  {"name": "parent", "type": "integer"}],
                       "foreignKeys": [{"fields": ["parent"], "reference": {"resource": "", "fields": ["id"]}}]}
    order_schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "customer", "type": "integer"}],
                    "foreignKeys": [{"fields": ["customer"], "reference": {"resource": "customers",
                                                                           "fields": ["id"]}}]}
    cfg = config(zenctl, [{"name": "customers", "path": str(customers), "schema": customer_schema},
                          {"name": "orders", "path": str(orders), "schema": order_schema}])
    _, run = check(zenctl, cfg)
    for name, row in (("customers", 4), ("orders", 3)):
        evidence = finding(run, f"data:{name}")["evidence"]
        assert evidence["counts"] == {"foreign-key": 1}, evidence
        assert evidence["errors"][0]["rowNumber"] == row


def test_a_wrong_encoding_is_a_clear_finding(zenctl, tmp_path):
    data = tmp_path / "orders.csv"
    data.write_bytes(b"id,name,day,amount\n1,Ann,2025-04-03,1\n2,Caf\xe9,2025-04-04,2\n")
    cfg = config(zenctl, [{"name": "orders", "path": str(data), "schema": SCHEMA, "encoding": "ascii"}])
    code, run = check(zenctl, cfg)
    found = finding(run, "data:orders")
    assert code in (2, 3) and "encoding-error" in json.dumps(found) and "cannot decode" in found["message"]
    cfg = config(zenctl, [{"name": "orders", "path": str(data), "schema": SCHEMA}], name="auto.yaml")
    code, run = check(zenctl, cfg)  # detected: Latin-1, said so
    found = finding(run, "data:orders")
    assert code == 0 and "Latin-1" in found["message"]


def test_validate_and_infer_are_wired(zenctl, tmp_path):
    good, bad, schema = tmp_path / "good.csv", tmp_path / "bad.csv", tmp_path / "schema.json"
    good.write_bytes(VALID)
    bad.write_bytes(INVALID)
    schema.write_text(json.dumps(SCHEMA))
    assert zenctl("data", "validate", str(good), "--schema", str(schema)).returncode == 0
    done = zenctl("data", "validate", str(bad), "--schema", str(schema), "--json", "--limit", "1")
    report = json.loads(done.stdout)
    assert done.returncode == 2 and report["valid"] is False and len(report["tasks"][0]["errors"]) == 1
    assert zenctl("data", "validate", str(tmp_path / "none.csv")).returncode == 3
    inferred = zenctl("data", "infer", str(good))
    assert inferred.returncode == 0
    assert [f["name"] for f in json.loads(inferred.stdout)["fields"]] == ["id", "name", "day", "amount"]
    out = tmp_path / "inferred.json"
    assert zenctl("data", "infer", str(good), "-o", str(out)).returncode == 0 and json.loads(out.read_text())
