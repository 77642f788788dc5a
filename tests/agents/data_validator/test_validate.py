"""Validation parity with frictionless: the fixtures' `observed_full` lists, and tricky cases whose expected errors
were observed with `frictionless validate --json` 5.21.0 (row number, field number, type, in its order). Each case
runs through both engines: the exact row-by-row one and the pyarrow fast path, which must agree to the byte."""

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from zenctl.agents.data_validator import fastcsv, readers
from zenctl.agents.data_validator.readers import TableReader
from zenctl.agents.data_validator.validate import validate_path

DATA = Path(__file__).with_name("data")


def triples(report, task=None):
    tasks = report.tasks if task is None else [report.tasks[task]]
    return [[e.row_number, e.field_number, e.type] for t in tasks for e in t.errors]


def both(path, schema=None, **kw):
    """The report of each engine; they must be identical."""
    exact = validate_path(str(path), schema=schema, fast=False, **kw)
    fast = validate_path(str(path), schema=schema, fast=True, **kw)
    a, b = exact.to_dict(), fast.to_dict()
    for d in (a, b):
        d["stats"].pop("seconds")
        for t in d["tasks"]:
            t["stats"].pop("seconds", None)
    assert a == b
    return fast


@pytest.mark.parametrize("fixture", json.loads((DATA / "expected_errors.json").read_text())["fixtures"],
                         ids=lambda f: f["fixture"])
def test_frictionless_fixtures_observed_full(fixture, tmp_path, monkeypatch):
    for name in fixture["files"]:
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    args = fixture["cli_args"]
    schema = args[args.index("--schema") + 1] if "--schema" in args else None
    report = both(args[-1], schema)
    got = [[i + 1, e.row_number, e.field_number, e.type] for i, t in enumerate(report.tasks) for e in t.errors]
    assert got == fixture["observed_full"]
    for asserted in fixture["asserted"]:
        if asserted["complete"]:
            assert [g[1:] for g in got] == asserted["errors"]


def test_json_shape_is_frictionless(tmp_path, monkeypatch):
    shutil.copy(DATA / "invalid.csv", tmp_path / "invalid.csv")
    monkeypatch.chdir(tmp_path)
    d = validate_path("invalid.csv").to_dict()
    assert list(d) == ["valid", "stats", "warnings", "errors", "tasks"]
    assert list(d["stats"]) == ["tasks", "errors", "warnings", "seconds"]
    task = d["tasks"][0]
    assert list(task)[:8] == ["name", "type", "valid", "place", "labels", "stats", "warnings", "errors"]
    assert list(task["stats"]) == ["errors", "warnings", "seconds", "md5", "sha256", "bytes", "fields", "rows"]
    assert (task["name"], task["place"], task["labels"]) == ("invalid", "invalid.csv", ["id", "name", "", "name"])
    assert (task["stats"]["md5"], task["stats"]["bytes"], task["stats"]["rows"]) == (
        "8c73c3d9d59088dcb2508e0b348bf8a8", 50, 4)
    label, cell, row = task["errors"][1], task["errors"][2], task["errors"][6]
    assert list(label) == ["type", "title", "description", "message", "tags", "note", "labels", "rowNumbers",
                           "label", "fieldName", "fieldNumber"]
    assert label["message"] == 'Label "name" in the header at position "4" is duplicated to a label: at position "2"'
    assert label["fieldName"] == "name2" and label["note"] == 'at position "2"'
    assert list(cell) == ["type", "title", "description", "message", "tags", "note", "cells", "rowNumber", "cell",
                          "fieldName", "fieldNumber"]
    assert cell["message"] == 'Row at position "2" has a missing cell in field "field3" at position "3"'
    assert list(row) == ["type", "title", "description", "message", "tags", "note", "cells", "rowNumber"]
    assert task["errorCounts"] == {"blank-label": 1, "blank-row": 1, "duplicate-label": 1, "extra-cell": 1,
                                   "missing-cell": 4}


# (file text, schema or None, expected [rowNumber, fieldNumber, type]) as frictionless 5.21.0 reports them
CASES = {
    "blank_rows_quoted_newline_ragged": (
        'a,b,c\n1,2,3\n,,\n , ,\n,,,\n,\n1,2,3,,\n"x\ny",2,3\n4,5\n', None,
        [[3, None, "blank-row"], [5, None, "blank-row"], [6, None, "blank-row"], [7, 4, "extra-cell"],
         [7, 5, "extra-cell"], [9, 3, "missing-cell"]]),
    "unique_and_primary_key": (
        "id,u,v\n1,a,x\n1,a,x\n2,b,y\n,c,z\n,c,z\n",
        {"fields": [{"name": "id", "type": "integer"}, {"name": "u", "constraints": {"unique": True}},
                    {"name": "v", "constraints": {"unique": True}}], "primaryKey": ["id"]},
        [[3, 2, "unique-error"], [3, 3, "unique-error"], [3, None, "primary-key"], [5, None, "primary-key"],
         [6, 2, "unique-error"], [6, 3, "unique-error"], [6, None, "primary-key"]]),
    "extra_and_incorrect_labels": (
        "x,name,id,q\n1,a,b\n", {"fields": [{"name": "id", "type": "integer"}, {"name": "name"}]},
        [[None, 3, "extra-label"], [None, 4, "extra-label"], [None, 1, "incorrect-label"], [2, 4, "missing-cell"]]),
    "missing_labels": (
        "id,name\n1,a\n2,b,c\n",
        {"fields": [{"name": "id", "type": "integer"}, {"name": "name"}, {"name": "z", "type": "integer"},
                    {"name": "w"}]},
        [[None, 3, "missing-label"], [None, 4, "missing-label"], [3, 3, "extra-cell"]]),
    "duplicate_blank_incorrect_labels": (
        "a,a,,b\n1,2,3,4\n", {"fields": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]},
        [[None, 2, "duplicate-label"], [None, 3, "blank-label"], [None, 4, "incorrect-label"]]),
    "duplicate_headers_inferred": (
        "id,x,id,id\n1,2,3,4\n", None, [[None, 3, "duplicate-label"], [None, 4, "duplicate-label"]]),
    "constraints": (
        "id,val\n1,5\n2,x\n3,100\n4,\n5,abc\n",
        {"fields": [{"name": "id", "type": "integer", "constraints": {"minimum": 2, "maximum": 4, "enum": [1, 2, 3]}},
                    {"name": "val", "constraints": {"minLength": 2, "maxLength": 2, "pattern": "[a-z]+",
                                                    "enum": ["ab", "x"], "required": True}}]},
        [[2, 1, "constraint-error"], [2, 2, "constraint-error"], [2, 2, "constraint-error"],
         [2, 2, "constraint-error"], [3, 2, "constraint-error"], [4, 2, "constraint-error"],
         [4, 2, "constraint-error"], [4, 2, "constraint-error"], [5, 1, "constraint-error"],
         [5, 2, "constraint-error"], [6, 1, "constraint-error"], [6, 1, "constraint-error"],
         [6, 2, "constraint-error"], [6, 2, "constraint-error"]]),
    "blank_row_with_primary_key_and_required_missing_cell": (
        "id,name\n1,a\n,\n,\n2\n3,x,\n",
        {"fields": [{"name": "id", "type": "integer", "constraints": {"unique": True}},
                    {"name": "name", "constraints": {"required": True}}], "primaryKey": "id"},
        [[3, None, "blank-row"], [3, None, "primary-key"], [4, None, "blank-row"], [4, None, "primary-key"],
         [5, 2, "constraint-error"], [5, 2, "missing-cell"], [6, 3, "extra-cell"]]),
    "cell_errors_before_missing_and_extra_cells": (
        "a,b,c,d\nx\n1,,\nq,,,,z\n",
        {"fields": [{"name": "a", "type": "integer"}, {"name": "b", "constraints": {"required": True}},
                    {"name": "c", "constraints": {"required": True}},
                    {"name": "d", "type": "integer", "constraints": {"required": True, "minimum": 3}}],
         "primaryKey": "a"},
        [[2, 1, "type-error"], [2, 2, "constraint-error"], [2, 3, "constraint-error"], [2, 4, "constraint-error"],
         [2, 2, "missing-cell"], [2, 3, "missing-cell"], [2, 4, "missing-cell"], [2, None, "primary-key"],
         [3, 2, "constraint-error"], [3, 3, "constraint-error"], [3, 4, "constraint-error"], [3, 4, "missing-cell"],
         [4, 1, "type-error"], [4, 2, "constraint-error"], [4, 3, "constraint-error"], [4, 4, "constraint-error"],
         [4, 5, "extra-cell"], [4, None, "primary-key"]]),
    "self_foreign_key_composite": (
        "a,b\n1,2\n1,2\n",
        {"fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "integer"}], "primaryKey": ["a", "b"],
         "foreignKeys": [{"fields": ["a", "b"], "reference": {"resource": "", "fields": ["b", "a"]}}]},
        [[2, None, "foreign-key"], [3, None, "primary-key"], [3, None, "foreign-key"]]),
    "crlf_with_blank_line": ("a,b\r\n1,2\r\n\r\n3,4\r\n", None, [[3, None, "blank-row"]]),
    "blank_header_and_lines": ("\n\n\n", None, [[2, None, "blank-row"], [3, None, "blank-row"]]),
    "no_final_newline": ("a,b\n1,2", None, []),
    "inference_one_bad_value_is_string": (
        "a,b\n" + "".join(f"{i},{'x' if i == 3 else i}\n" for i in range(150)) + "y,7\n", None,
        [[152, 1, "type-error"]]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tricky_cases_match_frictionless(name, tmp_path):
    text, schema, expected = CASES[name]
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    report = both(path, schema)
    assert triples(report) == expected


def test_constraint_message_for_missing_cell_says_none(tmp_path):
    text, schema, _ = CASES["blank_row_with_primary_key_and_required_missing_cell"]
    (tmp_path / "t.csv").write_text(text)
    errors = validate_path(str(tmp_path / "t.csv"), schema=schema).to_dict()["tasks"][0]["errors"]
    assert errors[4]["cell"] == "None" and errors[4]["message"].startswith('The cell "None" in row at position "5"')


def test_data_package_foreign_keys_across_resources(tmp_path):
    (tmp_path / "people.csv").write_text("id,name\n1,a\n2,b\n")
    (tmp_path / "orders.csv").write_text("id,person,parent\n1,1,\n2,3,1\n3,2,9\n4,,\n")
    (tmp_path / "datapackage.json").write_text(json.dumps({"name": "p", "resources": [
        {"name": "people", "path": "people.csv", "schema": {"fields": [{"name": "id", "type": "integer"},
                                                                       {"name": "name"}], "primaryKey": ["id"]}},
        {"name": "orders", "path": "orders.csv", "schema": {
            "fields": [{"name": "id", "type": "integer"}, {"name": "person", "type": "integer"},
                       {"name": "parent", "type": "integer"}],
            "foreignKeys": [{"fields": ["person"], "reference": {"resource": "people", "fields": ["id"]}},
                            {"fields": "parent", "reference": {"resource": "", "fields": "id"}}]}}]}))
    report = both(tmp_path / "datapackage.json")
    assert [t.name for t in report.tasks] == ["people", "orders"] and report.tasks[0].valid
    errors = report.to_dict()["tasks"][1]["errors"]
    assert [(e["rowNumber"], e["type"]) for e in errors] == [(3, "foreign-key"), (4, "foreign-key")]
    assert errors[0]["note"] == 'for "person": values "3" not found in the lookup table "people" as "id"'
    assert list(errors[0])[-4:] == ["fieldNames", "fieldCells", "referenceName", "referenceFieldNames"]
    assert errors[1]["referenceName"] == "" and errors[1]["fieldCells"] == ["9"]


def test_data_package_bad_descriptor_names_the_key(tmp_path):
    from zenctl.agents.data_validator.schema import SchemaError

    (tmp_path / "datapackage.json").write_text(json.dumps({"resources": [{"name": "x", "path": "../etc/passwd"}]}))
    with pytest.raises(SchemaError, match=r"resources\[0\]\.path"):
        validate_path(str(tmp_path / "datapackage.json"))


@pytest.mark.parametrize("encoding, bom, warning", [
    ("utf-8", b"", None), ("utf-8", b"\xef\xbb\xbf", None), ("utf-16", b"", None),
    ("latin-1", b"", "read as Latin-1")])
def test_encodings(tmp_path, encoding, bom, warning):
    rows = "id,name\n" + "".join(f"{i},Chlo\u00e9 M\u00fcller\n" for i in range(300)) + "x,\u00e9\n"
    path = tmp_path / "e.csv"
    path.write_bytes(bom + rows.encode(encoding))
    report = both(path)
    assert triples(report) == [[302, 1, "type-error"]]
    assert report.tasks[0].labels == ["id", "name"]
    errors = report.to_dict()["tasks"][0]["errors"]
    assert errors[0]["cells"] == ["x", "\u00e9"]
    warnings = report.tasks[0].warnings
    assert (warning in warnings[0]) if warning else warnings == []


def test_latin1_found_late_switches_and_says_so(tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(b"a,b\n" + b"1,x\n" * 40000 + b"2,caf\xe9\n")
    report = both(path)
    assert report.tasks[0].valid and report.tasks[0].stats["rows"] == 40001
    assert "read as Latin-1" in report.tasks[0].warnings[0]


def test_bad_utf8_after_utf8_text_is_encoding_error(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"a,b\n" + "1,\u00e9\n".encode() * 40000 + b"2,caf\xe9\n")
    report = validate_path(str(path))
    assert [e.type for e in report.tasks[0].errors] == ["encoding-error"]
    assert "cannot decode byte 0xe9" in report.tasks[0].errors[0].note


def test_limit_keeps_counts_exact(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(200)) + "".join("x,1\n" for _ in range(500)))
    report = both(path, {"fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "integer"}]},
                  limit_errors=7)
    task = report.tasks[0]
    assert len(task.errors) == 7 and task.truncated and task.counts == {"type-error": 500}
    d = task.to_dict()
    assert d["stats"]["errors"] == 500 and d["errorsTruncated"] is True


def test_json_lines_and_arrays(tmp_path):
    """JSON Lines as frictionless[json] 5.21.0 reads them: keys not in the header ignored, a missing key is null,
    cells shown as text in errors, an integral float reads as integer, a blank line is a source error."""
    schema = {"fields": [{"name": "a", "type": "integer", "constraints": {"required": True}}, {"name": "b"}]}
    (tmp_path / "r.jsonl").write_text('{"a":1,"b":"x"}\n{"a":"q","b":"y","c":3}\n{"b":"z"}\n{"a":2.0,"b":5}\n'
                                      '{"a":true,"b":null}\n')
    report = both(tmp_path / "r.jsonl", schema)
    assert triples(report) == [[3, 1, "type-error"], [4, 1, "constraint-error"], [5, 2, "type-error"],
                               [6, 1, "type-error"]]
    errors = report.to_dict()["tasks"][0]["errors"]
    assert [(e["cells"], e["cell"]) for e in errors] == [(["q", "y"], "q"), (["", "z"], "None"),
                                                         (["2.0", "5"], "5"), (["True", ""], "True")]
    (tmp_path / "blank.jsonl").write_text('{"a":1}\n\n{"a":2}\n')
    assert [e.type for e in validate_path(str(tmp_path / "blank.jsonl")).tasks[0].errors] == ["source-error"]
    (tmp_path / "r.json").write_text('[["a", "b"], [1, "x"], [2]]')
    assert triples(validate_path(str(tmp_path / "r.json"), schema=schema)) == [[3, 2, "missing-cell"]]
    (tmp_path / "o.json").write_text('[{"a": 1, "b": "x"}, {"a": "y", "b": "z"}]')
    assert triples(validate_path(str(tmp_path / "o.json"), schema=schema)) == [[3, 1, "type-error"]]
    (tmp_path / "bad.json").write_text('[{"a": 1}, {"a": ')
    report = validate_path(str(tmp_path / "bad.json"))
    assert [e.type for e in report.tasks[0].errors] == ["source-error"]
    (tmp_path / "deep.jsonl").write_text("[" * 100000 + "]" * 100000 + "\n")
    assert "nested too deeply" in validate_path(str(tmp_path / "deep.jsonl")).tasks[0].errors[0].note


def test_directory_and_glob(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x,y\n1\n")
    (tmp_path / "notes.md").write_text("not data")
    report = validate_path(str(tmp_path))
    assert [t.name for t in report.tasks] == ["a", "b"] and not report.valid
    assert [t.name for t in validate_path(str(tmp_path / "b*.csv")).tasks] == ["b"]


def test_file_that_grows_is_read_as_opened(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("a\n" + "1\n" * 10)
    with TableReader(str(path)) as reader:
        with open(path, "a") as more:
            more.write("x\n" * 5)
        rows = list(reader.rows())
    assert len(rows) == 10 and "grew by 10 bytes" in reader.warnings[-1]


def test_file_that_vanishes_or_shrinks(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("a\n" + "1\n" * 10)
    with TableReader(str(path)) as reader:
        path.unlink()
        assert len(list(reader.rows())) == 10
    assert "removed" in reader.warnings[-1]
    big = tmp_path / "s.csv"
    big.write_text("a\n" + "1\n" * 200000)
    report_missing = validate_path(str(tmp_path / "nope.csv"))
    assert [e.type for e in report_missing.tasks[0].errors] == ["scheme-error"]
    with TableReader(str(big)) as reader:
        os.truncate(big, 1000)
        with pytest.raises(readers.SourceError, match="shrank"):
            list(reader.rows())


def test_fast_path_is_used_and_agrees_on_generated_data(tmp_path, monkeypatch):
    """Small blocks so that block edges, retries in pieces and the exact fallback all happen."""
    monkeypatch.setattr(fastcsv, "BLOCK_CHARS", 4000)
    monkeypatch.setattr(fastcsv, "SUB_BLOCK", 300)
    monkeypatch.setattr(readers, "BLOCK", 997)
    fastcsv.STATS.clear()
    for seed in range(12):
        r = random.Random(seed)
        bad = {"int": ["", "x", "1.5", " 7", "+3"], "num": ["", "1,5", "abc", "inf"],
               "date": ["", "2023-02-30", "2023-2-3"], "str": ["", "a,b", 'q"uote', "multi\nline", "\u00e9", "x\r\ny"],
               "bool": ["", "yes"]}
        good = {"int": lambda: str(r.randint(-50, 500)), "num": lambda: f"{r.uniform(-10, 100):.2f}",
                "date": lambda: f"2023-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                "str": lambda: r.choice(["alpha", "beta"]), "bool": lambda: r.choice(["true", "0"])}
        kinds = list(good)
        lines = ["id,n,d,s,b"]
        for i in range(r.randint(300, 700)):
            row = [r.choice(bad[k]) if r.random() < 0.01 else good[k]() for k in kinds]
            x = r.random()
            if x < 0.005:
                row = row[:r.randint(0, 4)]
            elif x < 0.01:
                row = row + ["extra"]
            elif x < 0.015:
                row = [""] * 5
            text = ",".join('"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\n\r') else c for c in row)
            lines.append(('bad"q,' if r.random() < 0.003 else "") + text)
        eol = r.choice(["\n", "\r\n"])
        path = tmp_path / f"g{seed}.csv"
        path.write_bytes((eol.join(lines) + eol).encode(r.choice(["utf-8", "utf-8-sig", "utf-16"])))
        schema = None
        if seed % 2:
            schema = {"fields": [{"name": "id", "type": "integer", "constraints": {"unique": seed % 4 == 1}},
                                 {"name": "n", "type": "number", "constraints": {"minimum": 0}},
                                 {"name": "d", "type": "date"},
                                 {"name": "s", "constraints": {"maxLength": 5, "required": True}},
                                 {"name": "b", "type": "boolean"}], "primaryKey": ["id"] if seed % 4 == 3 else []}
        both(path, schema)
    assert fastcsv.STATS.get("fast", 0) > 20 and fastcsv.STATS.get("split", 0) > 0


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    task = both(tmp_path / "empty.csv").to_dict()["tasks"][0]
    assert [e["type"] for e in task["errors"]] == ["source-error"]
    assert task["errors"][0]["note"] == "the source is empty"
    assert task["stats"]["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    (tmp_path / "hdr.csv").write_text("a,b\n")
    task = both(tmp_path / "hdr.csv").to_dict()["tasks"][0]
    assert task["valid"] and "rows" not in task["stats"] and task["stats"]["fields"] == 2


@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_fully_quoted_and_tsv_stay_on_the_fast_path(tmp_path, monkeypatch, delimiter):
    """Plain RFC 4180 quoting (every field quoted, doubled inner quotes, delimiters inside quotes) is read by pyarrow
    without falling back, and the errors are the exact engine's."""
    import csv

    monkeypatch.setattr(fastcsv, "BLOCK_CHARS", 16000)
    fastcsv.STATS.clear()
    path = tmp_path / ("q.tsv" if delimiter == "\t" else "q.csv")
    with open(path, "w", newline="") as out:
        w = csv.writer(out, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(["id", "name", "price"])
        for i in range(3000):
            w.writerow([i if i != 1500 else "x", f'say "hi"{delimiter} {i}', f"{i}.5" if i != 2500 else "n/a"])
    report = both(path)
    assert triples(report) == [[1502, 1, "type-error"], [2502, 3, "type-error"]]
    assert fastcsv.STATS["fast"] >= 3 and not any(k.startswith("exact") for k in fastcsv.STATS), fastcsv.STATS


EDGE_VALUES = {
    "integer": ["1", "-5", "007", "+3", " 4", "1_000", "99999999999999999999", "1.0", "x", "", "-0", "\u0661\u0662"],
    "number": ["1.5", "-2", "1e5", "inf", "NaN", "1,5", ".5", "5.", "+1.2", " 3", "1_0", "0x10", "", "1.5e400"],
    "date": ["2023-02-03", "2023-02-30", "2023-2-3", "0001-01-01", "9999-12-31", "2024-02-29", "2023-02-29",
             " 2023-01-01", "2023-01-01T00:00:00", "", "x"],
    "datetime": ["2023-02-03T10:00:00", "2023-02-03T24:00:00", "2023-02-03T10:00:00Z", "2023-02-03T10:00:00+99:00",
                 "2023-02-03T10:00:00+01:00", "2023-02-03 10:00:00", "2023-02-03T10:00", "2023-02-30T10:00:00",
                 "2023-02-03T10:00:60", ""],
    "time": ["10:00:00", "24:00:00", "10:00", "10:00:00Z", "1:2:3", ""],
    "year": ["2023", "0999", "10000", "-1", "+2023", ""],
    "boolean": ["true", "True", "TRUE", "1", "0", "false", "yes", "t", ""],
    "string": ["a", "", "abcdef", "\u00e9", "xyz"],
}


@pytest.mark.parametrize("seed", range(6))
def test_fast_column_checks_agree_on_edge_values(tmp_path, monkeypatch, seed):
    """Each type's edge values (the ones frictionless accepts and refuses) through the column checks: the fast
    verdicts must be the exact engine's, constraints included."""
    monkeypatch.setattr(fastcsv, "BLOCK_CHARS", 3000)
    r = random.Random(seed)
    types = list(EDGE_VALUES)
    lines = [",".join(f"c{i}" for i in range(len(types)))]
    for _ in range(1200):
        lines.append(",".join(r.choice(EDGE_VALUES[t]) if r.random() < 0.2 else EDGE_VALUES[t][0] for t in types))
    path = tmp_path / "edge.csv"
    path.write_text("\n".join(lines) + "\n")
    constraints = {"string": {"maxLength": 3, "required": True}, "integer": {"minimum": 0}} if seed % 2 else {}
    schema = {"fields": [{"name": f"c{i}", "type": t, "constraints": constraints.get(t, {})}
                         for i, t in enumerate(types)]}
    both(path, schema)


def test_growth_is_said_once_in_the_report(tmp_path, monkeypatch):
    path = tmp_path / "g.csv"
    path.write_text("a\n" + "1\n" * 10)
    real = TableReader.finish

    def grow_then_finish(self):
        if not getattr(self, "_grown", False):
            self._grown = True
            with open(path, "a") as more:
                more.write("x\n")
        real(self)

    monkeypatch.setattr(TableReader, "finish", grow_then_finish)
    task = validate_path(str(path)).tasks[0]
    assert task.valid and task.stats["rows"] == 10
    assert task.warnings == ["the file grew by 2 bytes during the run (validated the first 22 bytes)"]


def test_unique_and_primary_key_name_the_latest_earlier_row(tmp_path):
    """As frictionless 5.21.0: the note names the most recent earlier row with the value, and a unique-error's
    cell is the value as read ("007" is 7)."""
    path = tmp_path / "u.csv"
    path.write_text("id,v\n7,a\n007,b\n7,c\n")
    schema = {"fields": [{"name": "id", "type": "integer", "constraints": {"unique": True}}, {"name": "v"}],
              "primaryKey": ["id"]}
    errors = both(path, schema).to_dict()["tasks"][0]["errors"]
    assert [(e["rowNumber"], e["type"], e["note"]) for e in errors] == [
        (3, "unique-error", "the same as in the row at position 2"),
        (3, "primary-key", "the same as in the row at position 2"),
        (4, "unique-error", "the same as in the row at position 3"),
        (4, "primary-key", "the same as in the row at position 3")]
    assert errors[0]["cell"] == "7" and errors[0]["cells"] == ["007", "b"]
