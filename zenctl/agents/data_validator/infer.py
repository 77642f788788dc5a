"""Type inference like frictionless's detector, so `zenctl data validate` without a schema finds the same errors as
`frictionless validate`, and `zenctl data infer` writes a schema like `frictionless describe`.

The rule (observed): over the first 100 data rows, every candidate type scores +1 for a cell it reads and -1 for one
it cannot; empty cells lower the column's maximum. The first candidate (in the order below) whose score reaches 90%
of the maximum wins, so a type with any failure early in the sample loses to `string`. A column with no values is
`any`."""

from __future__ import annotations

from .schema import Field, Schema, check_descriptor

CANDIDATES = ("yearmonth", "geopoint", "duration", "geojson", "object", "array", "datetime", "time", "date", "integer",
              "number", "boolean", "year", "string")
SAMPLE_ROWS = 100
CONFIDENCE = 0.9


def field_names(labels: list) -> list[str]:
    """Field names from header labels: a blank label is `fieldN`, a repeated one `name2`, `name3`..."""
    names, seen = [], {}
    for i, label in enumerate(labels):
        name = label if isinstance(label, str) and label != "" else ("" if label is None else str(label))
        if name == "":
            name = f"field{i + 1}"
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name}{count}")
    return names


def detect_types(names: list[str], fragment: list[list], missing_values=("",), confidence: float = CONFIDENCE) -> list[str]:
    """The type of each column, from the sampled rows' cells."""
    runners = [[Field(name="x", type=t), 0] for t in CANDIDATES]
    scores = [[0] * len(CANDIDATES) for _ in names]
    chosen: list[str | None] = [None] * len(names)
    max_score = [len(fragment)] * len(names)
    threshold = len(fragment) * (confidence - 1)
    cache: dict = {}
    for cells in fragment:
        for i in range(len(names)):
            if chosen[i] is not None:
                continue
            source = cells[i] if i < len(cells) else None
            if source in missing_values:
                max_score[i] -= 1
                continue
            col = scores[i]
            for k, (field, _) in enumerate(runners):
                if col[k] < threshold:
                    continue
                if source is None:
                    ok = True
                else:
                    key = (k, type(source), source) if isinstance(source, (str, int, float, bool)) else None
                    ok = cache.get(key) if key is not None else None
                    if ok is None:
                        ok = field.cast(source)[1] is None
                        if key is not None and len(cache) < 100_000:
                            cache[key] = ok
                col[k] += 1 if ok else -1
                if col[k] >= max_score[i] * confidence:
                    chosen[i] = CANDIDATES[k]
                    break
    return [t or "any" for t in chosen]


def infer_schema_rows(labels: list, fragment: list[list], missing_values=("",)) -> Schema:
    names = field_names(labels)
    types = detect_types(names, fragment, missing_values)
    return check_descriptor({"fields": [{"name": n, "type": t} for n, t in zip(names, types)]}, "inferred schema")


def infer_schema(path: str, *, sample_rows: int = SAMPLE_ROWS, required_scan: bool = True, **reader_options) -> dict:
    """A Table Schema for a data file: types from the first rows like frictionless describe; `required` on the
    fields that have no empty cell in the whole file (a full streaming scan unless required_scan is False)."""
    from .readers import TableReader

    with TableReader(path, **reader_options) as reader:
        labels = list(reader.header)
        rows = reader.rows()
        fragment = []
        for _, cells in rows:
            fragment.append(cells)
            if len(fragment) >= sample_rows:
                break
        schema = infer_schema_rows(labels, fragment)
        blanks = [False] * len(labels)
        seen_rows = 0

        def note(cells):
            for i in range(len(labels)):
                if i >= len(cells) or cells[i] in ("", None):
                    blanks[i] = True

        for cells in fragment:
            note(cells)
        seen_rows = len(fragment)
        if required_scan:
            for _, cells in rows:
                note(cells)
                seen_rows += 1
        fields = []
        for f, blank in zip(schema.fields, blanks):
            d = {"name": f.name, "type": f.type}
            if f.type == "string":
                fmt = _string_format([c[schema.fields.index(f)] for c in fragment
                                      if schema.fields.index(f) < len(c) and c[schema.fields.index(f)] not in ("", None)])
                if fmt:
                    d["format"] = fmt
            if not blank and seen_rows and required_scan:
                d["constraints"] = {"required": True}
            fields.append(d)
        return {"fields": fields, "missingValues": [""]}


def _string_format(values: list) -> str | None:
    """email/uri/uuid when every sampled value has that format."""
    if not values:
        return None
    for fmt in ("email", "uri", "uuid"):
        f = Field(name="x", type="string", format=fmt)
        if all(f.cast(v)[1] is None for v in values):
            return fmt
    return None
