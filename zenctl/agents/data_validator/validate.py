"""Validation with frictionless's error codes, positions and order.

Order (as frictionless 5 reports it): the header's errors (extra-label, missing-label, then per position blank-label,
duplicate-label or incorrect-label), then row by row: a blank row gets only blank-row; otherwise each field's
type-error or constraint-errors in field order (a missing cell counts as empty for `required`), then missing-cell,
then extra-cell; then the table checks: unique-error per field, primary-key, foreign-key.

The exact engine here runs row by row; fastcsv.py checks whole blocks of a CSV at once with pyarrow and hands this
engine only the rows that fail, so positions and order stay the same. Counts by code are exact over the whole file;
the listing stops at `limit_errors` and the task says so."""

from __future__ import annotations

import os
import time

from .infer import SAMPLE_ROWS, field_names, infer_schema_rows
from .readers import Dialect, SourceError, TableReader, expand
from .report import Error, Report, Task
from .schema import Field, Schema, SchemaError, load_schema, read_descriptor
from .schema import hashable as _hashable

REQUIRED_NOTE = 'constraint "required" is "True"'
FAST_MIN_BYTES = 512 << 10  # smaller files: the exact engine alone (importing pyarrow costs more than it saves)


def _text(v) -> str:
    return "" if v is None else str(v)


def _shown(cells: list) -> list:
    """Cells as frictionless shows them in an error: text (JSON values stringified, null as "")."""
    if all(type(c) is str for c in cells):
        return list(cells)
    return [_text(c) for c in cells]


class Engine:
    """The exact row-by-row checks for one table. `row(rn, cells)` adds the row's errors to the task."""

    def __init__(self, labels: list, schema: Schema, task: Task, *, explicit: bool, lookups: dict | None = None,
                 has_header: bool = True, resource_name: str = ""):
        self.task = task
        self.schema = schema
        self.labels = list(labels)
        names = field_names(labels)
        if has_header:
            fields = list(schema.fields[:len(labels)])
            for i in range(len(fields), len(labels)):
                fields.append(Field(name=labels[i] if labels[i] else names[i], type="any"))
        else:
            fields = list(schema.fields)
        self.fields = fields
        self.nf = len(fields)
        self.explicit = explicit
        self.missing = set(schema.missing_values)
        self.field_missing = [set(f.missing_values) if f.missing_values is not None else self.missing for f in fields]
        self.unique = [(i, f) for i, f in enumerate(fields) if f.unique]
        self.unique_seen = {i: {} for i, _ in self.unique}
        index = {f.name: i for i, f in enumerate(fields)}
        self.pk = [index[k] for k in schema.primary_key if k in index] if len(schema.primary_key) and all(
            k in index for k in schema.primary_key) else []
        self.pk_seen: dict = {}
        self.fks = []
        for fk in schema.foreign_keys:
            if all(k in index for k in fk.fields):
                lookup = (lookups or {}).get((fk.resource, tuple(fk.reference_fields)))
                if lookup is not None:
                    self.fks.append(([index[k] for k in fk.fields], fk, lookup))
        self.has_checks = bool(self.unique or self.pk or self.fks)
        self.rows = 0

    # -- header ----------------------------------------------------------------------------------------------
    def header(self) -> None:
        labels, schema, task = self.labels, self.schema, self.task
        if not labels:
            return
        sf = schema.fields
        for i in range(len(sf), len(labels)):
            task.add(Error("extra-label", field_number=i + 1, field_name="", label=labels[i], labels=labels))
        for i in range(len(labels), len(sf)):
            task.add(Error("missing-label", field_number=i + 1, field_name=sf[i].name, label="", labels=labels))
        seen: dict = {}
        for i in range(min(len(labels), len(sf))):
            label, name = labels[i], sf[i].name
            if label in (None, ""):
                task.add(Error("blank-label", field_number=i + 1, field_name=name, label="", labels=labels))
            elif label in seen:
                note = "at position \"" + ", ".join(str(p) for p in seen[label]) + "\""
                task.add(Error("duplicate-label", note=note, field_number=i + 1, field_name=name, label=label,
                               labels=labels))
            elif self.explicit and label != name:
                task.add(Error("incorrect-label", field_number=i + 1, field_name=name, label=label, labels=labels))
            if label not in (None, ""):
                seen.setdefault(label, []).append(i + 1)

    # -- rows ------------------------------------------------------------------------------------------------
    def row(self, rn: int, cells: list) -> None:
        self.rows += 1
        add = self.task.add
        n = len(cells)
        nf = self.nf
        values = [None] * nf
        missing = self.missing
        blank = True
        for c in cells:
            if c is not None and c not in missing:
                blank = False
                break
        if blank:
            add(Error("blank-row", row_number=rn, cells=_shown(cells)))
        else:
            fields, fmiss = self.fields, self.field_missing
            for i in range(nf):
                f = fields[i]
                if i < n:
                    cell = cells[i]
                    if cell is None or cell in fmiss[i]:
                        if f.required:
                            add(Error("constraint-error", REQUIRED_NOTE, rn, i + 1, f.name, _shown(cells),
                                      "None" if cell is None else cell))
                        continue
                    value, note = f.cast(cell)
                    if note is not None:
                        add(Error("type-error", note, rn, i + 1, f.name, _shown(cells), _text(cell)))
                        continue
                    values[i] = value
                    if f.checks:
                        for note in f.check(value, cell):
                            add(Error("constraint-error", note, rn, i + 1, f.name, _shown(cells), cell))
                elif f.required:
                    add(Error("constraint-error", REQUIRED_NOTE, rn, i + 1, f.name, _shown(cells), "None"))
            for i in range(n, nf):
                add(Error("missing-cell", "", rn, i + 1, fields[i].name, _shown(cells), ""))
            for i in range(nf, n):
                add(Error("extra-cell", "", rn, i + 1, "", _shown(cells), _text(cells[i])))
        if self.has_checks:
            self.checks(rn, cells, values)

    def checks(self, rn: int, cells: list, values: list) -> None:
        add = self.task.add
        for i, f in self.unique:
            v = values[i]
            if v is None:
                continue
            seen = self.unique_seen[i]
            key = _hashable(v)
            before = seen.get(key)
            seen[key] = rn  # frictionless names the latest earlier row, not the first
            if before is not None:
                add(Error("unique-error", f"the same as in the row at position {before}", rn, i + 1, f.name,
                          _shown(cells), _text(v)))  # frictionless shows the read value ("007" -> "7")
        if self.pk:
            key = tuple(_hashable(values[i]) for i in self.pk)
            if all(v is None for v in key):
                add(Error("primary-key", 'cells composing the primary keys are all "None"', rn, cells=_shown(cells)))
            else:
                before = self.pk_seen.get(key)
                self.pk_seen[key] = rn
                if before is not None:
                    add(Error("primary-key", f"the same as in the row at position {before}", rn,
                              cells=_shown(cells)))
        for idx, fk, lookup in self.fks:
            key = tuple(_hashable(values[i]) for i in idx)
            if all(v is None for v in key):
                continue
            if key not in lookup:
                raw = [_text(cells[i]) if i < len(cells) else "" for i in idx]
                note = (f'for "{", ".join(fk.fields)}": values "{", ".join(raw)}" not found in the lookup table '
                        f'"{fk.resource}" as "{", ".join(fk.reference_fields)}"')
                add(Error("foreign-key", note, rn, cells=_shown(cells),
                          extra={"fieldNames": list(fk.fields), "fieldCells": raw, "referenceName": fk.resource,
                                 "referenceFieldNames": list(fk.reference_fields)}))


def validate_rows(header: list, rows, schema=None, *, name: str = "table", limit_errors: int = 1000,
                  lookups: dict | None = None) -> Task:
    """The exact engine over (rowNumber, cells) from anywhere (a reader's rows(), a database cursor): a Task with
    frictionless's errors and exact counts. schema None: inferred from the first 100 rows like frictionless.
    lookups: {(resource, (reference fields...)): set of key tuples} for foreign keys (see build_lookup)."""
    task = Task(name=name, place=name, limit=max(0, limit_errors))
    task.labels = list(header)
    buffered: list = []
    explicit = schema is not None
    if explicit:
        schema = load_schema(schema)
    else:
        rows = iter(rows)
        for item in rows:
            buffered.append(item)
            if len(buffered) >= SAMPLE_ROWS:
                break
        schema = infer_schema_rows(list(header), [c for _, c in buffered], ("",))
    engine = Engine(list(header), schema, task, explicit=explicit, lookups=lookups, has_header=bool(header))
    engine.header()
    for number, cells in buffered:
        engine.row(number, cells)
    for number, cells in rows:
        engine.row(number, cells)
    task.stats = {"rows": engine.rows, "fields": len(schema.fields) if explicit else engine.nf}
    return task


# -- one table ---------------------------------------------------------------------------------------------------
def validate_table(path: str, *, schema=None, name: str | None = None, limit_errors: int = 1000,
                   lookups: dict | None = None, reader_options: dict | None = None, progress=None,
                   fast: bool | None = None) -> Task:
    """Validate one data file; SourceError (could not read) and SchemaError (bad schema) become the task's error."""
    started = time.monotonic()
    base = os.path.basename(path)
    task = Task(name=name or os.path.splitext(base)[0], place=path, limit=max(0, limit_errors))
    explicit = schema is not None
    reader = None
    try:
        opts = dict(reader_options or {})
        reader = TableReader(path, hashes=True, **opts)
        if reader.info.size == 0:
            raise SourceError(path, "the source is empty")
        labels = list(reader.header)
        task.labels = labels
        if explicit:
            sch = load_schema(schema)
            buffered = []
        else:
            buffered = []
            rows_iter = reader.rows()
            for item in rows_iter:
                buffered.append(item)
                if len(buffered) >= SAMPLE_ROWS:
                    break
            sch = infer_schema_rows(labels, [c for _, c in buffered], ("",))
        engine = Engine(labels, sch, task, explicit=explicit, lookups=lookups,
                        has_header=bool(reader.header_row_numbers))
        engine.header()
        for rn, cells in buffered:
            engine.row(rn, cells)
        done = False
        if fast is None:  # auto: pyarrow's import (~0.3 s) pays off only on larger files
            fast = reader.info.size >= FAST_MIN_BYTES
        if fast and reader.format in ("csv", "tsv"):
            try:
                import pyarrow.csv  # noqa: F401  (a dependency; without it, the exact path alone)

                from . import fastcsv
            except ImportError:
                fastcsv = None
            if fastcsv is not None and fastcsv.usable(engine, reader):
                fastcsv.run(engine, reader, progress=progress)
                done = True
        if not done:
            for rn, cells in reader.rows():
                engine.row(rn, cells)
                if progress is not None and engine.rows % 65536 == 0:
                    progress(reader.bytes_read, reader.info.size)
        reader.finish()
        task.warnings.extend(reader.warnings)
        task.stats = {"seconds": round(time.monotonic() - started, 3), **reader.digests(),
                      "bytes": reader.bytes_read, "fields": len(sch.fields) if explicit else engine.nf,
                      "rows": engine.rows}
        for key in ("fields", "rows"):  # frictionless leaves out what is zero
            if not task.stats[key]:
                del task.stats[key]
    except SourceError as exc:
        task.add(Error(exc.code if exc.code in ("source-error", "encoding-error", "scheme-error") else "source-error",
                       note=exc.message))
        task.stats = {"seconds": round(time.monotonic() - started, 3)}
        if reader is not None:
            task.warnings.extend(w for w in reader.warnings if w not in task.warnings)
            if reader.info.size == 0:
                task.stats.update(reader.digests())
    finally:
        if reader is not None:
            reader.close()
    return task


def build_lookup(path: str, schema: Schema, ref_fields: list[str], reader_options: dict | None = None) -> set:
    """The set of (typed) key tuples of a resource's reference fields, streamed."""
    lookup: set = set()
    with TableReader(path, **(reader_options or {})) as reader:
        labels = list(reader.header)
        names = [f.name for f in schema.fields]
        idx = []
        for k in ref_fields:
            if k not in names:
                raise SchemaError(path, "foreignKeys.reference.fields", f"{k!r} is not a field of the referenced "
                                  "resource")
            idx.append(names.index(k))
        fields = [schema.fields[i] for i in idx]
        missing = set(schema.missing_values)
        del labels
        for _, cells in reader.rows():
            key = []
            for i, f in zip(idx, fields):
                cell = cells[i] if i < len(cells) else None
                if cell is None or cell in missing:
                    key.append(None)
                    continue
                v, note = f.cast(cell)
                key.append(_hashable(v) if note is None else None)
            if any(v is not None for v in key):
                lookup.add(tuple(key))
    return lookup


# -- paths and packages ------------------------------------------------------------------------------------------
def _is_package(path: str) -> bool:
    if os.path.basename(path).lower() in ("datapackage.json", "datapackage.yaml", "datapackage.yml"):
        return True
    if path.lower().endswith((".json", ".yaml", ".yml")) and os.path.isfile(path):
        try:
            if os.path.getsize(path) > 4 * 1024 * 1024:
                return False
            d = read_descriptor(path)
        except SchemaError:
            return False
        return isinstance(d, dict) and isinstance(d.get("resources"), list)
    return False


def validate_path(path: str, *, schema=None, limit_errors: int = 1000, progress=None,
                  reader_options: dict | None = None, fast: bool | None = None) -> Report:
    """A data file, a directory or glob of them, or a Data Package descriptor (all resources, foreign keys across
    them). Raises SchemaError for a bad schema or descriptor; read problems are the tasks' source errors."""
    started = time.monotonic()
    if _is_package(path):
        tasks = _validate_package(path, limit_errors=limit_errors, progress=progress, fast=fast)
    else:
        if schema is not None and not hasattr(schema, "fields"):
            schema = load_schema(schema)
        files = expand(path)
        if not files:
            raise SourceError(path, "no data files match")
        tasks = []
        for f in files:
            lookups = _self_lookups(f, schema, reader_options)
            tasks.append(validate_table(f, schema=schema, limit_errors=limit_errors, lookups=lookups,
                                        reader_options=reader_options, progress=progress, fast=fast))
    return Report(tasks=tasks, seconds=time.monotonic() - started)


def _self_lookups(path: str, schema: Schema | None, reader_options) -> dict:
    lookups: dict = {}
    if schema is None:
        return lookups
    for fk in schema.foreign_keys:
        if fk.resource == "":
            key = ("", tuple(fk.reference_fields))
            if key not in lookups:
                try:
                    lookups[key] = build_lookup(path, schema, fk.reference_fields, reader_options)
                except SourceError:
                    pass
    return lookups


def _resource_options(res: dict, where: str, name: str) -> dict:
    opts: dict = {}
    if "encoding" in res:
        opts["encoding"] = res["encoding"]
    if "format" in res:
        fmt = str(res["format"]).lower()
        opts["format"] = {"ndjson": "jsonl"}.get(fmt, fmt)
        if opts["format"] not in ("csv", "tsv", "json", "jsonl"):
            raise SchemaError(name, f"{where}.format", f"{res['format']!r} is not supported (csv, tsv, json, jsonl)")
    dialect = res.get("dialect")
    if dialect is not None:
        if not isinstance(dialect, dict):
            raise SchemaError(name, f"{where}.dialect", "must be an object")
        csvd = dialect.get("csv", dialect)
        d = Dialect()
        if "delimiter" in csvd:
            d.delimiter = csvd["delimiter"]
        if "quoteChar" in csvd:
            d.quote_char = csvd["quoteChar"]
        if "doubleQuote" in csvd:
            d.double_quote = bool(csvd["doubleQuote"])
        if "escapeChar" in csvd:
            d.escape_char = csvd["escapeChar"]
        if "skipInitialSpace" in csvd:
            d.skip_initial_space = bool(csvd["skipInitialSpace"])
        if "header" in dialect and dialect["header"] is False:
            d.header_rows = []
        if "headerRows" in dialect:
            d.header_rows = list(dialect["headerRows"])
        opts["dialect"] = d
    return opts


def _validate_package(path: str, *, limit_errors: int, progress, fast: bool | None) -> list[Task]:
    desc = read_descriptor(path)
    if not isinstance(desc, dict) or not isinstance(desc.get("resources"), list):
        raise SchemaError(path, "resources", "a Data Package needs a list of resources")
    base = os.path.dirname(os.path.abspath(path))
    resources = []
    for i, res in enumerate(desc["resources"]):
        where = f"resources[{i}]"
        if not isinstance(res, dict):
            raise SchemaError(path, where, "must be an object")
        rpath = res.get("path")
        if isinstance(rpath, list) and len(rpath) == 1:
            rpath = rpath[0]
        if not isinstance(rpath, str):
            raise SchemaError(path, f"{where}.path", "required, a relative file path (inline data is not supported)")
        if os.path.isabs(rpath) or ".." in rpath.replace("\\", "/").split("/") or "://" in rpath:
            raise SchemaError(path, f"{where}.path", f"{rpath!r}: only relative paths inside the package are read")
        name = res.get("name") or os.path.splitext(os.path.basename(rpath))[0]
        sch = res.get("schema")
        if isinstance(sch, str):
            spath = os.path.join(base, sch)
            if os.path.isabs(sch) or ".." in sch.split("/"):
                raise SchemaError(path, f"{where}.schema", f"{sch!r}: only relative paths inside the package")
            sch = load_schema(spath)
        elif isinstance(sch, dict):
            sch = load_schema(sch, name=f"{path}: {where}.schema")
        elif sch is not None:
            raise SchemaError(path, f"{where}.schema", "must be an object or a path")
        resources.append((name, os.path.join(base, rpath), rpath, sch, _resource_options(res, where, path)))
    by_name = {r[0]: r for r in resources}
    tasks = []
    for name, full, rel, sch, opts in resources:
        lookups: dict = {}
        if sch is not None:
            for j, fk in enumerate(sch.foreign_keys):
                target = by_name.get(fk.resource) if fk.resource else (name, full, rel, sch, opts)
                if target is None:
                    raise SchemaError(path, f"resource {name!r}: foreignKeys[{j}].reference.resource",
                                      f"{fk.resource!r} is not a resource of the package")
                key = (fk.resource, tuple(fk.reference_fields))
                if key in lookups:
                    continue
                tsch = target[3]
                if tsch is None:
                    with TableReader(target[1], **target[4]) as r:
                        tsch = infer_schema_rows(list(r.header), [c for _, c in _take(r.rows(), SAMPLE_ROWS)])
                try:
                    lookups[key] = build_lookup(target[1], tsch, fk.reference_fields, target[4])
                except SourceError:
                    lookups[key] = set()
        task = validate_table(full, schema=sch, name=name, limit_errors=limit_errors, lookups=lookups,
                              reader_options=opts, progress=progress, fast=fast)
        task.place = rel
        tasks.append(task)
    return tasks


def _take(it, n):
    out = []
    for x in it:
        out.append(x)
        if len(out) >= n:
            break
    return out
