"""Schema inference: the types frictionless describe (5.21.0) gives for the same data, plus string formats and
`required` where the whole file has no empty cell; the inferred schema validates its own data."""

import json

from zenctl.agents.data_validator.infer import infer_schema
from zenctl.agents.data_validator.schema import load_schema
from zenctl.agents.data_validator.validate import validate_path

HEADER = ["allint", "oneBad", "empty", "bool10", "date", "year", "num", "mixed", "truefalse", "t1", "mail", "uid"]


def row(i):
    return [str(i), "x" if i == 2 else str(i), "", str(i % 2), "2023-01-0%d" % (i % 9 + 1), "2023", "%d.5" % i,
            str(i) if i % 2 else "%d.5" % i, "true" if i % 2 else "false", "10:00:00", f"user{i}@example.com",
            f"123e4567-e89b-12d3-a456-4266141740{i % 100:02d}"]


def write(tmp_path, rows, name="d.csv"):
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_types_like_frictionless_describe(tmp_path):
    for n in (4, 10, 200):
        schema = infer_schema(str(write(tmp_path, [HEADER] + [row(i) for i in range(n)])))
        types = {f["name"]: f["type"] for f in schema["fields"]}
        assert types == {"allint": "integer", "oneBad": "string", "empty": "any", "bool10": "integer",
                         "date": "date", "year": "integer", "num": "number", "mixed": "number",
                         "truefalse": "boolean", "t1": "time", "mail": "string", "uid": "string"}


def test_formats_required_and_names(tmp_path):
    rows = [["id", "", "id", "mail", "uid", "note"]]
    rows += [[str(i), "a", str(i), f"u{i}@example.org", f"123e4567-e89b-12d3-a456-4266141740{i:02d}",
              "" if i == 7 else "n"] for i in range(20)]
    schema = infer_schema(str(write(tmp_path, rows)))
    fields = {f["name"]: f for f in schema["fields"]}
    assert list(fields) == ["id", "field2", "id2", "mail", "uid", "note"]
    assert fields["mail"]["format"] == "email" and fields["uid"]["format"] == "uuid"
    assert fields["id"]["constraints"] == {"required": True} and "constraints" not in fields["note"]
    load_schema(schema)  # valid Table Schema


def test_required_looks_past_the_sample(tmp_path):
    rows = [["a", "b"]] + [[str(i), "x"] for i in range(500)] + [["", "x"]]
    schema = infer_schema(str(write(tmp_path, rows)))
    assert "constraints" not in schema["fields"][0] and schema["fields"][1]["constraints"] == {"required": True}


def test_inferred_schema_validates_its_data(tmp_path):
    path = write(tmp_path, [HEADER] + [row(i) for i in range(300)])
    schema = infer_schema(str(path))
    out = tmp_path / "schema.json"
    out.write_text(json.dumps(schema))
    # oneBad is string (one bad value early), so nothing fails
    assert validate_path(str(path), schema=str(out)).valid


def test_json_lines_inference(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"id": i, "name": f"n{i}", "ok": i % 2 == 0}) + "\n" for i in range(30)))
    types = {f["name"]: f["type"] for f in infer_schema(str(path))["fields"]}
    assert types == {"id": "integer", "name": "string", "ok": "boolean"}
