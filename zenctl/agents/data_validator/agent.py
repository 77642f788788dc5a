"""The Data Validation agent: each dataset read once (files streamed, tables in batches), validated against its
Table Schema, profiled for the quality checks and the drift band, and, for what it finds, repairs and schema
changes proposed. It changes nothing itself: the runtime gates, previews, snapshots and applies the proposals.

Findings per dataset: `data:NAME` (validation: CRITICAL on errors, with the counts by code and the first
errors; UNKNOWN when the source or its schema cannot be read), `data:NAME:quality` (WARNING on a failed check or
drift), `data:NAME:integrity` (database checks), `data:NAME:schema` (a table that differs from its schema:
schema.migrate proposed), `data:NAME:repairs` (what the configured repairs would change: proposed).
"""

import os
from pathlib import Path

from zenctl.agents.data_validator import quality, repairs, tables
from zenctl.agents.data_validator.config import Dataset, source_kind
from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, BaseAgent, Finding, RunContext
from zenctl.core.timeutil import iso
from zenctl.core.untrusted import line, name as shown

HISTORY_KEY = "history:{}"
MAX_FILES = 1000  # files of one dataset checked per run (a glob can match a whole tree)


class DataValidatorAgent(BaseAgent):
    name = "data_validator"
    title = "Data Validation"

    def __init__(self, only: str | None = None):
        self.only = only  # `data check --dataset NAME`

    def assess(self, ctx: RunContext) -> Assessment:
        out = Assessment()
        datasets = [d for d in ctx.config.datasets if self.only in (None, d.name)]
        if not datasets:
            out.add(Finding("data", "ok", "no datasets configured (agents.data_validator.datasets)"))
        for dataset in datasets:
            Check(ctx, dataset, out).run()
        return out


class Check:
    """One dataset's run: read, validate, profile, judge, propose."""

    def __init__(self, ctx: RunContext, ds: Dataset, out: Assessment):
        self.ctx, self.ds, self.out = ctx, ds, out
        self.check = f"data:{ds.name}"
        self.schema = None
        self.profile: quality.Profile | None = None
        self.repair_notes: list[str] = []  # per file: what its repairs would do, or why they cannot be planned
        self.planned: list[Proposal] = []  # the file repairs proposed, for the dataset's one repairs finding

    def run(self) -> None:
        from zenctl.agents.data_validator.schema import SchemaError, load_schema

        try:
            self.schema = load_schema(self._schema_source(), name=self._schema_name())
        except SchemaError as exc:
            self.out.add(Finding(self.check, "unknown", f"schema: {line(str(exc))}",
                                 evidence={"dataset": self.ds.name}))
            return
        except OSError as exc:
            self.out.add(Finding(self.check, "unknown", f"schema {self._schema_name()}: {exc.strerror or exc}"))
            return
        c = self.ds.checks
        self.profile = quality.Profile(
            [], self.schema.fields, frozenset(self.schema.missing_values), set(c.distinct),
            [list(k) for k in c.unique_keys], c.freshness.field if c.freshness else None)
        try:
            if source_kind(self.ds) == "file":
                complete, mtime = self._files()
            else:
                complete, mtime = self._table(), None
        except tables.DatabaseError as exc:
            self.out.add(Finding(self.check, "unknown", f"cannot read: {line(str(exc))}",
                                 evidence={"dataset": self.ds.name, "source": self._where()}))
            return
        except Exception as exc:  # a database error half-way (sqlite3, psycopg): this dataset only, not the run
            what = tables.mask_dsn(tables.first_line(exc))
            self.out.add(Finding(self.check, "unknown", f"{self._where()}: {type(exc).__name__}: {line(what)}",
                                 evidence={"dataset": self.ds.name, "source": self._where()}))
            return
        if complete:
            self._quality(mtime)

    # --- sources ---------------------------------------------------------------------------------------------

    def _schema_source(self):
        source = self.ds.schema
        if isinstance(source, str) and not os.path.isabs(source) and self.ctx.loaded.path:
            return str(Path(self.ctx.loaded.path).parent / source)
        return source

    def _schema_name(self) -> str:
        source = self._schema_source()
        return source if isinstance(source, str) else f"agents.data_validator.datasets[{self.ds.name}].schema"

    def _where(self) -> str:
        ds = self.ds
        if source_kind(ds) == "file":
            return shown(ds.path)
        if source_kind(ds) == "sqlite":
            return f"sqlite {shown(ds.sqlite)} " + (f"table {ds.table}" if ds.table else "query")
        return f"postgres {tables.mask_dsn(ds.postgres)} table {ds.table}"

    def _files(self) -> tuple[bool, float | None]:
        """Validate every file of the dataset; (all read completely, newest mtime)."""
        from zenctl.agents.data_validator import readers

        paths = readers.expand(self.ds.path)
        skipped = max(0, len(paths) - MAX_FILES)
        paths = paths[:MAX_FILES]
        if not paths:
            self.out.add(Finding(self.check, "critical", f"no file matches {shown(self.ds.path)}",
                                 evidence={"dataset": self.ds.name}))
            return False, None
        from zenctl.agents.data_validator.schema import SchemaError

        tasks, complete, mtimes, unreadable = [], True, [], []
        for path in paths:
            try:
                task, reader_info = self._validate_file(path)
            except readers.SourceError as exc:
                unreadable.append(f"{line(str(exc))} ({exc.code})")
                complete = False
                continue
            except (SchemaError, repairs.RepairError) as exc:  # a foreign key's referenced resource
                unreadable.append(f"{shown(path)}: foreign keys: {line(str(exc))}")
                complete = False
                continue
            tasks.append(task)
            mtimes.append(reader_info["mtime"])
            if reader_info["changed"]:
                complete = False
            if (self.ds.repairs or self.ds.quarantine) and "delimiter" in reader_info:
                self._plan_file_repairs(path, reader_info)
        if skipped and tasks:
            tasks[-1].warnings.append(f"{skipped} more file(s) match {shown(self.ds.path)}: only the first "
                                      f"{MAX_FILES} (sorted by name) were checked")
            complete = False
        self._validation_finding(tasks, unreadable)
        if self.ds.repairs or self.ds.quarantine:
            self._repairs_finding(list(self.ds.repairs) + (["quarantine"] if self.ds.quarantine else []))
        return complete, max(mtimes) if mtimes else None

    def _reader_options(self, path: str) -> dict:
        from zenctl.agents.data_validator import readers

        ds = self.ds
        dialect = readers.Dialect(delimiter=ds.delimiter, header_rows=list(range(1, ds.header_rows + 1)))
        if ds.quote:
            dialect.quote_char = ds.quote
        return {"format": ds.format or readers.detect_format(path), "encoding": ds.encoding, "dialect": dialect}

    def _validate_file(self, path: str):
        """Validate one file with the engine's fast path, then profile it in a second streamed pass; both read
        it through a descriptor opened safely (`repairs.open_file`)."""
        from zenctl.agents.data_validator import readers
        from zenctl.agents.data_validator.validate import validate_table

        try:
            opened = repairs.open_file(path)
        except repairs.RepairError as exc:
            raise readers.SourceError(path, str(exc).removeprefix(f"{path}: "), "scheme-error") from None
        handle = f"/proc/self/fd/{opened.fd}"
        try:
            task = validate_table(handle, schema=self.schema, name=path, limit_errors=self.ds.max_errors,
                                  lookups=self._lookups(path, handle), reader_options=self._reader_options(path))
            task.place = path
            for error in task.errors:
                if isinstance(error.note, str):
                    error.note = error.note.replace(handle, path)
            broken = [e for e in task.errors if e.type in ("source-error", "scheme-error", "encoding-error")]
            if broken and (broken[0].type == "scheme-error" or not task.stats.get("rows")):
                raise readers.SourceError(path, broken[0].note or broken[0].message, broken[0].type)
            info = {"mtime": opened.st.st_mtime, "format": self._reader_options(path)["format"],
                    "changed": bool(broken) or any("during the run" in w for w in task.warnings)}
            if not broken:  # read completely: the profile's pass (a file unreadable half-way is reported as such)
                try:
                    with readers.TableReader(handle, **self._reader_options(path)) as reader:
                        self.profile.header = list(reader.header)
                        for _number, cells in reader.rows():
                            self.profile.add(cells)
                        info.update(encoding=reader.info.encoding, delimiter=reader.dialect.delimiter or ",",
                                    quote=reader.dialect.quote_char or '"')
                        info["changed"] |= any("during the run" in w for w in reader.warnings)
                except readers.SourceError as exc:
                    task.warnings.append(f"the second read for the quality checks failed: {exc.message}")
                    info["changed"] = True
            try:
                now = os.stat(opened.name, dir_fd=opened.parent, follow_symlinks=False)
                if now.st_ino != opened.st.st_ino:
                    task.warnings.append("the file was replaced during the run (validated the file as opened)")
                    info["changed"] = True
            except FileNotFoundError:
                task.warnings.append("the file was removed during the run (validated the file as opened)")
                info["changed"] = True
        except readers.SourceError as exc:
            raise readers.SourceError(path, exc.message.replace(handle, path), exc.code) from None
        finally:
            opened.close()
        return task, info

    def _lookups(self, path: str, handle: str) -> dict:
        """The referenced keys of the schema's foreign keys: this file's own (resource ""), or another file
        dataset's (resource: its name)."""
        from zenctl.agents.data_validator.schema import load_schema
        from zenctl.agents.data_validator.validate import build_lookup

        out = {}
        for fk in self.schema.foreign_keys:
            key = (fk.resource, tuple(fk.reference_fields))
            if key in out:
                continue
            if not fk.resource:
                out[key] = build_lookup(handle, self.schema, fk.reference_fields, self._reader_options(path))
                continue
            other = next((d for d in self.ctx.config.datasets if d.name == fk.resource and d.path), None)
            if other is None:
                continue
            from zenctl.agents.data_validator import readers

            files = readers.expand(other.path)
            if len(files) != 1:
                continue
            other_check = Check(self.ctx, other, Assessment())
            opened = repairs.open_file(files[0])
            try:
                out[key] = build_lookup(f"/proc/self/fd/{opened.fd}",
                                        load_schema(other_check._schema_source(), name=other_check._schema_name()),
                                        fk.reference_fields, other_check._reader_options(files[0]))
            finally:
                opened.close()
        return out

    def _numbered(self, rows):
        """A database's rows as the engine takes them: numbered from 2 (the header is row 1), values plain."""
        return self._observed((number, tables.plain(row)) for number, row in enumerate(rows, start=2))

    def _observed(self, rows):
        for number, cells in rows:
            self.profile.add(cells)
            yield number, cells

    def _table(self) -> bool:
        """Validate a database source; integrity checks, migrations and table repairs. True when read whole."""
        ds = self.ds
        if source_kind(ds) == "sqlite":
            conn = tables.sqlite_connect(ds.sqlite)
            try:
                header, rows = tables.sqlite_rows(conn, ds.table, ds.query, ds.batch_rows)
                self.profile.header = header
                task = validate_rows(header, self._numbered(rows), self.schema, name=self._where(),
                                     limit_errors=ds.max_errors)
                self._validation_finding([task], [])
                if ds.table:
                    self._sqlite_integrity(conn)
                    definition = tables.sqlite_describe(conn, ds.table)
                    self._migrations(definition, conn)
                    self._plan_table_repairs(conn, definition)
                elif not ds.query:
                    pass
            finally:
                conn.close()
            return True
        conn = tables.pg_connect(ds.postgres)
        try:
            header, rows = tables.pg_rows(conn, ds.table, ds.batch_rows)
            self.profile.header = header
            task = validate_rows(header, self._numbered(rows), self.schema, name=self._where(),
                                 limit_errors=ds.max_errors)
            self._validation_finding([task], [])
            self._pg_integrity(conn)
            definition = tables.pg_describe(conn, ds.table)
            conn.commit()
            self._migrations(definition, conn)
            self._plan_table_repairs(conn, definition)
        finally:
            conn.close()
        return True

    # --- findings --------------------------------------------------------------------------------------------

    def _validation_finding(self, tasks: list, unreadable: list[str]) -> None:
        counts: dict[str, int] = {}
        rows = 0
        listed, truncated, warnings = [], False, []
        for task in tasks:
            for code, count in (task.counts or {}).items():
                counts[code] = counts.get(code, 0) + count
            rows += (task.stats or {}).get("rows", 0)
            for error in task.errors:
                if len(listed) < self.ds.max_errors:
                    listed.append({"file": task.name, **error.to_dict()} if len(tasks) > 1 else error.to_dict())
                else:
                    truncated = True
            truncated = truncated or bool(task.truncated)
            warnings += [f"{shown(task.name)}: {w}" if len(tasks) > 1 else w for w in task.warnings or []]
        total = sum(counts.values())
        evidence = {"dataset": self.ds.name, "source": self._where(), "rows": rows, "files": len(tasks),
                    "counts": counts, "errors": listed, "listed": len(listed), "truncated": truncated,
                    "warnings": warnings}
        if unreadable:
            evidence["unreadable"] = unreadable
        by_code = ", ".join(f"{code} {count}" for code, count in sorted(counts.items(), key=lambda kv: -kv[1]))
        note = f"; {'; '.join(line(w) for w in warnings[:3])}" if warnings else ""
        if unreadable:
            message = f"{self._where()}: {'; '.join(unreadable[:3])}"
            if total:
                message += f"; and {total} error(s) in what was read ({by_code})"
            self.out.add(Finding(self.check, "unknown" if not total else "critical", message, total, 0, "",
                                 evidence))
            return
        if total:
            first = listed[0] if listed else {}
            where = (f"row {first['rowNumber']}" if first.get("rowNumber") else "header") + (
                f" field {first['fieldNumber']}" if first.get("fieldNumber") else "")
            shown_count = f" (listing the first {len(listed)})" if truncated else ""
            message = (f"{self._where()}: {total} error(s) in {rows} row(s): {by_code}{shown_count}; first: {where} "
                       f"{first.get('type', '')}: {line(str(first.get('note') or first.get('message', '')))[:200]}"
                       f"{note}")
            self.out.add(Finding(self.check, "critical", message, total, 0, "", evidence))
        else:
            self.out.add(Finding(self.check, "ok", f"{self._where()}: valid, {rows} row(s){note}", 0, 0, "",
                                 evidence))

    def _quality(self, mtime: float | None) -> None:
        key = HISTORY_KEY.format(self.ds.name)
        history = self.ctx.recall(key, [])
        summary = self.profile.summary()
        problems = quality.judge(self.profile, self.ds.checks, self.ctx.now, mtime)
        problems += quality.drift(summary, history, self.ds.checks.drift)
        if not self.ctx.dry_run:  # the band is learned from real runs only: a dry-run repeats one
            self.ctx.remember(key, (history + [{"ts": self.ctx.now, **summary}])[-self.ds.checks.drift.history:])
        evidence = {"dataset": self.ds.name, "rows": summary["rows"], "history_runs": len(history),
                    "problems": [p.__dict__ for p in problems],
                    "nulls": self.profile.nulls,
                    "numeric": {n: {"mean": s.mean, "std": s.std, "min": s.low, "max": s.high}
                                for n, s in self.profile.numeric.items() if s.count}}
        if problems:
            self.out.add(Finding(f"{self.check}:quality", "warning",
                                 f"{len(problems)} quality check(s) failed: "
                                 + "; ".join(line(p.message) for p in problems[:5]), len(problems), 0, "",
                                 evidence))
        else:
            self.out.add(Finding(f"{self.check}:quality", "ok", f"quality checks pass ({summary['rows']} rows; "
                                                                f"{len(history)} earlier run(s) in the drift band)",
                                 0, 0, "", evidence))

    def _sqlite_integrity(self, conn) -> None:
        corrupt, fk = quality.sqlite_integrity(conn, self.ds.table, full=False)
        check = f"{self.check}:integrity"
        if corrupt:
            self.out.add(Finding(check, "critical", f"SQLite quick_check: {line(corrupt[0])}"
                                 + (f" (and {len(corrupt) - 1} more)" if len(corrupt) > 1 else ""),
                                 evidence={"quick_check": corrupt}))
        elif fk:
            self.out.add(Finding(check, "warning", f"foreign_key_check: {len(fk)} violation(s): {line(fk[0])}",
                                 evidence={"foreign_key_check": fk}))
        else:
            self.out.add(Finding(check, "ok", "SQLite quick_check and foreign_key_check pass"))

    def _pg_integrity(self, conn) -> None:
        schema_fks = [(fk.fields, fk.resource or self.ds.table, fk.reference_fields)
                      for fk in self.schema.foreign_keys if self._resolve_table(fk.resource)]
        schema_fks = [(f, self._resolve_table(r) or r, rf) for f, r, rf in schema_fks]
        try:
            problems = quality.pg_integrity(conn, self.ds.table, schema_fks)
        except Exception as exc:  # psycopg errors: a bad constraint or a missing referenced table
            conn.rollback()
            self.out.add(Finding(f"{self.check}:integrity", "unknown", f"integrity checks failed: "
                                                                       f"{line(tables.first_line(exc))}"))
            return
        if problems:
            self.out.add(Finding(f"{self.check}:integrity", "warning", "; ".join(line(p) for p in problems),
                                 len(problems), 0, "", {"problems": problems}))
        else:
            self.out.add(Finding(f"{self.check}:integrity", "ok", "no rows violate a NOT VALID constraint; no "
                                                                  "orphans of the declared foreign keys"))

    def _resolve_table(self, resource: str) -> str | None:
        """A foreign key's resource as a table of the same database: "" is this table; a dataset's name is its
        table when it reads the same database; else the name itself."""
        if not resource:
            return self.ds.table
        for other in self.ctx.config.datasets:
            if other.name == resource and other.table and (other.sqlite, other.postgres) == (self.ds.sqlite,
                                                                                            self.ds.postgres):
                return other.table
        return resource

    # --- proposals -------------------------------------------------------------------------------------------

    def _plan_file_repairs(self, path: str, info: dict) -> None:
        ds = self.ds
        if info["format"] not in ("csv", "tsv"):  # cell repairs and quarantine are for CSV and TSV
            wanted = ["normalize_encoding"] if "normalize_encoding" in ds.repairs else []
        else:
            wanted = list(ds.repairs) + (["quarantine"] if ds.quarantine else [])
        if not wanted:
            return
        from zenctl.agents.data_validator.kinds.repair import row_failure

        text_only = info["format"] not in ("csv", "tsv")  # JSON: lines re-encoded, no cells, no quotes to pair
        options = repairs.Options(delimiter=info["delimiter"], quote="" if text_only else info["quote"],
                                  header_rows=ds.header_rows,
                                  encoding=ds.encoding, fields=self.schema.fields,
                                  missing_values=frozenset(self.schema.missing_values),
                                  row_fails=row_failure(self.schema))
        check = f"{self.check}:repairs"
        try:
            steps, source, encoding = repairs.plan(path, wanted, options)
        except repairs.RepairError as exc:
            self.repair_notes.append(f"{shown(path)}: cannot plan repairs: {line(str(exc))}")
            return
        proposals, said, later = [], [], []
        first = True
        for step in steps:
            if not step.changes_something:
                continue
            if proposals and not self._chain_continues(proposals):
                later.append(step.repair)
                continue
            # the mtime the first repair checks travels in the context: the stored plan (which an approval pins)
            # is then the same whether a repair is planned first or behind others that applied since
            context = {"mtime_ns": source["mtime_ns"]} if first else {}
            first = False
            params = {"dataset": ds.name, "repair": step.repair, "source": "file", "path": path,
                      "encoding": encoding, "delimiter": options.delimiter, "quote": options.quote,
                      "header_rows": ds.header_rows, "schema": self.schema.to_dict(), "expect": dict(step.input),
                      "output": step.output, "counts": {"changed_rows": step.changed_rows,
                                                        "changed_cells": step.changed_cells,
                                                        "removed_rows": step.removed_rows},
                      "samples": step.samples}
            proposals.append(Proposal(f"data.{step.repair}", path, params,
                                      f"{ds.name}: {step.repair} would change {shown(path)}", check, context))
            said.append(f"{step.repair} ({step.changed_cells or step.changed_rows or step.removed_rows})")
        if proposals:
            note = f"; then, planned again on what they leave: {', '.join(later)}" if later else ""
            self.repair_notes.append(f"{shown(path)}: repairs to apply: {', '.join(said)}{note}")
            self.planned += proposals

    def _repairs_finding(self, wanted: list[str]) -> None:
        """One finding for the dataset's file repairs (a glob's files together): WARNING with the proposals when
        there is something to repair or a file could not be planned, else OK."""
        check = f"{self.check}:repairs"
        if not self.repair_notes:
            self.out.add(Finding(check, "ok", f"nothing for the repairs ({', '.join(wanted)}) to do"))
            return
        shown_notes = "; ".join(self.repair_notes[:5]) + (f"; and {len(self.repair_notes) - 5} more file(s)"
                                                            if len(self.repair_notes) > 5 else "")
        self.out.add(Finding(check, "warning", shown_notes, len(self.planned),
                             evidence={"dataset": self.ds.name, "files": self.repair_notes[:100]}), self.planned)

    def _chain_continues(self, chain: list[Proposal]) -> bool:
        """May the next repair of a file's chain be proposed behind the last of `chain` in this run? Only if that
        one will apply now: its mode is auto, nothing holds it (backoff, circuit), and the host's hourly budget
        has room for it and the automatic actions before it. Otherwise the next would find the file not as
        planned and fail (counted against its circuit); it is planned again on the next run instead. A dry-run
        previews the whole chain."""
        if self.ctx.dry_run:
            return True
        from zenctl.core.policy import mode_for

        config = self.ctx.loaded.config
        previous = chain[-1]
        if mode_for(previous.kind, config, self.ctx.config).mode != "auto":
            return False
        from zenctl.core.escalation import auto_gate

        if auto_gate(self.ctx.state, config, self.ctx.agent, previous.kind, previous.target, previous.check,
                     self.ctx.now):
            return False
        if not hasattr(self, "_used"):
            self._used = self.ctx.state.conn.execute(
                "SELECT COUNT(*) FROM actions WHERE mode = 'auto' AND status IN ('applying', 'applied', 'failed') "
                "AND created >= ?", (iso(self.ctx.now - 3600),)).fetchone()[0]
        automatic = [p for p in self.out.proposals + self.planned + chain[:-1]
                     if mode_for(p.kind, config, self.ctx.config).mode == "auto"]
        return self._used + len(automatic) < config.policy.max_auto_repairs_per_hour

    def _plan_table_repairs(self, conn, definition: tables.TableDef) -> None:
        ds = self.ds
        if not ds.repairs or not ds.table:
            return
        check = f"{self.check}:repairs"
        if source_kind(ds) == "sqlite":
            key = ["rowid"] if definition.rowid else definition.primary_key
        else:
            key = definition.primary_key
        if not key:
            self.out.add(Finding(check, "warning", f"{self._where()}: no primary key: table repairs need one to "
                                                   "change rows (and undo them) exactly"))
            return
        columns = definition.column_names
        text_cols = {c.name for c in definition.columns if repairs.text_column(c.type)}
        nullable = {c.name for c in definition.columns if not c.notnull and not c.pk}
        proposals, said = [], []
        db = ds.sqlite if source_kind(ds) == "sqlite" else tables.mask_dsn(ds.postgres)
        for repair in [r for r in repairs.ORDER if r in ds.repairs]:
            if repair == "dedupe" and source_kind(ds) == "postgres":
                continue  # a table with a primary key holds no exact duplicates
            rows, key_of = tables.keyed_rows(conn, source_kind(ds), ds.table, key, columns, ds.batch_rows)
            try:
                changes = repairs.plan_table(columns, rows, key_of, repair, self.schema.fields, text_cols,
                                             nullable, frozenset(self.schema.missing_values))
            except repairs.RepairError as exc:
                self.out.add(Finding(check, "warning", f"{self._where()}: {repair}: {line(str(exc))}"))
                continue
            if not (changes["updates"] or changes["deletes"]):
                continue
            # the cells themselves are not in the plan (a notify or approve mode would log them every run):
            # apply recomputes them in its transaction and goes ahead only if they hash as planned
            params = {"dataset": ds.name, "repair": repair, "source": source_kind(ds), "db": db, "table": ds.table,
                      "key": key, "columns": columns, "definition": definition.digest(),
                      "schema": self.schema.to_dict(), "text_columns": sorted(text_cols),
                      "nullable": sorted(nullable), "batch_rows": ds.batch_rows,
                      "digest": repairs.table_digest(changes),
                      "counts": {k: changes[k] for k in ("changed_rows", "changed_cells", "removed_rows")},
                      "samples": changes["samples"]}
            context = {"dsn": ds.postgres} if source_kind(ds) == "postgres" else {}
            proposals.append(Proposal(f"data.{repair}", f"{ds.name}:{ds.table}", params,
                                      f"{ds.name}: {repair} would change table {ds.table}", check, context))
            said.append(f"{repair} ({changes['changed_cells'] or changes['removed_rows']})")
            break  # one table repair a run: the next is planned on what this one leaves
        if proposals:
            self.out.add(Finding(check, "warning", f"{self._where()}: repairs to apply: {', '.join(said)}",
                                 len(proposals), evidence={"dataset": ds.name}), proposals)
        elif not any(f.check == check for f in self.out.findings):
            self.out.add(Finding(check, "ok", f"{self._where()}: nothing for the repairs ({', '.join(ds.repairs)}) "
                                              "to do"))

    def _migrations(self, definition: tables.TableDef, conn) -> None:
        if not self.ds.migrate or not self.ds.table:
            return
        from zenctl.agents.data_validator import migrate

        check = f"{self.check}:schema"
        plan = migrate.plan(self.ds, self.schema, definition, conn, self._resolve_table)
        if plan is None:
            self.out.add(Finding(check, "ok", f"{self._where()}: the table matches its schema"))
            return
        if plan.refused:
            self.out.add(Finding(check, "warning", f"{self._where()}: differs from its schema: "
                                                   f"{'; '.join(plan.differences)}; not proposed: {plan.refused}",
                                 evidence={"differences": plan.differences}))
            return
        context = {"dsn": self.ds.postgres} if source_kind(self.ds) == "postgres" else {}
        proposal = Proposal("schema.migrate", f"{self.ds.name}:{self.ds.table}", plan.params,
                            f"{self.ds.name}: table {self.ds.table} differs from its schema", check, context)
        self.out.add(Finding(check, "warning", f"{self._where()}: differs from its schema: "
                                               f"{'; '.join(plan.differences)}",
                             len(plan.differences), evidence={"differences": plan.differences}), [proposal])


def validate_rows(header: list, rows, schema, name: str, limit_errors: int):
    """The engine's exact row-by-row validation over a database's rows: a Task with frictionless's errors,
    exact counts, and `rows` in its stats."""
    from zenctl.agents.data_validator import validate

    return validate.validate_rows(header, rows, schema, name=name, limit_errors=limit_errors)
