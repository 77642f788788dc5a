"""`zenctl data validate` and `zenctl data infer` without typer: plain functions returning the exit code
(0 valid, 2 invalid, 3 could not read: a missing file, a bad schema, an unreadable source). cli.py wires them."""

from __future__ import annotations

import os
import sys

UNREADABLE = ("scheme-error", "source-error", "encoding-error")
MESSAGE_MAX = 400  # characters of an error message in the text listing (--json keeps it whole)


class _Progress:
    """Bytes read of the file, on stderr, when stderr is a terminal and the file is large (at most ~4 updates/s)."""

    def __init__(self):
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if now - self.last < 0.25 or not total:
            return
        self.last = now
        sys.stderr.write(f"\rzenctl: validating... {min(100, done * 100 // total)}% of {total:,} bytes")
        sys.stderr.flush()

    def end(self) -> None:
        if self.last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _progress_for(path: str):
    try:
        large = os.path.isfile(path) and os.path.getsize(path) > 32 * 1024 * 1024
    except OSError:
        large = False
    return _Progress() if large and sys.stderr.isatty() else None


def data_validate(path: str | None = None, schema: str | None = None, json: bool = False, limit: int | str = 1000,
                  quiet: bool = False, config: str | None = None, db: str | None = None, dry_run: bool = False) -> int:
    """Validate a data file, glob or Data Package; print the report (frictionless's --json shape with --json).
    config/db/dry_run are the entry point's common options (a typer-free FAST call passes them): not used, nothing
    here reads the config or the state."""
    from zenctl.clikit import error

    if not path:
        error("data validate: PATH is required (a data file, a glob, or a datapackage.json)")
        return 3
    try:
        limit = int(limit)
        if limit < 1:
            raise ValueError
    except ValueError:
        error(f"--limit {limit!r}: must be a positive integer")
        return 3

    from .readers import SourceError
    from .schema import SchemaError
    from .validate import validate_path

    progress = _progress_for(path)
    try:
        report = validate_path(path, schema=schema, limit_errors=limit, progress=progress)
    except SchemaError as exc:
        error(f"invalid schema: {exc}")
        return 3
    except SourceError as exc:
        error(str(exc))
        return 3
    finally:
        if progress is not None:
            progress.end()
    unreadable = any(t.counts and all(k in UNREADABLE for k in t.counts) and not t.stats.get("rows")
                     for t in report.tasks)
    code = 0 if report.valid else (3 if unreadable else 2)
    if json:
        from zenctl.clikit import print_json

        print_json(report.to_dict())
    elif not (quiet and code == 0):
        _print_text(report)
    return code


def _print_text(report) -> None:
    from zenctl.core.untrusted import line, name

    out = sys.stdout.write
    for t in report.tasks:
        rows = t.stats.get("rows", 0) if "bytes" in t.stats else None
        where = name(t.place)
        if t.valid:
            out(f"{where}: valid ({rows:,} rows)\n" if rows is not None else f"{where}: valid\n")
        else:
            counts = ", ".join(f"{k} {v:,}" for k, v in sorted(t.counts.items(), key=lambda kv: -kv[1]))
            size = f" in {rows:,} rows" if rows is not None else ""
            out(f"{where}: invalid: {t.total:,} errors{size} ({counts})\n")
            for e in t.errors:
                pos = []
                if e.row_number is not None:
                    pos.append(f"row {e.row_number}")
                if e.field_number is not None:
                    pos.append(f"field {e.field_number}")
                pos_text = (" ".join(pos) + ": ") if pos else ""
                message = e.message if len(e.message) <= MESSAGE_MAX else e.message[:MESSAGE_MAX] + "..."
                out(f"  {pos_text}{e.type}: {line(message)}\n")
            if t.truncated:
                out(f"  listing stopped after {len(t.errors):,} errors; the counts above are exact "
                    f"({t.total - len(t.errors):,} more not listed)\n")
        for w in t.warnings:
            out(f"  warning: {line(w)}\n")


def data_infer(path: str | None = None, output: str | None = None, json: bool = True, quiet: bool = False,
               config: str | None = None, db: str | None = None, dry_run: bool = False) -> int:
    """Print (or write to `output`) a Table Schema inferred from the data file (the common options: unused)."""
    import json as _json

    from zenctl.clikit import error

    if not path:
        error("data infer: PATH is required")
        return 3

    from .infer import infer_schema
    from .readers import SourceError

    try:
        schema = infer_schema(path)
    except SourceError as exc:
        error(str(exc))
        return 3
    text = _json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if output:
        from zenctl.core.files import write_atomic

        try:
            write_atomic(output, text)
        except OSError as exc:
            error(f"{output}: {exc.strerror or exc}")
            return 3
    else:
        sys.stdout.write(text)
    return 0
