"""Table Schema loading and checking (one clear error naming the file, the key path and the value), and the cast
rules of each type as frictionless 5.21.0 reads cells (observed with its Field.read_cell)."""

import datetime
import json
from decimal import Decimal

import pytest

from zenctl.agents.data_validator.schema import Field, SchemaError, load_schema


def field(type_, **kw):
    return Field(name="x", type=type_, **kw)


def reads(f, cell):
    return f.cast(cell)[1] is None


def test_loads_json_and_yaml_with_keys(tmp_path):
    j = tmp_path / "s.json"
    j.write_text(json.dumps({"fields": [{"name": "id", "type": "integer", "constraints": {"required": True}},
                                        {"name": "email", "type": "string", "format": "email"}],
                             "primaryKey": "id", "missingValues": ["", "NA"],
                             "foreignKeys": [{"fields": "id", "reference": {"resource": "people", "fields": "pid"}}]}))
    s = load_schema(j)
    assert s.field_names() == ["id", "email"] and s.primary_key == ["id"] and s.missing_values == ["", "NA"]
    assert s.fields[0].required and s.fields[1].format == "email"
    assert (s.foreign_keys[0].fields, s.foreign_keys[0].resource, s.foreign_keys[0].reference_fields) == (
        ["id"], "people", ["pid"])
    y = tmp_path / "s.yaml"
    y.write_text("fields:\n  - name: day\n    type: date\n    constraints: {minimum: '2020-01-01'}\n")
    s = load_schema(y)
    assert s.fields[0].check(datetime.date(2019, 1, 1), "2019-01-01") == ['constraint "minimum" is "2020-01-01"']


@pytest.mark.parametrize("descriptor, key", [
    ({"fields": [{"name": "a", "type": "integr"}]}, "fields[0].type"),
    ({"fields": [{"name": "a"}, {"type": "string"}]}, "fields[1].name"),
    ({"fields": [{"name": "a", "constraints": {"requird": True}}]}, "fields[0].constraints.requird"),
    ({"fields": [{"name": "a", "constraints": {"pattern": "("}}]}, "fields[0].constraints.pattern"),
    ({"fields": [{"name": "a", "constraints": {"minLength": -1}}]}, "fields[0].constraints.minLength"),
    ({"fields": [{"name": "a", "type": "integer", "constraints": {"minimum": "abc"}}]},
     "fields[0].constraints.minimum"),
    ({"fields": [{"name": "a", "type": "string", "format": "emial"}]}, "fields[0].format"),
    ({"fields": [{"name": "a"}], "primaryKey": ["b"]}, "primaryKey"),
    ({"fields": [{"name": "a"}], "foreignKeys": [{"fields": ["a"], "reference": {"fields": ["a", "b"]}}]},
     "foreignKeys[0].reference.fields"),
    ({"fields": [{"name": "a"}, {"name": "a"}]}, "fields[1].name"),
    ({"fields": "a"}, "fields"),
    ({"fields": [], "missingValues": "NA"}, "missingValues"),
])
def test_invalid_schema_names_file_and_key(tmp_path, descriptor, key):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(descriptor))
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    assert info.value.key == key
    assert str(info.value).startswith(f"{path}: {key}: ") and "\n" not in str(info.value)


def test_unreadable_descriptor_is_one_line(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text('{"fields": [}')
    with pytest.raises(SchemaError, match=r"s\.json: line 1: not valid JSON"):
        load_schema(bad)
    with pytest.raises(SchemaError, match="cannot read"):
        load_schema(tmp_path / "missing.json")
    deep = tmp_path / "deep.json"
    deep.write_text('{"fields": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(SchemaError, match="nested too deeply"):
        load_schema(deep)


def test_integer_and_number_read_like_frictionless():
    i, n = field("integer"), field("number")
    assert [c for c in ["5", "+5", "007", " 5", "1_000", "-0", "1.0", "1e3", "5.", "x"] if reads(i, c)] == [
        "5", "+5", "007", " 5", "1_000", "-0"]
    assert [c for c in ["5", "1e3", ".5", "5.", "NaN", "inf", "12,5x", "1,000", "$5"] if reads(n, c)] == [
        "5", "1e3", ".5", "5.", "NaN", "inf"]
    assert n.cast("1.50") == (Decimal("1.50"), None)
    assert field("number", decimal_char=",", group_char=".").cast("1.234,5") == (Decimal("1234.5"), None)
    assert field("integer", bare_number=False).cast("$12") == (12, None)


def test_dates_times_and_others_read_like_frictionless():
    d = field("date")
    assert [c for c in ["2023-02-03", "2023-2-3", "2023-02-30", " 2023-02-03", "2023-02-03T00:00:00"]
            if reads(d, c)] == ["2023-02-03", "2023-2-3"]
    dt = field("datetime")
    assert [c for c in ["2023-02-03T10:00:00", "2023-02-03 10:00:00", "2023-02-03T10:00:00Z", "2023-02-03T10:00",
                        "2023-02-03"] if reads(dt, c)] == ["2023-02-03T10:00:00", "2023-02-03 10:00:00",
                                                           "2023-02-03T10:00:00Z"]
    t = field("time")
    assert [c for c in ["10:00:00", "10:00:00Z", "10:00", "1:2:3"] if reads(t, c)] == ["10:00:00", "10:00:00Z"]
    y = field("year")
    assert [c for c in ["2023", "0999", "10000", "-1", " 2023"] if reads(y, c)] == ["2023", "0999"]
    b = field("boolean")
    assert [c for c in ["true", "True", "TRUE", "1", "0", "yes", "t"] if reads(b, c)] == [
        "true", "True", "TRUE", "1", "0"]
    du = field("duration")
    assert [c for c in ["P1D", "PT1H", "P1Y2M", "P", "p1d", "-P1D"] if reads(du, c)] == ["P1D", "PT1H", "P1Y2M",
                                                                                       "-P1D"]
    assert field("array").cast("[1,2]") == ([1, 2], None) and not reads(field("array"), "{}")
    assert field("object").cast('{"a":1}') == ({"a": 1}, None) and not reads(field("object"), "[]")


def test_string_formats():
    email, uri, uuid = (field("string", format=f) for f in ("email", "uri", "uuid"))
    assert [c for c in ["john@example.com", "a@b.c", "a b@c.com", "@x.com", "a@localhost"] if reads(email, c)] == [
        "john@example.com"]
    assert [c for c in ["http://x.y", "ftp://x", "x.y"] if reads(uri, c)] == ["http://x.y", "ftp://x"]
    assert reads(uuid, "123e4567-e89b-12d3-a456-426614174000") and not reads(uuid, "123e4567")


def test_constraints_in_frictionless_order():
    f = Field(name="v", type="string", constraints={"enum": ["ab", "x"], "pattern": "[a-z]+", "maxLength": 2,
                                                    "minLength": 2, "required": True})
    assert f.check("5", "5") == ['constraint "minLength" is "2"', 'constraint "pattern" is "[a-z]+"',
                                 "constraint \"enum\" is \"['ab', 'x']\""]
    g = Field(name="n", type="integer", constraints={"enum": [1, 2, 3], "maximum": 4, "minimum": 2})
    assert g.check(5, "5") == ['constraint "maximum" is "4"', 'constraint "enum" is "[1, 2, 3]"']
    assert g.check(3, "3") == []
