"""`zenctl logs parse FILE`: every record of one file as a JSON line, mined by a fresh miner; no state touched.

What a user pipes into jq, sort | uniq -c, or a benchmark. Each object has `line` (1-based number of the
record's first line), `template_id`, `template`, `params` (the text at each `<*>` of the template, in order),
and when known `time` (UTC ISO 8601), `level`, `host`, `program`; `unparsed: true` for a line no format took;
`traceback: {type, frame}` for a record with a stack trace; `security: {jail, ip}` when the record is a failure
a jail counts (logs-security's classifier, when that module is installed).

The miner learns as it reads: a template can generalize after its first lines were seen (a position becomes
`<*>` once enough distinct words were seen there). Records are therefore held back (WINDOW records, at most
WINDOW_BYTES of messages: a whole file of moderate size) and written with the id and template they have then;
a merge later than that is not reflected in the lines already written.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TextIO

from zenctl.agents.log_analyzer.formats import MAX_LINE, FormatError, parse_lines
from zenctl.agents.log_analyzer.miner import Miner
from zenctl.core import untrusted

WINDOW = 100_000  # records held back so ids merged meanwhile come out final...
WINDOW_BYTES = 32 * 1024 * 1024  # ...as long as their messages take no more than this
PROGRESS_BYTES = 64 * 1024 * 1024  # a file this large shows progress on a terminal's stderr
EXIT_OK, EXIT_UNKNOWN = 0, 3


def read_lines(stream: io.BufferedIOBase, counts: dict) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line: at most MAX_LINE bytes kept of a longer one (the rest skipped, not
    read into memory), invalid UTF-8 kept as backslash escapes; `counts` gets truncated / invalid_utf8 /
    binary / bytes."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        counts["bytes"] += len(raw)
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            counts["truncated"] += 1
            while True:  # skip the rest of the long line in bounded pieces
                more = stream.readline(1 << 20)
                counts["bytes"] += len(more)
                if not more or more.endswith(b"\n"):
                    break
            raw = raw[:MAX_LINE]
        number += 1
        text = raw.rstrip(b"\n").rstrip(b"\r")
        if b"\x00" in text:
            counts["binary"] += 1
        try:
            line = text.decode()
        except UnicodeDecodeError:
            counts["invalid_utf8"] += 1
            line = text.decode("utf-8", "backslashreplace")
        yield number, line


def _security():
    """logs-security's per-file classifier, or None when that module is not there (or fails to load)."""
    try:
        from zenctl.agents.log_analyzer.security import Classifier
    except ImportError:
        return None
    try:
        return Classifier()
    except Exception:  # noqa: BLE001 - a broken optional module must not stop parsing
        return None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def run_parse(path: str, fmt: str = "auto", pattern: str | None = None, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Write FILE's records as JSON lines to `out`; 0 when read, 3 (one line on `err`) when it cannot be."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        err.write(f"zenctl logs parse: cannot read {untrusted.name(path)}: {exc.strerror or exc}\n")
        return EXIT_UNKNOWN
    try:
        size = os.fstat(raw.fileno()).st_size
        stream = gzip.GzipFile(fileobj=raw) if raw.read(2) == b"\x1f\x8b" else raw
        raw.seek(0)
        counts = {"bytes": 0, "truncated": 0, "invalid_utf8": 0, "binary": 0}
        progress = size >= PROGRESS_BYTES and err.isatty()
        try:
            records = parse_lines(read_lines(stream, counts), fmt, pattern=pattern)
            _write(records, out, err, counts, size if progress else 0)
        except FormatError as exc:
            err.write(f"zenctl logs parse: {exc}\n")
            return EXIT_UNKNOWN
        except BrokenPipeError:  # before OSError, which it is
            _silence(out)
            return EXIT_OK
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            err.write(f"zenctl logs parse: cannot read {untrusted.name(path)}: {exc}\n")
            return EXIT_UNKNOWN
    finally:
        raw.close()
    return EXIT_OK


def _silence(out: TextIO) -> None:
    """The reader went away (`| head`): no more writes, no 'Broken pipe' message at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _write(records, out: TextIO, err: TextIO, counts: dict, progress_total: int) -> None:
    miner = Miner()
    classifier = _security()
    pending: deque = deque()
    held = 0
    next_progress = time.monotonic() + 1.0
    write = out.write
    for record in records:
        tid, template, params = miner.add(record.message, time=record.time, level=record.level)
        row: dict = {"line": record.line, "template_id": tid, "template": template, "params": params}
        if record.time is not None:
            row["time"] = _iso(record.time)
        for key in ("level", "host", "program"):
            value = getattr(record, key)
            if value is not None:
                row[key] = value
        fields = record.fields
        if fields.get("unparsed"):
            row["unparsed"] = True
        if "traceback" in fields:
            row["traceback"] = fields["traceback"]
        if classifier is not None:
            try:
                hit = classifier.classify(record)
            except Exception:  # noqa: BLE001 - the optional classifier's bug is not the parse's failure
                hit = None
            if hit is not None:
                row["security"] = {"jail": hit.jail, "ip": hit.ip}
        pending.append((row, record.message))
        held += len(record.message) + 200
        while len(pending) > WINDOW or held > WINDOW_BYTES:
            row_out, message = pending.popleft()
            held -= len(message) + 200
            write(_render(miner, row_out, message))
        if progress_total and time.monotonic() >= next_progress:
            next_progress = time.monotonic() + 1.0
            err.write(f"\rzenctl logs parse: {min(100, counts['bytes'] * 100 // progress_total)}% "
                      f"({record.line:,} lines)")
            err.flush()
    while pending:
        write(_render(miner, *pending.popleft()))
    if progress_total:
        err.write("\n")
    out.flush()


def _render(miner: Miner, row: dict, message: str) -> str:
    """The row with its template id as it is now (a merge since may have renamed it), as one JSON line."""
    tid = row["template_id"]
    now = miner.resolve(tid)
    current = miner.template(now)
    if current is not None and (now != tid or current != row["template"]):
        row["template_id"], row["template"] = now, current
        row["params"] = miner.params(now, message, row["params"])
    # ASCII: a lone surrogate (a JSON log's "\\udc80") cannot be written as UTF-8; escaped, it can
    return json.dumps(row, default=str) + "\n"
