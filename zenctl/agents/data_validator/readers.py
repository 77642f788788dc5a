"""Streaming readers for data files: CSV/TSV (dialect sniffed or set, encoding detected), JSON Lines and JSON arrays,
one file or a glob/directory of them. Bounded memory: the file is read in blocks, never whole.

Rows come with frictionless's row numbers: every physical record counts (blank ones too), the header row(s) first,
so the first data row after one header row is 2. A file is read only up to the size it had when opened (a file that
grows during the run is validated as it was, with a warning); one that shrinks or cannot be read is a SourceError."""

from __future__ import annotations

import codecs
import csv
import glob
import io
import json
import os
from dataclasses import dataclass, field

BLOCK = 1 << 20            # bytes read at a time
SAMPLE = 64 * 1024         # bytes looked at to detect the encoding and the dialect
FIELD_LIMIT = 16 * 1024 * 1024
MAX_JSON_ITEM = 64 * 1024 * 1024
DATA_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".jsonl", ".ndjson", ".json")

csv.field_size_limit(FIELD_LIMIT)


class SourceError(Exception):
    """The file could not be read: one line naming the file. `code` is frictionless's error type."""

    def __init__(self, path: str, message: str, code: str = "source-error", row_number: int | None = None):
        self.path, self.message, self.code, self.row_number = str(path), message, code, row_number
        super().__init__(f"{path}: {message}")


@dataclass
class Dialect:
    """CSV settings; None means sniffed from the file."""

    delimiter: str | None = None
    quote_char: str = '"'
    double_quote: bool = True
    escape_char: str | None = None
    skip_initial_space: bool = False
    header_rows: list = field(default_factory=lambda: [1])
    header_join: str = " "

    def csv_kwargs(self) -> dict:
        return {"delimiter": self.delimiter or ",", "quotechar": self.quote_char, "doublequote": self.double_quote,
                "escapechar": self.escape_char, "skipinitialspace": self.skip_initial_space, "strict": False}


@dataclass
class SourceInfo:
    path: str
    format: str
    encoding: str = "utf-8"
    encoding_note: str | None = None
    dialect: Dialect = field(default_factory=Dialect)
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0


def detect_format(path: str) -> str:
    low = str(path).lower()
    for suffix, fmt in ((".tsv", "tsv"), (".tab", "tsv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json")):
        if low.endswith(suffix):
            return fmt
    return "csv"


def expand(target: str) -> list[str]:
    """A file -> [file]; a directory -> its data files; a glob -> the matching files (sorted)."""
    if os.path.isdir(target):
        return sorted(os.path.join(target, n) for n in os.listdir(target)
                      if n.lower().endswith(DATA_SUFFIXES) and os.path.isfile(os.path.join(target, n))
                      and n != "datapackage.json")
    if any(ch in target for ch in "*?["):
        return sorted(p for p in glob.glob(target, recursive=True) if os.path.isfile(p))
    return [target]


def detect_encoding(sample: bytes, at_eof: bool) -> tuple[str, str | None, int]:
    """(codec, note, BOM length). UTF-8 (BOM or not), UTF-16/32 by BOM, else Latin-1, said in the note."""
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                     (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if sample.startswith(bom):
            return enc, None, len(bom)
    # UTF-16 without a BOM: every other byte NUL in ASCII-heavy text
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4 and sample[0::2].count(0) == 0:
        return "utf-16-le", None, 0
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4 and sample[1::2].count(0) == 0:
        return "utf-16-be", None, 0
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=at_eof)
        return "utf-8", None, 0
    except UnicodeDecodeError as exc:
        return "latin-1", f"not UTF-8 (byte 0x{sample[exc.start]:02x} at offset {exc.start}): read as Latin-1", 0


class _Feed:
    """Decoded text in blocks that end at a line end, plus line-by-line reading that can give back the rest."""

    def __init__(self, blocks):
        self._blocks = blocks
        self._sio = None

    def next_block(self) -> str | None:
        if self._sio is not None:
            rest = self._sio.read()
            self._sio = None
            if rest:
                return rest
        return next(self._blocks, None)

    def readline(self) -> str:
        while True:
            if self._sio is not None:
                line = self._sio.readline()
                if line:
                    return line
                self._sio = None
            block = next(self._blocks, None)
            if block is None:
                return ""
            self._sio = io.StringIO(block, newline="")

    def pushback(self, text: str) -> None:
        if text:
            rest = self._sio.read() if self._sio is not None else ""
            self._sio = io.StringIO(text + rest, newline="")


class TableReader:
    """One data file, streamed. `header`, `rows()` -> (rowNumber, cells); CSV cells are strings, JSON cells the
    parsed values. `text_blocks()` is the CSV fast path's input (decoded text after the header)."""

    def __init__(self, path, *, format: str | None = None, encoding: str | None = None,
                 dialect: Dialect | None = None, hashes: bool = False):
        self.path = str(path)
        self.format = format or detect_format(self.path)
        self.dialect = dialect or Dialect()
        if self.format == "tsv" and self.dialect.delimiter is None:
            self.dialect.delimiter = "\t"
        self._encoding = encoding
        self._hashes = hashes
        self.header: list = []
        self.header_row_numbers: list[int] = []
        self.warnings: list[str] = []
        self.bytes_read = 0
        self.rows_read = 0
        self._fh = None
        self._md5 = self._sha256 = None
        self._open()

    # -- opening ---------------------------------------------------------------------------------------------
    def _open(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise SourceError(self.path, "no such file", "scheme-error") from None
        except OSError as exc:
            raise SourceError(self.path, exc.strerror or str(exc), "scheme-error") from None
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            raise SourceError(self.path, "not a regular file", "scheme-error")
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise SourceError(self.path, exc.strerror or str(exc), "scheme-error") from None
        fst = os.fstat(self._fh.fileno())
        self.info = SourceInfo(self.path, self.format, dialect=self.dialect, size=fst.st_size,
                               mtime_ns=fst.st_mtime_ns, inode=fst.st_ino)
        self._limit = fst.st_size
        if self._hashes:
            import hashlib

            self._md5, self._sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        sample = self._read_raw(SAMPLE)
        self._sample_raw = sample
        if self._encoding:
            enc, note, bom = self._encoding, None, 0
            if enc.lower().replace("_", "-") in ("utf-8", "utf8") and sample.startswith(codecs.BOM_UTF8):
                bom = 3
            try:
                codecs.lookup(enc)
            except LookupError:
                raise SourceError(self.path, f"unknown encoding {enc!r}", "encoding-error") from None
        else:
            enc, note, bom = detect_encoding(sample, len(sample) < SAMPLE)
        self.info.encoding = enc + ("-sig" if bom and enc == "utf-8" else "")
        self.info.encoding_note = note
        if note:
            self.warnings.append(note)
        self._decoder = codecs.getincrementaldecoder(enc)("strict")
        self._codec = enc
        self._non_ascii = False
        self._raw_mode = False
        self._pending_raw = sample[bom:]
        self._feed = _Feed(self._decoded_blocks())
        if self.format in ("csv", "tsv"):
            self._open_csv()
        else:
            self._open_json()

    def _read_raw(self, n: int) -> bytes:
        n = min(n, self._limit - self.bytes_read)
        if n <= 0:
            return b""
        try:
            data = self._fh.read(n)
        except OSError as exc:
            raise SourceError(self.path, f"read failed: {exc.strerror or exc}") from None
        if len(data) < n and self.bytes_read + len(data) < self._limit:
            raise SourceError(self.path, f"the file shrank during the run (expected {self._limit} bytes, "
                                         f"got {self.bytes_read + len(data)})")
        self.bytes_read += len(data)
        if self._md5 is not None:
            self._hash(data)
        return data

    def _hash(self, data: bytes) -> None:
        """md5 and sha256 of what was read (frictionless's stats), in a helper thread for large blocks: hashlib
        releases the GIL, so it runs beside the parsing."""
        if len(data) < (1 << 20):
            self._hash_wait()
            self._md5.update(data)
            self._sha256.update(data)
            return
        import threading

        self._hash_wait()

        def work():
            self._md5.update(data)
            self._sha256.update(data)

        self._hasher = threading.Thread(target=work, daemon=True)
        self._hasher.start()

    def _hash_wait(self) -> None:
        t = getattr(self, "_hasher", None)
        if t is not None:
            t.join()
            self._hasher = None

    def _decode(self, data: bytes, final: bool) -> str:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            if self._codec == "utf-8" and not self._non_ascii:
                # all bytes before were ASCII, so Latin-1 reads them the same: switch and say so
                note = f"not UTF-8 (byte 0x{data[exc.start]:02x} near offset {self.bytes_read}): read as Latin-1"
                self.warnings.append(note)
                self.info.encoding, self.info.encoding_note = "latin-1", note
                self._codec = "latin-1"
                self._decoder = codecs.getincrementaldecoder("latin-1")()
                return self._decoder.decode(data, final)
            raise SourceError(self.path, f'"{self._codec}" cannot decode byte 0x{data[exc.start]:02x} near offset '
                                         f"{self.bytes_read}: {exc.reason}", "encoding-error") from None
        if not self._non_ascii and self._codec == "utf-8" and not text.isascii():
            self._non_ascii = True
        return text

    def _decoded_blocks(self):
        """Decoded text blocks, each ending after a newline (the last may not)."""
        self._carry = ""
        data = self._pending_raw
        self._pending_raw = b""
        while not self._raw_mode:
            if not data:
                data = self._read_raw(BLOCK)
            final = not data
            text = self._carry + self._decode(data, final)
            data = b""
            if final:
                self._carry = ""
                if text:
                    yield text
                return
            cut = text.rfind("\n")
            if cut < 0:
                self._carry = text
                if len(text) > FIELD_LIMIT * 4:
                    raise SourceError(self.path, f"a line longer than {FIELD_LIMIT * 4} characters")
                continue
            self._carry = text[cut + 1:]
            yield text[:cut + 1]

    def raw_blocks(self, size: int):
        """The rest of a UTF-8 file as byte blocks that end after a newline (the last may not), for the fast path.
        What was decoded but not consumed comes first, encoded back. Text reading stops here."""
        head = ""
        if self._feed._sio is not None:
            head = self._feed._sio.read()
            self._feed._sio = None
        head += getattr(self, "_carry", "")
        self._carry = ""
        pending = head.encode("utf-8") + self._decoder.getstate()[0] + self._pending_raw
        self._pending_raw = b""
        self._decoder.reset()
        self._raw_mode = True
        while True:
            data = self._read_raw(size)
            if not data:
                if pending:
                    yield pending
                return
            buf = pending + data if pending else data
            cut = buf.rfind(b"\n")
            if cut < 0:
                pending = buf
                if len(buf) > FIELD_LIMIT * 4:
                    raise SourceError(self.path, f"a line longer than {FIELD_LIMIT * 4} characters")
                continue
            pending = buf[cut + 1:]
            yield buf[:cut + 1] if cut + 1 < len(buf) else buf

    def decode_block(self, data: bytes) -> str:
        """Text of a raw block (cut after a newline), with the reader's encoding rules (the Latin-1 switch)."""
        return self._decode(data, False)

    def note_non_ascii(self) -> None:
        self._non_ascii = True

    @property
    def codec(self) -> str:
        return self._codec

    # -- CSV -------------------------------------------------------------------------------------------------
    def _open_csv(self):
        d = self.dialect
        if d.delimiter is None:
            d.delimiter = sniff_delimiter(self._sample_text())
        self._csv_kwargs = d.csv_kwargs()
        self._reader = csv.reader(iter(self._feed.readline, ""), **self._csv_kwargs)
        self._row_number = 0
        rows = sorted(set(d.header_rows))
        if rows:
            headers = []
            while self._row_number < rows[-1]:
                rec = self._next_record()
                if rec is None:
                    break
                if self._row_number in rows:
                    headers.append(rec)
            self.header_row_numbers = rows[:len(headers)]
            if len(headers) == 1:
                self.header = list(headers[0])
            elif headers:
                width = max(len(h) for h in headers)
                self.header = [d.header_join.join(h[i] for h in headers if i < len(h) and h[i]) for i in range(width)]

    def _sample_text(self) -> str:
        raw = self._sample_raw
        try:
            return codecs.decode(raw[: len(raw) - 4] if len(raw) == SAMPLE else raw, self._codec, "replace")
        except LookupError:
            return ""

    def _next_record(self):
        try:
            rec = next(self._reader, None)
        except csv.Error as exc:
            raise SourceError(self.path, f"CSV parse error at row {self._row_number + 1}: {exc}",
                              row_number=self._row_number + 1) from None
        if rec is not None:
            self._row_number += 1
        return rec

    def rows(self):
        """(rowNumber, cells) for each data record; CSV cells are strings."""
        if self.format in ("csv", "tsv"):
            while True:
                rec = self._next_record()
                if rec is None:
                    break
                self.rows_read += 1
                yield self._row_number, rec
        else:
            yield from self._json_rows
        self.finish()

    # the CSV fast path's access: decoded text blocks after the header, lines, and the record counter
    @property
    def row_number(self) -> int:
        return self._row_number

    def csv_kwargs(self) -> dict:
        return dict(self._csv_kwargs)

    @property
    def feed(self) -> _Feed:
        return self._feed

    # -- JSON ------------------------------------------------------------------------------------------------
    def _open_json(self):
        items = self._json_items_lines() if self.format == "jsonl" else self._json_items_array()
        first = next(items, None)
        self._row_number = 1
        self.header_row_numbers = [1]
        pending = []
        if isinstance(first, list):
            self.header = [str(c) for c in first]
        elif isinstance(first, dict):
            self.header = list(first)
            pending = [first]
        elif first is not None:
            raise SourceError(self.path, "JSON rows must be objects or arrays", "source-error")

        def gen():
            n = 1
            for item in _chain(pending, items):
                n += 1
                self.rows_read += 1
                self._row_number = n
                if isinstance(item, dict):  # keys not in the header are ignored, as frictionless does
                    yield n, [item.get(k) for k in self.header]
                elif isinstance(item, list):
                    yield n, item
                else:
                    yield n, [item]

        self._json_rows = gen()

    def _json_items_lines(self):
        n = 0
        while True:
            line = self._feed.readline()
            if not line:
                return
            n += 1
            if not line.strip():
                if self._feed.readline() == "" and line in ("\n", "\r\n"):
                    return  # a last empty line
                raise SourceError(self.path, f"line {n}: not valid JSON: a blank line", "source-error")
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(self.path, f"line {n}: not valid JSON: {exc.msg}", "source-error") from None
            except RecursionError:
                raise SourceError(self.path, f"line {n}: JSON nested too deeply", "source-error") from None

    def _json_items_array(self):
        dec = json.JSONDecoder()
        buf, pos, started = "", 0, False

        def more():
            nonlocal buf, pos
            block = self._feed.next_block()
            if block is None:
                return False
            buf = buf[pos:] + block
            pos = 0
            if len(buf) > MAX_JSON_ITEM:
                raise SourceError(self.path, f"a JSON item larger than {MAX_JSON_ITEM} bytes")
            return True

        ws = " \t\r\n"
        while True:
            while pos < len(buf) and buf[pos] in ws:
                pos += 1
            if pos >= len(buf):
                if not more():
                    if not started:
                        raise SourceError(self.path, "empty JSON file")
                    raise SourceError(self.path, "the JSON array is not closed (truncated file?)")
                continue
            ch = buf[pos]
            if not started:
                if ch != "[":
                    raise SourceError(self.path, "not a JSON array of rows")
                started = True
                pos += 1
                continue
            if ch == "]":
                return
            if ch == ",":
                pos += 1
                continue
            try:
                item, end = dec.raw_decode(buf, pos)
            except RecursionError:
                raise SourceError(self.path, "JSON nested too deeply") from None
            except json.JSONDecodeError as exc:
                if more():
                    continue
                raise SourceError(self.path, f"not valid JSON at character {exc.pos}: {exc.msg}") from None
            if end == len(buf) and more():  # a number may continue in the next block
                continue
            pos = end
            yield item

    # -- end -------------------------------------------------------------------------------------------------
    def finish(self) -> None:
        """After the last row: note a file that grew, shrank, vanished or was replaced during the run (once)."""
        if self._fh is None or getattr(self, "_finished", False):
            return
        self._finished = True
        try:
            now = os.stat(self.path)
        except OSError:
            self.warnings.append("the file was removed or renamed during the run (validated what was open)")
            return
        if now.st_ino != self.info.inode:
            self.warnings.append("the file was replaced during the run (validated the file as opened)")
        elif now.st_size > self.info.size:
            self.warnings.append(f"the file grew by {now.st_size - self.info.size} bytes during the run "
                                 f"(validated the first {self.info.size} bytes)")

    def digests(self) -> dict:
        if self._md5 is None:
            return {}
        self._hash_wait()
        return {"md5": self._md5.hexdigest(), "sha256": self._sha256.hexdigest()}

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _chain(first, rest):
    yield from first
    yield from rest


def sniff_delimiter(sample: str) -> str:
    """The delimiter (of , ; tab |) whose count is the same on most sampled lines, quotes ignored."""
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) > 1:
        lines = lines[:-1] if not sample.endswith(("\n", "\r")) else lines
    best, best_score = ",", (0, 0)
    for cand in (",", ";", "\t", "|"):
        counts = []
        for ln in lines:
            n, inq = 0, False
            for ch in ln:
                if ch == '"':
                    inq = not inq
                elif ch == cand and not inq:
                    n += 1
            counts.append(n)
        if not counts or max(counts) == 0:
            continue
        mode = max(set(counts), key=counts.count)
        if mode == 0:
            continue
        score = (counts.count(mode), mode)
        if score > best_score:
            best, best_score = cand, score
    return best


def open_table(path, **kw) -> TableReader:
    return TableReader(path, **kw)
