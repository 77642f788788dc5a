"""Repairs of common data issues in CSV/TSV files: what each changes, planned in one streaming pass and applied
one repair at a time, atomically.

Planning runs the repairs the dataset asks for as a chain (normalize_encoding, trim, missing_values, numbers,
dates, dedupe, quarantine) over the file's records and proposes one action per repair that changes something.
Each plan carries what its input must be (size and SHA-256, and for the first one the file's mtime) and what its
output will be: the second repair's input is the first one's output, so a chain applies in order in one run, and
a repair never runs on a file that is not exactly what it was planned on (changed by someone since, or an earlier
repair was not applied).

Records are rewritten only when a cell changes: every other record keeps its bytes (quotes, line ending,
encoding). Header rows and blank records are never touched, except by normalize_encoding.

The file may live in a directory others write: it is opened relative to its directory's descriptor (reached
without following a symlink others could have placed, `core.dirwalk`), never through a symlink, never a FIFO,
never a file with a second name (a hard link to someone else's file); the new content is written to a new file
in the same directory, given the original's owner and mode on the descriptor, and renamed over the original only
if the name still holds the file that was read, unchanged.
"""

import codecs
import csv
import dataclasses
import hashlib
import io
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from zenctl.core import dirwalk

ORDER = ("normalize_encoding", "trim", "missing_values", "numbers", "dates", "dedupe", "quarantine")
SAMPLES = 5
MAX_DEDUPE_ROWS = 50_000_000
_CHUNK = 1 << 20

# NA tokens replaced by an empty cell. In string fields only the unmistakable ones: "NA" is Namibia, "-" a value.
NA_TOKENS = frozenset({"N/A", "n/a", "N/a", "#N/A", "NA", "na", "n.a.", "null", "NULL", "Null", "None", "none",
                       "nil", "NIL", "NaN", "nan", "-", "--", "?", "(null)", "#NULL!", "missing"})
NA_STRING_TOKENS = frozenset({"N/A", "n/a", "#N/A", "null", "NULL", "(null)", "#NULL!"})


class RepairError(Exception):
    """The file cannot be repaired (or no longer matches its plan); str() is one line."""


# --- cell transforms ------------------------------------------------------------------------------------------

def trim(cell: str, fld) -> str:
    return cell.strip()


def missing(cell: str, fld, na_missing: frozenset[str]) -> str:
    if cell in na_missing:
        return cell  # the schema already reads it as missing
    tokens = NA_STRING_TOKENS if fld is None or fld.type == "string" else NA_TOKENS
    if cell.strip() in tokens and cell.strip() not in _enum(fld):
        return ""
    return cell


def _enum(fld) -> set[str]:
    values = (getattr(fld, "constraints", None) or {}).get("enum") or []
    return {str(v) for v in values}


_GROUPED = {  # thousands separators, strictly in threes: 1,234,567.89 / 1 234 / 1'234 / 1.234.567,5
    ",": re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"),
    " ": re.compile(r"^[+-]?\d{1,3}([ \u00a0\u202f]\d{3})+(\.\d+)?$"),
    "'": re.compile(r"^[+-]?\d{1,3}('\d{3})+(\.\d+)?$"),
}
_GROUPED_COMMA_DECIMAL = {
    ".": re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$"),
    " ": re.compile(r"^[+-]?\d{1,3}([ \u00a0\u202f]\d{3})+(,\d+)?$"),
    "'": re.compile(r"^[+-]?\d{1,3}('\d{3})+(,\d+)?$"),
}


def number(cell: str, fld) -> str:
    """Thousands separators out of integer and number fields. A field whose schema says `decimalChar: ","`
    keeps its decimal comma and loses its dot or space groups (1.234,5 -> 1234,5); any other field loses comma,
    space or apostrophe groups (1,234.5 -> 1234.5). A cell that is not strictly grouped in threes (1,5 or
    1,50) is left alone: that could be a decimal comma, and is not guessed."""
    if fld is None or fld.type not in ("integer", "number") or getattr(fld, "group_char", None) not in (None, ""):
        return cell
    text = cell.strip()
    comma_decimal = getattr(fld, "decimal_char", None) == ","
    for sep, pattern in (_GROUPED_COMMA_DECIMAL if comma_decimal else _GROUPED).items():
        if pattern.match(text):
            return re.sub("[ \u00a0\u202f]" if sep == " " else re.escape(sep), "", text)
    return cell


_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec"))}
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DMY_OR_MDY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_D_MON_Y = re.compile(r"^(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ -,]*(\d{4})$")
_MON_D_Y = re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_date(text: str) -> date | None:
    """A date in an unambiguous form, or None. Year first (2025/4/3, 2025.04.03, 20250403), a month by name
    (3 Apr 2025, April 3, 2025), or day and month where one of them is over 12 (13/04/2025, 04/13/2025). Never
    03/04/2025: March or April cannot be told from the cell."""
    text = text.strip()
    try:
        if m := _YMD.match(text) or _COMPACT.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DMY_OR_MDY.match(text):
            a, b, year = int(m[1]), int(m[2]), int(m[3])
            if a > 12 >= b:
                return date(year, b, a)
            if b > 12 >= a:
                return date(year, a, b)
            if a == b:
                return date(year, a, b)
            return None
        if m := _D_MON_Y.match(text):
            month = _MONTHS.get(m[2][:3].lower())
            return date(int(m[3]), month, int(m[1])) if month and _month_word(m[2]) else None
        if m := _MON_D_Y.match(text):
            month = _MONTHS.get(m[1][:3].lower())
            return date(int(m[3]), month, int(m[2])) if month and _month_word(m[1]) else None
    except ValueError:  # 2025-02-30
        return None
    return None


def _month_word(word: str) -> bool:
    full = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
            "november", "december")
    word = word.lower()
    return any(name.startswith(word) for name in full) and (len(word) == 3 or word in full or word == "sept")


def dates(cell: str, fld) -> str:
    """Date and datetime cells of fields with the default (ISO 8601) format, rewritten to it when their form is
    unambiguous; a datetime as date, a space or T, and a time (kept as written, seconds added)."""
    if fld is None or fld.type not in ("date", "datetime") or getattr(fld, "format", "default") not in (
            "default", None, ""):
        return cell
    text = cell.strip()
    if not text or _is_iso(text, fld.type):
        return cell
    if fld.type == "date":
        parsed = parse_date(text)
        return parsed.isoformat() if parsed else cell
    head, sep, tail = text.replace("T", " ", 1).partition(" ")
    if not sep:
        return cell
    day, clock = parse_date(head), _TIME.match(tail.strip())
    if not day or not clock:
        return cell
    hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return cell
    zone = clock[5] or ""
    if zone and zone != "Z" and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}{clock[4] or ''}{zone}"


def _is_iso(text: str, ftype: str) -> bool:
    try:
        if ftype == "date":
            return bool(re.match(r"^\d{4}-\d{2}-\d{2}$", text)) and bool(date.fromisoformat(text))
        return bool(re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", text)) and bool(
            datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return False


# --- reading records ------------------------------------------------------------------------------------------

class _HashingRaw(io.RawIOBase):
    """A raw reader over a descriptor that hashes and counts what passes through."""

    def __init__(self, fd: int):
        self.fd, self.sha, self.size = fd, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.read(self.fd, len(buffer))
        buffer[:len(data)] = data
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def sniff_encoding(head: bytes, configured: str | None) -> str:
    """The codec that reads the file back to the same bytes: a BOM decides (kept as U+FEFF in the text), else the
    configured encoding, else UTF-8 (Latin-1 when UTF-8 fails, see `plan`)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    if configured:
        name = codecs.lookup(configured).name
        return {"utf-8-sig": "utf-8", "utf-16": "utf-16-le"}.get(name, name)
    return "utf-8"


MAX_RECORD = 16 << 20  # characters one record may span (an unclosed quote would otherwise take the whole file)


def records(text: Iterator[str], quote: str) -> Iterator[str]:
    """Whole CSV records (line endings kept): lines joined while a quoted cell is open."""
    parts, size, quotes = [], 0, 0
    for line in text:
        parts.append(line)
        size += len(line)
        quotes += line.count(quote) if quote else 0
        if quotes % 2 == 0:
            yield "".join(parts)
            parts, size, quotes = [], 0, 0
        elif size > MAX_RECORD:
            raise RepairError(f"a record longer than {MAX_RECORD >> 20} Mi characters (an unclosed quote?); not "
                              "repairing this file")
    if parts:
        yield "".join(parts)


def _split_ending(record: str) -> tuple[str, str]:
    for ending in ("\r\n", "\n", "\r"):
        if record.endswith(ending):
            return record[:-len(ending)], ending
    return record, ""


# --- the chain ------------------------------------------------------------------------------------------------

@dataclass
class Step:
    """One repair's effect in the chain: counts, samples, and the bytes before and after."""

    repair: str
    changed_rows: int = 0
    changed_cells: int = 0
    removed_rows: int = 0
    samples: list[dict] = field(default_factory=list)
    input: dict = field(default_factory=dict)  # {size, sha256}
    output: dict = field(default_factory=dict)
    records: int = 0

    @property
    def changes_something(self) -> bool:
        return self.input.get("sha256") != self.output.get("sha256")


@dataclass
class Options:
    """What the chain needs to know about the file and its schema."""

    delimiter: str = ","
    quote: str = '"'
    header_rows: int = 1
    encoding: str | None = None
    fields: list = field(default_factory=list)  # schema fields by position (None beyond)
    missing_values: frozenset[str] = frozenset({""})
    row_fails: Callable[[list[str]], bool] | None = None  # quarantine: does a row still fail the schema?
    quarantine_sink: Callable[[str], None] | None = None  # quarantine, applying: where a removed record goes


class _Chain:
    """Runs the requested repairs record by record, tracking each one's output bytes."""

    def __init__(self, repairs: list[str], options: Options, encoding: str):
        self.repairs = [r for r in ORDER if r in repairs]
        self.o = options
        self.steps = [Step(r) for r in self.repairs]
        self.encoders = []
        self.hashes = [hashlib.sha256() for _ in self.repairs]
        self.sizes = [0] * len(self.repairs)
        self.seen: set[bytes] = set()
        enc = encoding
        for repair in self.repairs:
            if repair == "normalize_encoding":
                enc = "utf-8"
            self.encoders.append(codecs.getincrementalencoder(enc)())
        self.row = 0
        self.last_output: str | None = None
        self._parsed: tuple[str | None, list] = (None, [])
        self.hints = _hints(options)
        self.dialect = {"delimiter": options.delimiter, "quotechar": options.quote or '"',
                        "quoting": csv.QUOTE_MINIMAL if options.quote else csv.QUOTE_NONE, "escapechar": None,
                        "doublequote": True, "lineterminator": "\r\n"}  # its characters are quoted in cells

    def feed(self, record: str) -> None:
        self.row += 1
        current: str | None = record
        for index, repair in enumerate(self.repairs):
            if current is not None:
                current = self._step(index, repair, current, self.steps[index].records < self.o.header_rows)
            if current is not None:
                data = self.encoders[index].encode(current)
                self.hashes[index].update(data)
                self.sizes[index] += len(data)
        self.last_output = current

    def finish(self, source: dict) -> list[Step]:
        previous = source
        for index, step in enumerate(self.steps):
            data = self.encoders[index].encode("", final=True)
            self.hashes[index].update(data)
            self.sizes[index] += len(data)
            step.input = previous
            step.output = {"size": self.sizes[index], "sha256": self.hashes[index].hexdigest()}
            previous = step.output
        return self.steps

    def _step(self, index: int, repair: str, record: str, header: bool) -> str | None:
        step = self.steps[index]
        step.records += 1  # the record's number in this step's input, as a plan made on that file counts it
        if repair == "normalize_encoding":
            new = record.replace("\r\n", "\n").replace("\r", "\n")
            if step.records == 1 and new.startswith("\ufeff"):
                new = new[1:]
            if new != record:
                step.changed_rows += 1
                self._sample(step, record, new)
            return new
        body, ending = _split_ending(record)
        if header or not body:
            return record
        hint = self.hints.get(repair, _ALWAYS)
        if hint is None or not hint.search(body):
            return record  # nothing in this record the repair could change: not parsed
        cells = self._cells(body)
        if cells is None:
            return record
        if repair == "dedupe":
            key = hashlib.blake2b("\x00".join(cells).encode("utf-8", "surrogatepass"), digest_size=12).digest()
            if key in self.seen:
                step.removed_rows += 1
                self._sample(step, record, None)
                return None
            if len(self.seen) >= MAX_DEDUPE_ROWS:
                raise RepairError(f"more than {MAX_DEDUPE_ROWS} distinct rows: too many to dedupe in memory")
            self.seen.add(key)
            return record
        if repair == "quarantine":
            if self.o.row_fails and self.o.row_fails(cells):
                step.removed_rows += 1
                if self.o.quarantine_sink:
                    self.o.quarantine_sink(record if ending else record + "\n")
                self._sample(step, record, None)
                return None
            return record
        transform = _TRANSFORMS[repair]
        new_cells = [transform(cell, self._field(i), self.o.missing_values) for i, cell in enumerate(cells)]
        changed = sum(a != b for a, b in zip(cells, new_cells))
        if not changed:
            return record
        out = io.StringIO()
        csv.writer(out, **self.dialect).writerow(new_cells)
        new = out.getvalue()[:-2] + ending
        step.changed_rows += 1
        step.changed_cells += changed
        self._sample(step, record, new)
        return new

    def _cells(self, body: str) -> list[str] | None:
        """The record's cells (the previous step's parse when the record came through unchanged)."""
        if body == self._parsed[0]:
            return list(self._parsed[1])
        try:
            cells = next(csv.reader([body], delimiter=self.o.delimiter, quotechar=self.o.quote or '"',
                                    quoting=csv.QUOTE_MINIMAL if self.o.quote else csv.QUOTE_NONE, strict=True))
        except (csv.Error, StopIteration):
            return None  # a malformed record is left as it is
        self._parsed = (body, cells)
        return list(cells)

    def _field(self, index: int):
        return self.o.fields[index] if index < len(self.o.fields) else None

    def _sample(self, step: Step, before: str, after: str | None) -> None:
        if len(step.samples) < SAMPLES:
            step.samples.append({"row": step.records, "before": _split_ending(before)[0][:500],
                                 "after": None if after is None else _split_ending(after)[0][:500]})


_ALWAYS = re.compile("")


def _hints(o: "Options") -> dict:
    """Per repair, a pattern a record must contain for the repair to change anything in it (None: it never
    can), so most records are not parsed at all. Loose on purpose: a false match only costs a parse."""
    d = re.escape(o.delimiter)
    q = re.escape(o.quote) if o.quote else ""
    edge = f"(?:^|{d}{'|' + q if q else ''})"
    end = f"(?:$|{d}{'|' + q if q else ''})"
    space = "\\s"  # a whitespace delimiter (tab) only makes more records match, never fewer
    types = {getattr(f, "type", None) for f in o.fields}
    tokens = "|".join(re.escape(t) for t in sorted(NA_TOKENS, key=len, reverse=True))
    return {
        "trim": re.compile(f"{edge}{space}|{space}{end}"),
        "missing_values": re.compile(f"{edge}{space}*(?:{tokens}){space}*{end}"),
        "numbers": re.compile("\\d[,. '\u00a0\u202f]\\d{3}") if types & {"integer", "number"} or not o.fields
        else None,
        "dates": _ALWAYS if types & {"date", "datetime"} else None,
    }


_TRANSFORMS = {
    "trim": lambda cell, fld, na: trim(cell, fld),
    "missing_values": lambda cell, fld, na: missing(cell, fld, na),
    "numbers": lambda cell, fld, na: number(cell, fld),
    "dates": lambda cell, fld, na: dates(cell, fld),
}


# --- opening the file safely ----------------------------------------------------------------------------------

@dataclass
class Opened:
    parent: int
    name: str
    fd: int
    st: os.stat_result

    def close(self) -> None:
        for fd in (self.fd, self.parent):
            try:
                os.close(fd)
            except OSError:
                pass


def open_file(path: str) -> Opened:
    """The file, opened for reading relative to its directory's descriptor (see the module doc); RepairError.
    The agent reads every data file this way too: a symlink or hard link planted where a dataset's file should be
    would otherwise put another file's content (its cells, as error evidence) into the audit log."""
    try:
        parent, name = dirwalk.open_parent(path)
    except OSError as exc:
        raise RepairError(f"{path}: {exc.strerror or exc}") from None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=parent)
    except OSError as exc:
        os.close(parent)
        why = "it is a symlink; not following it" if exc.errno == 40 else (exc.strerror or str(exc))
        raise RepairError(f"{path}: {why}") from None
    st = os.fstat(fd)
    opened = Opened(parent, name, fd, st)
    if not stat.S_ISREG(st.st_mode):
        opened.close()
        raise RepairError(f"{path}: not a regular file")
    if st.st_nlink != 1:
        opened.close()
        raise RepairError(f"{path}: it has {st.st_nlink} names (a hard link, perhaps to someone else's file); "
                          "not opening it")
    return opened


def run_chain(opened: Opened, repairs: list[str], options: Options, encoding: str | None = None,
              sink: Callable[[str], None] | None = None) -> tuple[list[Step], dict, str]:
    """Read the file once through the chain; (steps, the source's {size, sha256, mtime_ns}, encoding). Without
    `encoding` it is sniffed (UTF-8, then Latin-1 when UTF-8 fails); with `sink`, each record's final output
    text is handed to it (one attempt only: what was written cannot be taken back)."""
    if encoding:
        candidates = [encoding]
    else:
        first = sniff_encoding(os.pread(opened.fd, 4, 0), options.encoding)
        candidates = [first] if first != "utf-8" or options.encoding else ["utf-8", "latin-1"]
    for attempt in candidates:
        os.lseek(opened.fd, 0, os.SEEK_SET)
        raw = _HashingRaw(opened.fd)
        chain = _Chain(repairs, options, attempt)
        text = io.TextIOWrapper(io.BufferedReader(raw, _CHUNK), encoding=attempt, errors="strict", newline="")
        try:
            for record in records(text, options.quote):
                chain.feed(record)
                if sink and chain.last_output is not None:
                    sink(chain.last_output)
        except UnicodeDecodeError as exc:
            if attempt == candidates[-1]:
                raise RepairError(f"cannot be read as {attempt} ({exc.reason}); set the dataset's encoding") from None
            continue
        finally:
            text.detach()
        source = {"size": raw.size, "sha256": raw.sha.hexdigest(), "mtime_ns": opened.st.st_mtime_ns}
        now = os.fstat(opened.fd)
        if (now.st_size, now.st_mtime_ns) != (opened.st.st_size, opened.st.st_mtime_ns) or raw.size != now.st_size:
            raise RepairError("the file changed while it was read")
        return chain.finish(source), source, attempt
    raise RepairError("cannot be read")  # not reached: the last attempt raises


def plan(path: str, repairs: list[str], options: Options) -> tuple[list[Step], dict, str]:
    """The chain's steps for `path` (all requested, those that change nothing included), the source's
    fingerprint, and the encoding it was read with."""
    opened = open_file(path)
    try:
        return run_chain(opened, repairs, options)
    finally:
        opened.close()


# --- applying one step ----------------------------------------------------------------------------------------

def quarantine_path(path: str) -> str:
    """`orders.csv` -> `orders.quarantine.csv`, beside it."""
    directory, name = os.path.split(path)
    stem, dot, suffix = name.rpartition(".")
    return os.path.join(directory, f"{stem}.quarantine.{suffix}" if dot and stem else f"{name}.quarantine")


def apply(path: str, repair: str, options: Options, encoding: str, expect: dict, output: dict) -> Step:
    """Run one repair on the file as planned: its input must hash to `expect` (and for a chain's first step
    have its size and mtime), its output to `output`. Written to a new file in the same directory and renamed
    over the original (rows quarantined appended to the quarantine file the same way). RepairError, nothing
    changed, when anything differs."""
    opened = open_file(path)
    try:
        st = opened.st
        if st.st_size != expect["size"] or ("mtime_ns" in expect and st.st_mtime_ns != expect["mtime_ns"]):
            raise RepairError(f"{path} changed since it was planned (size {st.st_size} now, {expect['size']} "
                              "planned, or its mtime); not touched")
        tmp, out_fd = _new_file(opened.parent, opened.name)
        qtmp = qfd = None
        try:
            if repair == "quarantine":
                qtmp, qfd = _quarantine_file(opened, path, options, encoding)
                qout = os.fdopen(qfd, "wb", closefd=False)
                options = dataclasses.replace(options, quarantine_sink=lambda text: qout.write(text.encode("utf-8")))
            with os.fdopen(out_fd, "wb", closefd=False) as out:
                encoder = codecs.getincrementalencoder("utf-8" if repair == "normalize_encoding" else encoding)()
                steps, source, _ = run_chain(opened, [repair], options, encoding,
                                             sink=lambda text: out.write(encoder.encode(text)))
                out.write(encoder.encode("", final=True))
                out.flush()
            step = steps[0]
            if source["sha256"] != expect["sha256"]:
                raise RepairError(f"{path} changed since it was planned (its content hash differs); not touched")
            if step.output != {k: output[k] for k in ("size", "sha256")}:
                raise RepairError(f"{path}: the repair's result differs from its plan; not applied")
            _same_owner_mode(out_fd, st)
            os.fsync(out_fd)
            if qfd is not None:
                qout.flush()
                os.fsync(qfd)
            now = os.stat(opened.name, dir_fd=opened.parent, follow_symlinks=False)
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                raise RepairError(f"{path} changed while it was repaired; not touched")
            if qtmp:
                os.rename(qtmp, os.path.basename(quarantine_path(path)), src_dir_fd=opened.parent,
                          dst_dir_fd=opened.parent)
            os.rename(tmp, opened.name, src_dir_fd=opened.parent, dst_dir_fd=opened.parent)
        except BaseException:
            _discard(opened.parent, tmp, qtmp)
            raise
        finally:
            os.close(out_fd)
            if qfd is not None:
                os.close(qfd)
        return step
    finally:
        opened.close()


def _new_file(parent: int, name: str) -> tuple[str, int]:
    """A new, private file beside `name` (never an existing one, never through a symlink)."""
    tmp = f".{name}.zenctl-{secrets.token_hex(4)}"
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                        dir_fd=parent)


def _discard(parent: int, *names: str | None) -> None:
    for name in names:
        if name:
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass


def _same_owner_mode(fd: int, st: os.stat_result) -> None:
    if os.geteuid() == 0 or st.st_uid == os.geteuid():
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            pass
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after the chown, which clears setuid and setgid bits


def _quarantine_file(opened: Opened, path: str, options: Options, encoding: str) -> tuple[str, int]:
    """A new file beside the quarantine file holding what it held (or, when there is none, the dataset's header,
    UTF-8), for the removed rows to be appended to; (its temporary name, its descriptor). The caller renames it
    into place."""
    qname = os.path.basename(quarantine_path(path))
    try:
        qfd = os.open(qname, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=opened.parent)
    except FileNotFoundError:
        qfd = None
    except OSError as exc:
        raise RepairError(f"{quarantine_path(path)}: {exc.strerror or exc}; not following it") from None
    tmp, fd = _new_file(opened.parent, qname)
    try:
        _same_owner_mode(fd, opened.st)
        if qfd is None:
            if options.header_rows:
                _write_all(fd, _header_text(opened, options, encoding).encode("utf-8"))
            return tmp, fd
        qst = os.fstat(qfd)
        if not stat.S_ISREG(qst.st_mode) or qst.st_nlink != 1:
            raise RepairError(f"{quarantine_path(path)}: not a regular file with one name")
        while chunk := os.read(qfd, _CHUNK):
            _write_all(fd, chunk)
        return tmp, fd
    except BaseException:
        os.close(fd)
        _discard(opened.parent, tmp)
        raise
    finally:
        if qfd is not None:
            os.close(qfd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _header_text(opened: Opened, options: Options, encoding: str) -> str:
    os.lseek(opened.fd, 0, os.SEEK_SET)
    raw = _HashingRaw(opened.fd)
    text = io.TextIOWrapper(io.BufferedReader(raw, _CHUNK), encoding=encoding, errors="replace", newline="")
    try:
        lines = []
        for record in records(text, options.quote):
            lines.append(record)
            if len(lines) >= options.header_rows:
                break
        head = "".join(lines).lstrip("\ufeff")
        return head if head.endswith(("\n", "\r")) else head + "\n"
    finally:
        text.detach()


# --- tables ---------------------------------------------------------------------------------------------------

MAX_TABLE_CHANGES = 100_000  # rows one table repair may change: they are kept in the action's record for undo
_TEXT_TYPES = ("text", "char", "varchar", "character", "clob", "string", "")


def text_column(declared: str) -> bool:
    """A column whose values are text (SQLite affinity TEXT or none; PostgreSQL text, varchar, char)."""
    low = declared.lower()
    return not low or any(t and t in low for t in ("char", "text", "clob")) or low == "string"


def plan_table(header: list[str], rows, key_of, repair: str, fields: list, text_cols: set[str],
               nullable: set[str], missing_values: frozenset[str]) -> dict:
    """One repair over a table's rows: {"updates": [{key, column, old, new}], "deletes": [{key, row}],
    "changed_cells", "changed_rows", "removed_rows", "samples"}. Only text columns change (a typed column's
    values are typed already); a missing value becomes NULL where the column allows it."""
    by_name = {f.name: f for f in fields}
    updates, deletes, samples, seen = [], [], [], set()
    changed_rows = 0
    for number, row in enumerate(rows, start=2):
        key = key_of(row)
        if repair == "dedupe":
            digest = hashlib.blake2b(repr([_jsonable(v) for v in row]).encode("utf-8", "surrogatepass"),
                                     digest_size=12).digest()
            if digest in seen:
                deletes.append({"key": key, "row": [_jsonable(v) for v in row]})
                if len(samples) < SAMPLES:
                    samples.append({"row": number, "key": key, "before": _shown_row(row), "after": None})
            else:
                seen.add(digest)
            if len(deletes) > MAX_TABLE_CHANGES:
                raise RepairError(f"more than {MAX_TABLE_CHANGES} rows to change: too many to keep for undo")
            continue
        changed = []
        for column, value in zip(header, row):
            if column not in text_cols or not isinstance(value, str):
                continue
            fld = by_name.get(column)
            if repair == "missing_values":
                new = None if missing(value, fld, frozenset()) == "" and value != "" and column in nullable \
                    else value
            else:
                new = _TRANSFORMS[repair](value, fld, missing_values)
            if new != value:
                changed.append({"key": key, "column": column, "old": value, "new": new})
        if changed:
            changed_rows += 1
            updates += changed
            if len(samples) < SAMPLES:
                after = dict(zip(header, row))
                after.update({c["column"]: c["new"] for c in changed})
                samples.append({"row": number, "key": key, "before": _shown_row(row),
                                "after": _shown_row([after[h] for h in header])})
            if len(updates) > MAX_TABLE_CHANGES:
                raise RepairError(f"more than {MAX_TABLE_CHANGES} cells to change: too many to keep for undo")
    return {"updates": updates, "deletes": deletes, "changed_cells": len(updates), "changed_rows": changed_rows,
            "removed_rows": len(deletes), "samples": samples}


def _jsonable(value):
    if isinstance(value, (bytes, memoryview)):
        return {"$hex": bytes(value).hex()}
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return str(value)


def from_jsonable(value):
    if isinstance(value, dict) and "$hex" in value:
        return bytes.fromhex(value["$hex"])
    return value


def _shown_row(row) -> str:
    return ",".join("" if v is None else str(_jsonable(v)) for v in row)[:500]


def table_digest(changes: dict) -> str:
    """What a table repair's plan pins: the exact cells and rows it changes."""
    import json

    return hashlib.sha256(json.dumps([changes["updates"], changes["deletes"]], sort_keys=True,
                                     default=str).encode()).hexdigest()
