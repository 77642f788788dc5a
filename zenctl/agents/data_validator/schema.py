"""Frictionless Table Schema: load and check a descriptor (JSON or YAML), cast cells and check constraints with
frictionless's rules, so a user can compare zenctl's errors with `frictionless validate`.

A descriptor that is not valid Table Schema raises SchemaError naming the file, the key path and the value. The
cast rules follow frictionless 5 as observed (integer: Python int(), number: Decimal, boolean: its true/false values,
date: strptime %Y-%m-%d, datetime/time: ISO 8601 with seconds, year: four digits...)."""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field as dc_field
from decimal import Decimal, InvalidOperation
from pathlib import Path

TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "time", "year", "yearmonth", "duration",
         "object", "array", "geopoint", "geojson", "any")
STRING_FORMATS = ("default", "email", "uri", "uuid", "binary")
CONSTRAINTS = ("required", "unique", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "pattern", "enum", "jsonSchema")
# The order in which frictionless reports a cell's constraint errors (observed; independent of the descriptor's order).
CHECK_ORDER = ("required", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
               "pattern", "enum")
TRUE_VALUES = ["true", "True", "TRUE", "1"]
FALSE_VALUES = ["false", "False", "FALSE", "0"]


class SchemaError(ValueError):
    """A descriptor that is not valid Table Schema: one line naming the file, the key path and what is wrong."""

    def __init__(self, path: str, key: str, message: str):
        self.path, self.key, self.message = path, key, message
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


_EMAIL = re.compile(r"[^@\s\"\[\]]+@[^@\s\"\[\]]+\.[^@\s\"\[\].]{2,}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATETIME = re.compile(r"\d{4}-(\d\d-\d\d|W\d\d(-\d)?)[Tt ]\d\d:\d\d:\d\d")
_TIME = re.compile(r"\d\d:\d\d:\d\d")
_YEAR = re.compile(r"[0-9]{4}")
_YEARMONTH = re.compile(r"([0-9]{4})-([0-9]{1,2})")
_DURATION = re.compile(r"(-)?P(?!$)(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)W)?"
                       r"(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?"
                       r"(?:(\d+(?:[.,]\d+)?)S)?)?")
_NOT_BARE = re.compile(r"^\D*?(?=[-+]?\d|[-+]?\.\d)|(?<=\d)\D*$")


def _num(text: str) -> float:
    return float(text.replace(",", "."))


@dataclass
class Field:
    """One Table Schema field: its cast and its constraints."""

    name: str
    type: str = "string"
    format: str = "default"
    constraints: dict = dc_field(default_factory=dict)
    missing_values: list[str] | None = None
    true_values: list[str] = dc_field(default_factory=lambda: list(TRUE_VALUES))
    false_values: list[str] = dc_field(default_factory=lambda: list(FALSE_VALUES))
    decimal_char: str = "."
    group_char: str = ""
    bare_number: bool = True
    descriptor: dict = dc_field(default_factory=dict)

    def __post_init__(self):
        self.type_note = f'type is "{self.type}/{self.format}"'
        self._bad = (None, self.type_note)
        self._memo: dict = {}
        # casts worth remembering per distinct text: dates and times repeat, and strptime is slow
        self._memoize = self.type in ("date", "datetime", "time", "duration", "yearmonth")
        self._plain_string = self.type == "string" and self.format in ("default", "binary")
        self._pattern = None
        c = self.constraints
        if "pattern" in c:
            self._pattern = re.compile(c["pattern"])
        self._bounds = {}
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in c:
                self._bounds[key] = self._constraint_value(key, c[key])
        self._enum = None
        if "enum" in c:
            self._enum = [self._constraint_value("enum", v) for v in c["enum"]]
        self.required = bool(c.get("required"))
        self.unique = bool(c.get("unique"))
        self.checks = [k for k in CHECK_ORDER if k in c and k != "required"]

    def _constraint_value(self, key: str, value):
        if isinstance(value, str) and self.type not in ("string", "any"):
            cast, note = self.cast(value)
            if note is None and cast is not None:
                return cast
        if self.type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return Decimal(str(value))
        return value

    # -- casting ---------------------------------------------------------------------------------------------
    def cast(self, cell):
        """(value, None) or (None, note); a missing cell is (None, None). Frictionless's rules for each type."""
        if self._plain_string and type(cell) is str:
            return cell, None
        if self._memoize and type(cell) is str:
            hit = self._memo.get(cell)
            if hit is not None:
                return hit
            try:
                result = self._cast(cell)
            except (ValueError, TypeError, ArithmeticError, OverflowError, RecursionError):
                result = self._bad
            if len(self._memo) >= 65536:
                self._memo.clear()
            self._memo[cell] = result
            return result
        try:
            return self._cast(cell)
        except (ValueError, TypeError, ArithmeticError, OverflowError, RecursionError):
            return self._bad

    def _cast(self, cell):
        t = self.type
        bad = self._bad
        if cell is None:
            return None, None
        if t == "string":
            if not isinstance(cell, str):
                return bad
            f = self.format
            if f == "email" and not _EMAIL.fullmatch(cell):
                return bad
            if f == "uri" and not _URI.fullmatch(cell):
                return bad
            if f == "uuid" and not _UUID.fullmatch(cell):
                return bad
            return cell, None
        if t == "integer":
            if isinstance(cell, bool):
                return bad
            if isinstance(cell, int):
                return cell, None
            if isinstance(cell, float) and cell.is_integer():
                return int(cell), None
            if not isinstance(cell, str):
                return bad
            text = cell
            if self.group_char:
                text = text.replace(self.group_char, "")
            if not self.bare_number:
                text = _NOT_BARE.sub("", text)
            return int(text), None
        if t == "number":
            if isinstance(cell, bool):
                return bad
            if isinstance(cell, (int, float)):
                return Decimal(str(cell)), None
            if not isinstance(cell, str):
                return bad
            text = cell
            if self.group_char:
                text = text.replace(self.group_char, "")
            if self.decimal_char != ".":
                text = text.replace(self.decimal_char, ".")
            if not self.bare_number:
                text = _NOT_BARE.sub("", text)
            try:
                return Decimal(text), None
            except InvalidOperation:
                return bad
        if t == "boolean":
            if isinstance(cell, bool):
                return cell, None
            if isinstance(cell, str):
                if cell in self.true_values:
                    return True, None
                if cell in self.false_values:
                    return False, None
            return bad
        if t == "date":
            if isinstance(cell, _dt.date) and not isinstance(cell, _dt.datetime):
                return cell, None
            if not isinstance(cell, str):
                return bad
            if self.format in ("default", None):
                if len(cell) == 10 and cell[4] == "-" and cell[7] == "-" and cell.isascii() and \
                        (cell[:4] + cell[5:7] + cell[8:]).isdigit():
                    return _dt.date(int(cell[:4]), int(cell[5:7]), int(cell[8:])), None  # strptime's result, faster
                return _dt.datetime.strptime(cell, "%Y-%m-%d").date(), None
            if self.format == "any":
                from dateutil import parser

                return parser.parse(cell).date(), None
            return _dt.datetime.strptime(cell, self.format).date(), None
        if t == "datetime":
            if isinstance(cell, _dt.datetime):
                return cell, None
            if not isinstance(cell, str):
                return bad
            if self.format in ("default", None):
                if not _DATETIME.match(cell):
                    return bad
                from dateutil.parser import isoparse

                return isoparse(cell), None
            if self.format == "any":
                from dateutil import parser

                return parser.parse(cell), None
            return _dt.datetime.strptime(cell, self.format), None
        if t == "time":
            if isinstance(cell, _dt.time):
                return cell, None
            if not isinstance(cell, str):
                return bad
            if self.format in ("default", None):
                if not _TIME.match(cell):
                    return bad
                from dateutil.parser import isoparser

                return isoparser().parse_isotime(cell), None
            if self.format == "any":
                from dateutil import parser

                return parser.parse(cell).timetz(), None
            return _dt.datetime.strptime(cell, self.format).timetz(), None
        if t == "year":
            if isinstance(cell, bool):
                return bad
            if isinstance(cell, int):
                return (cell, None) if 0 <= cell <= 9999 else bad
            if isinstance(cell, str) and _YEAR.fullmatch(cell):
                return int(cell), None
            return bad
        if t == "yearmonth":
            m = _YEARMONTH.fullmatch(cell) if isinstance(cell, str) else None
            if not m or not 1 <= int(m.group(2)) <= 12:
                return bad
            return (int(m.group(1)), int(m.group(2))), None
        if t == "duration":
            if isinstance(cell, _dt.timedelta):
                return cell, None
            m = _DURATION.fullmatch(cell) if isinstance(cell, str) else None
            if not m:
                return bad
            sign, y, mo, w, d, h, mi, s = m.groups()
            years, months = _num(y or "0"), _num(mo or "0")
            delta = _dt.timedelta(weeks=_num(w or "0"), days=_num(d or "0"), hours=_num(h or "0"),
                                  minutes=_num(mi or "0"), seconds=_num(s or "0"))
            value = delta if not (years or months) else (years, months, delta)
            if sign and isinstance(value, _dt.timedelta):
                value = -value
            return value, None
        if t in ("object", "array", "geojson"):
            want = list if t == "array" else dict
            value = cell
            if isinstance(cell, str):
                value = json.loads(cell)
            if not isinstance(value, want):
                return bad
            return value, None
        if t == "geopoint":
            if isinstance(cell, (list, tuple)) and len(cell) == 2:
                lon, lat = float(cell[0]), float(cell[1])
            elif isinstance(cell, str):
                parts = cell.split(",")
                if len(parts) != 2:
                    return bad
                lon, lat = float(parts[0]), float(parts[1])
            else:
                return bad
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                return bad
            return (lon, lat), None
        return cell, None  # any

    # -- constraints -----------------------------------------------------------------------------------------
    def check(self, value, cell) -> list[str]:
        """The constraints a cast, non-missing value breaks, as frictionless's notes, in its order."""
        notes = []
        c = self.constraints
        for key in self.checks:
            ok = True
            if key == "minLength":
                ok = not hasattr(value, "__len__") or len(value) >= c[key]
            elif key == "maxLength":
                ok = not hasattr(value, "__len__") or len(value) <= c[key]
            elif key in self._bounds:
                bound = self._bounds[key]
                try:
                    if key == "minimum":
                        ok = value >= bound
                    elif key == "maximum":
                        ok = value <= bound
                    elif key == "exclusiveMinimum":
                        ok = value > bound
                    else:
                        ok = value < bound
                except TypeError:
                    ok = False
            elif key == "pattern":
                ok = bool(self._pattern.fullmatch(cell if isinstance(cell, str) else str(value)))
            elif key == "enum":
                ok = value in self._enum
            if not ok:
                notes.append(f'constraint "{key}" is "{c[key]}"')
        return notes


@dataclass
class ForeignKey:
    fields: list[str]
    resource: str
    reference_fields: list[str]


@dataclass
class Schema:
    """A checked Table Schema."""

    fields: list[Field]
    missing_values: list[str] = dc_field(default_factory=lambda: [""])
    primary_key: list[str] = dc_field(default_factory=list)
    foreign_keys: list[ForeignKey] = dc_field(default_factory=list)
    descriptor: dict = dc_field(default_factory=dict)

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def to_dict(self) -> dict:
        return self.descriptor


def hashable(v):
    """A cast value as a dict key (unique, primary and foreign keys): arrays and objects as canonical JSON."""
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def _fail(name: str, key: str, message: str):
    raise SchemaError(name, key, message)


def _string_list(value, name: str, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(name, key, f"must be a string or a list of strings, not {json.dumps(value)[:80]}")
    return value


def check_descriptor(d, name: str = "schema") -> Schema:
    """A Schema from a descriptor dict, or SchemaError naming the key path and the value."""
    if not isinstance(d, dict):
        _fail(name, "", "a Table Schema must be a JSON/YAML object")
    fields = d.get("fields")
    if not isinstance(fields, list):
        _fail(name, "fields", "required, a list of field objects")
    missing = d.get("missingValues", [""])
    if not isinstance(missing, list) or not all(isinstance(v, str) for v in missing):
        _fail(name, "missingValues", "must be a list of strings")
    out, seen = [], set()
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        if not isinstance(f, dict):
            _fail(name, where, "must be an object")
        fname = f.get("name")
        if not isinstance(fname, str):
            _fail(name, f"{where}.name", "required, a string")
        if fname in seen:
            _fail(name, f"{where}.name", f"duplicate field name {fname!r}")
        seen.add(fname)
        ftype = f.get("type", "string")
        if ftype not in TYPES:
            _fail(name, f"{where}.type", f"{json.dumps(ftype)[:60]} is not a Table Schema type ({', '.join(TYPES)})")
        fmt = f.get("format", "default")
        if not isinstance(fmt, str):
            _fail(name, f"{where}.format", "must be a string")
        if ftype == "string" and fmt not in STRING_FORMATS:
            _fail(name, f"{where}.format", f"{fmt!r} is not a string format ({', '.join(STRING_FORMATS)})")
        cons = f.get("constraints", {})
        if not isinstance(cons, dict):
            _fail(name, f"{where}.constraints", "must be an object")
        for key, value in cons.items():
            ck = f"{where}.constraints.{key}"
            if key not in CONSTRAINTS:
                _fail(name, ck, f"unknown constraint (known: {', '.join(CONSTRAINTS)})")
            if key in ("required", "unique") and not isinstance(value, bool):
                _fail(name, ck, f"must be true or false, not {json.dumps(value)[:60]}")
            if key in ("minLength", "maxLength") and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                _fail(name, ck, f"must be a non-negative integer, not {json.dumps(value)[:60]}")
            if key == "pattern":
                if not isinstance(value, str):
                    _fail(name, ck, "must be a string (a regular expression)")
                try:
                    re.compile(value)
                except re.error as exc:
                    _fail(name, ck, f"not a valid regular expression: {exc}")
            if key == "enum" and (not isinstance(value, list) or not value):
                _fail(name, ck, "must be a non-empty list")
        fmissing = f.get("missingValues")
        if fmissing is not None and (not isinstance(fmissing, list) or not all(isinstance(v, str) for v in fmissing)):
            _fail(name, f"{where}.missingValues", "must be a list of strings")
        kw = {}
        for key, attr in (("trueValues", "true_values"), ("falseValues", "false_values")):
            if key in f:
                kw[attr] = _string_list(f[key], name, f"{where}.{key}")
        for key, attr in (("decimalChar", "decimal_char"), ("groupChar", "group_char")):
            if key in f:
                if not isinstance(f[key], str):
                    _fail(name, f"{where}.{key}", "must be a string")
                kw[attr] = f[key]
        if "bareNumber" in f:
            if not isinstance(f["bareNumber"], bool):
                _fail(name, f"{where}.bareNumber", "must be true or false")
            kw["bare_number"] = f["bareNumber"]
        try:
            field = Field(name=fname, type=ftype, format=fmt, constraints=dict(cons), missing_values=fmissing,
                          descriptor=f, **kw)
        except (TypeError, ValueError) as exc:
            _fail(name, f"{where}.constraints", str(exc))
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in cons and isinstance(cons[key], str) and ftype in ("integer", "number", "date", "datetime",
                                                                       "time", "year"):
                if field.cast(cons[key])[1] is not None:
                    _fail(name, f"{where}.constraints.{key}", f"{cons[key]!r} is not a valid {ftype}")
        out.append(field)
    names = [f.name for f in out]
    pk = []
    if "primaryKey" in d:
        pk = _string_list(d["primaryKey"], name, "primaryKey")
        for k in pk:
            if k not in names:
                _fail(name, "primaryKey", f"{k!r} is not a field of the schema")
    fks = []
    raw_fks = d.get("foreignKeys", [])
    if not isinstance(raw_fks, list):
        _fail(name, "foreignKeys", "must be a list")
    for i, fk in enumerate(raw_fks):
        where = f"foreignKeys[{i}]"
        if not isinstance(fk, dict):
            _fail(name, where, "must be an object")
        if "fields" not in fk:
            _fail(name, f"{where}.fields", "required")
        fk_fields = _string_list(fk["fields"], name, f"{where}.fields")
        for k in fk_fields:
            if k not in names:
                _fail(name, f"{where}.fields", f"{k!r} is not a field of the schema")
        ref = fk.get("reference")
        if not isinstance(ref, dict):
            _fail(name, f"{where}.reference", "required, an object with resource and fields")
        resource = ref.get("resource", "")
        if not isinstance(resource, str):
            _fail(name, f"{where}.reference.resource", "must be a string")
        if "fields" not in ref:
            _fail(name, f"{where}.reference.fields", "required")
        ref_fields = _string_list(ref["fields"], name, f"{where}.reference.fields")
        if len(ref_fields) != len(fk_fields):
            _fail(name, f"{where}.reference.fields", "must have as many fields as the foreign key's fields")
        if resource == "":
            for k in ref_fields:
                if k not in names:
                    _fail(name, f"{where}.reference.fields", f"{k!r} is not a field of the schema")
        fks.append(ForeignKey(fk_fields, resource, ref_fields))
    return Schema(out, list(missing), pk, fks, d)


def read_descriptor(path: str | Path) -> dict:
    """A JSON or YAML file's object, or SchemaError naming the file."""
    p = Path(path)
    try:
        if p.stat().st_size > 16 * 1024 * 1024:
            _fail(str(p), "", "larger than 16 MiB: not a descriptor")
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(str(p), "", f"cannot read: {getattr(exc, 'strerror', None) or exc}")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except RecursionError:
            _fail(str(p), "", "not valid YAML: nested too deeply")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else ""
            _fail(str(p), where, f"not valid YAML: {getattr(exc, 'problem', exc)}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(str(p), f"line {exc.lineno}", f"not valid JSON: {exc.msg}")
    except RecursionError:
        _fail(str(p), "", "not valid JSON: nested too deeply")


def load_schema(source, *, name: str | None = None) -> Schema:
    """A Schema from a file path (JSON/YAML), a descriptor dict or a Schema."""
    if isinstance(source, Schema):
        return source
    if isinstance(source, dict):
        return check_descriptor(source, name or "schema")
    return check_descriptor(read_descriptor(source), name or str(source))
