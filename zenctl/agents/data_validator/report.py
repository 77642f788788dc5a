"""Validation reports in the shape of `frictionless validate --json`: the same error types, titles, messages, key
names and key order. zenctl adds, after frictionless's keys, what frictionless does not say: the exact count of
each error type over the whole file (`errorCounts`), and whether the listing stopped at the cap (`errorsTruncated`)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Error metadata as frictionless 5 prints it: title, description, message template, tags.
_LABEL_TAGS = ["#table", "#header", "#label"]
_CELL_TAGS = ["#table", "#row", "#cell"]
_ROW_TAGS = ["#table", "#row"]
_NOT_SAME = ("This row has {} values compared to the header row (the first row in the data source). A key concept is "
             "that all the rows in tabular data must have the same number of columns.")
META = {
    "blank-label": ("Blank Label", "A label in the header row is missing a value. Label should be provided and not be "
                    "blank.", 'Label in the header in field at position "{fieldNumber}" is blank', _LABEL_TAGS),
    "duplicate-label": ("Duplicate Label", "Two columns in the header row have the same value. Column names should be "
                        "unique.", 'Label "{label}" in the header at position "{fieldNumber}" is duplicated to a '
                        "label: {note}", _LABEL_TAGS),
    "missing-label": ("Missing Label", "Based on the schema there should be a label that is missing in the data's "
                      "header.", 'There is a missing label in the header\'s field "{fieldName}" at position '
                      '"{fieldNumber}"', _LABEL_TAGS),
    "extra-label": ("Extra Label", "The header of the data source contains label that does not exist in the provided "
                    "schema.", 'There is an extra label "{label}" in header at position "{fieldNumber}"', _LABEL_TAGS),
    "incorrect-label": ("Incorrect Label", "One of the data source header does not match the field name defined in "
                        "the schema.", 'Label "{label}" in field {fieldName} at position "{fieldNumber}" does not '
                        "match the field name in the schema", _LABEL_TAGS),
    "missing-cell": ("Missing Cell", _NOT_SAME.format("less"), 'Row at position "{rowNumber}" has a missing cell in '
                     'field "{fieldName}" at position "{fieldNumber}"', _CELL_TAGS),
    "extra-cell": ("Extra Cell", _NOT_SAME.format("more"), 'Row at position "{rowNumber}" has an extra value in field '
                   'at position "{fieldNumber}"', _CELL_TAGS),
    "blank-row": ("Blank Row", "This row is empty. A row should contain at least one value.",
                  'Row at position "{rowNumber}" is completely blank', _ROW_TAGS),
    "type-error": ("Type Error", "The value does not match the schema type and format for this field.",
                   'Type error in the cell "{cell}" in row "{rowNumber}" and field "{fieldName}" at position '
                   '"{fieldNumber}": {note}', _CELL_TAGS),
    "constraint-error": ("Constraint Error", "A field value does not conform to a constraint.",
                         'The cell "{cell}" in row at position "{rowNumber}" and field "{fieldName}" at position '
                         '"{fieldNumber}" does not conform to a constraint: {note}', _CELL_TAGS),
    "unique-error": ("Unique Error", "This field is a unique field but it contains a value that has been used in "
                     "another row.", 'Row at position "{rowNumber}" has unique constraint violation in field '
                     '"{fieldName}" at position "{fieldNumber}": {note}', _CELL_TAGS),
    "primary-key": ("PrimaryKey Error", "Values in the primary key fields should be unique for every row",
                    'Row at position "{rowNumber}" violates the primary key: {note}', _ROW_TAGS),
    "foreign-key": ("ForeignKey Error", "Values in the foreign key fields should exist in the reference table",
                    'Row at position "{rowNumber}" violates the foreign key: {note}', _ROW_TAGS),
    "encoding-error": ("Encoding Error", "Data reading error because of an encoding problem.",
                       "The data source could not be successfully decoded: {note}", []),
    "source-error": ("Source Error", "Data reading error because of not supported or inconsistent contents.",
                     "The data source has not supported or has inconsistent contents: {note}", []),
    "scheme-error": ("Scheme Error", "Data reading error because of incorrect scheme.",
                     "The data source could not be successfully loaded: {note}", []),
    "format-error": ("Format Error", "Data reading error because of incorrect format.",
                     "The data source could not be successfully parsed: {note}", []),
    "schema-error": ("Schema Error", "Provided schema is not valid.", "Schema is not valid: {note}", []),
}
LABEL_ERRORS = ("blank-label", "duplicate-label", "missing-label", "extra-label", "incorrect-label")
CELL_ERRORS = ("missing-cell", "extra-cell", "type-error", "constraint-error", "unique-error")


def _text(value) -> str:
    return "" if value is None else str(value)


@dataclass(slots=True)
class Error:
    """One frictionless error; to_dict() gives frictionless's keys in its order."""

    type: str
    note: str = ""
    row_number: int | None = None
    field_number: int | None = None
    field_name: str | None = None
    cells: list | None = None
    cell: object = None
    label: str | None = None
    labels: list | None = None
    extra: dict | None = None  # foreign-key: fieldNames, fieldCells, referenceName, referenceFieldNames

    @property
    def message(self) -> str:
        template = META[self.type][2]
        return template.format(fieldNumber=self.field_number, rowNumber=self.row_number, fieldName=self.field_name,
                               label=self.label, cell=_text(self.cell), note=self.note)

    def to_dict(self) -> dict:
        title, description, _, tags = META[self.type]
        d = {"type": self.type, "title": title, "description": description, "message": self.message,
             "tags": list(tags), "note": self.note}
        if self.type in LABEL_ERRORS:
            d.update(labels=self.labels or [], rowNumbers=[1], label=self.label or "", fieldName=self.field_name or "",
                     fieldNumber=self.field_number)
        elif self.type in CELL_ERRORS:
            d.update(cells=self.cells or [], rowNumber=self.row_number, cell=_text(self.cell),
                     fieldName=self.field_name or "", fieldNumber=self.field_number)
        elif self.type in ("blank-row", "primary-key", "foreign-key"):
            d.update(cells=self.cells or [], rowNumber=self.row_number)
            if self.extra:
                d.update(self.extra)
        return d

    def key(self) -> list:
        """[rowNumber, fieldNumber, type]: the triple expected_errors.json compares."""
        return [self.row_number, self.field_number, self.type]


@dataclass
class Task:
    """One table's result. `errors` are the first `limit` in frictionless's order; `counts` are exact."""

    name: str
    place: str
    labels: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    truncated: bool = False
    limit: int = 1000
    warnings: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def valid(self) -> bool:
        return self.total == 0

    def add(self, error: Error) -> None:
        self.counts[error.type] = self.counts.get(error.type, 0) + 1
        if len(self.errors) < self.limit:
            self.errors.append(error)
        else:
            self.truncated = True

    def to_dict(self) -> dict:
        stats = {"errors": self.total, "warnings": len(self.warnings)}
        stats.update(self.stats)
        return {"name": self.name, "type": "table", "valid": self.valid, "place": self.place, "labels": self.labels,
                "stats": stats, "warnings": list(self.warnings), "errors": [e.to_dict() for e in self.errors],
                "errorCounts": dict(sorted(self.counts.items())), "errorsTruncated": self.truncated}


@dataclass
class Report:
    tasks: list
    seconds: float = 0.0
    errors: list = field(default_factory=list)  # package-level errors (none yet)

    @property
    def valid(self) -> bool:
        return not self.errors and all(t.valid for t in self.tasks)

    def to_dict(self) -> dict:
        return {"valid": self.valid,
                "stats": {"tasks": len(self.tasks), "errors": sum(t.total for t in self.tasks) + len(self.errors),
                          "warnings": sum(len(t.warnings) for t in self.tasks), "seconds": round(self.seconds, 3)},
                "warnings": [], "errors": [e.to_dict() for e in self.errors], "tasks": [t.to_dict() for t in self.tasks]}
