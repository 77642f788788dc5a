"""The CSV fast path: whole blocks of rows checked column-wise with pyarrow, the exact engine run only on the rows
that fail, so errors, positions and order are the exact engine's.

A block (several MB of decoded text, cut at line ends) is "simple" when each line is one record: no stray CR, and
every line with a quote character is well-formed RFC 4180 (fields either unquoted without quotes, or quoted with
doubled inner quotes), which both Python's csv module and pyarrow read the same way. Other blocks (a quoted newline,
a stray quote) go through Python's csv reader, borrowing lines past the block's end when a record spans it.

In a simple block a row is handed to the exact engine when its field count differs from the schema's, it is blank,
or a column check says one of its cells may fail. Column checks only say "certainly fine" when they are sure:
conservative patterns (a plain integer, a plain decimal, a round-tripped ISO date), otherwise the distinct values are
checked once with the exact cast and constraints (cached) and the rows holding a failing value are flagged."""

from __future__ import annotations

import csv
import io
import re

BLOCK_CHARS = 1 << 20
SUB_BLOCK = 64 << 10
CACHE_MAX = 500_000
# blocks checked column-wise / read by the exact reader, and why (for tests and the bench)
STATS: dict = {}


def _count(key: str) -> None:
    STATS[key] = STATS.get(key, 0) + 1
DISTINCT_MAX = 20_000

_INT_RE = r"^-?[0-9]{1,18}$"
_NUM_RE = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
_YEAR_RE = r"^[0-9]{4}$"


def usable(engine, reader) -> bool:
    """The fast path handles the usual dialects: one-character delimiter and quote, doubled quotes, no escape."""
    kw = reader.csv_kwargs()
    d, q = kw["delimiter"], kw["quotechar"]
    if kw.get("escapechar") or kw.get("skipinitialspace") or not kw.get("doublequote", True):
        return False
    if len(d) != 1 or len(q or "") != 1 or d in "\r\n" or q in "\r\n" or d == q:
        return False
    return engine.nf > 0


class _ColumnCheck:
    """For one field: which cells of a block are certainly fine, and the exact verdict for the others."""

    def __init__(self, field, missing: set, required: bool):
        self.f = field
        self.missing = sorted(missing)
        self.missing_set = set(missing)
        self.required = required
        self.cache: dict = {}
        t, c = field.type, field.constraints
        vec = {k for k in c if k not in ("required", "unique")}
        self.pattern = None
        self.roundtrip = None
        if t == "string" and field.format == "default":
            self.pattern = ""            # every string is fine
        elif t == "integer" and not field.group_char and field.bare_number:
            self.pattern = _INT_RE
        elif t == "number" and not field.group_char and field.decimal_char == "." and field.bare_number:
            self.pattern = _NUM_RE
        elif t == "date" and field.format in ("default", None):
            self.pattern, self.roundtrip = _DATE_RE, "%Y-%m-%d"
        elif t == "datetime" and field.format in ("default", None):
            self.pattern, self.roundtrip = _DATETIME_RE, "%Y-%m-%dT%H:%M:%S"
        elif t == "year":
            self.pattern = _YEAR_RE
        elif t == "boolean":
            self.pattern = None
            self.bool_values = list(field.true_values) + list(field.false_values)
        elif t == "any":
            self.pattern = ""
        self.fast_cast = t if t in ("integer", "number", "date") and self.pattern else None
        if t == "date" and field.format not in ("default", None):
            self.fast_cast = None
        self.placeholder = {"integer": "0", "number": "0", "date": "2000-01-01"}.get(t, "")
        # constraints checked vectorized: lengths on strings; the rest by the exact check on distinct values
        self.lengths = t == "string" and vec and vec <= {"minLength", "maxLength"}
        self.python_constraints = bool(vec) and not self.lengths
        self.min_len = c.get("minLength")
        self.max_len = c.get("maxLength")

    def bad_mask(self, col, pa, pc):
        """A boolean array: True where the cell may be an error (the exact engine decides)."""
        if len(self.missing) == 1:
            is_missing = pc.equal(col, self.missing[0])
        elif self.missing:
            is_missing = pc.is_in(col, value_set=pa.array(self.missing, pa.string()))
        else:
            is_missing = pa.array([False] * len(col))
        sure = None
        cast_type = {"integer": pa.int64(), "number": pa.float64(), "date": pa.date32()}.get(self.fast_cast)
        if cast_type is not None:
            try:
                target = pc.if_else(is_missing, self.placeholder, col) if pc.any(is_missing).as_py() else col
                pc.cast(target, cast_type)
                sure = pa.scalar(True)     # every non-missing cell reads: nothing unknown
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                sure = None
        if sure is None and self.f.type not in ("string", "any") or self.python_constraints:
            # few distinct values (codes, dates, flags): the exact check on each distinct value decides
            distinct = pc.unique(col)
            if len(distinct) <= DISTINCT_MAX:
                failing = [v for v in distinct.to_pylist() if v not in self.missing_set and not self._ok(v)]
                bad = pc.is_in(col, value_set=pa.array(failing, pa.string())) if failing else None
                if self.required:
                    bad = is_missing if bad is None else pc.or_(bad, is_missing)
                return bad, is_missing
        if sure is not None:
            pass
        elif self.f.type == "boolean":
            sure = pc.is_in(col, value_set=pa.array(self.bool_values, pa.string()))
        elif self.pattern == "":
            sure = None
        elif self.pattern:
            sure = pc.match_substring_regex(col, self.pattern)
            if self.roundtrip:
                head = pc.utf8_slice_codeunits(col, 0, 19) if self.f.type == "datetime" else col
                ts = pc.strptime(head, format=self.roundtrip, unit="s", error_is_null=True)
                back = pc.strftime(ts, format=self.roundtrip)
                sure = pc.and_kleene(sure, pc.fill_null(pc.equal(back, head), False))
        else:
            sure = pa.array([False] * len(col))
        if isinstance(sure, pa.Scalar):
            sure = None if not self.lengths else pa.array([True] * len(col))
        if self.lengths:
            n = pc.utf8_length(col)
            ok = None
            if self.min_len is not None:
                ok = pc.greater_equal(n, self.min_len)
            if self.max_len is not None:
                m = pc.less_equal(n, self.max_len)
                ok = m if ok is None else pc.and_(ok, m)
            sure = ok if sure is None else pc.and_(sure, ok)
        if self.python_constraints:
            sure = pa.array([False] * len(col))
        if sure is None:
            unknown = None
        else:
            unknown = pc.and_(pc.invert(sure), pc.invert(is_missing))
        bad = None
        if unknown is not None and pc.any(unknown).as_py():
            values = pc.unique(pc.filter(col, unknown)).to_pylist()
            failing = [v for v in values if not self._ok(v)]
            if failing:
                bad = pc.and_(unknown, pc.is_in(col, value_set=pa.array(failing, pa.string())))
        if self.required:
            bad = is_missing if bad is None else pc.or_(bad, is_missing)
        return bad, is_missing

    def _ok(self, v: str) -> bool:
        r = self.cache.get(v)
        if r is None:
            value, note = self.f.cast(v)
            r = note is None and not (self.f.checks and self.f.check(value, v))
            if len(self.cache) >= CACHE_MAX:
                self.cache.clear()
            self.cache[v] = r
        return r


def _key_values(col, field, is_missing, pa, pc) -> list:
    """The typed values of a column as the exact engine computes them (None where missing or not castable)."""
    if field.type in ("integer", "year"):
        try:
            ints = pc.cast(pc.if_else(is_missing, None, col), pa.int64(), safe=True)
            return ints.to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if field.type in ("string", "any"):
        return pc.if_else(is_missing, None, col).to_pylist()
    out = []
    cast = field.cast
    from .schema import hashable as _hashable

    for v, m in zip(col.to_pylist(), is_missing.to_pylist()):
        out.append(None if m else _hashable(cast(v)[0]))
    return out


def _blocks(reader, size: int):
    """Byte blocks (UTF-8, cut after a newline) of the rest of the file: raw for UTF-8 files, re-encoded text for
    the others (Latin-1, UTF-16...)."""
    if reader.codec == "utf-8":
        yield from reader.raw_blocks(size)
        return
    feed = reader.feed
    pending, total = [], 0
    while True:
        block = feed.next_block()
        if block is not None:
            pending.append(block)
            total += len(block)
            if total < size:
                continue
        if pending:
            yield "".join(pending).encode("utf-8")
            pending, total = [], 0
        if block is None:
            return


def run(engine, reader, progress=None) -> None:
    """Validate the rest of the reader's CSV rows into engine's task (after the header and buffered rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    kw = reader.csv_kwargs()
    delim, quote = kw["delimiter"], kw["quotechar"]
    raw = reader.codec == "utf-8"
    nf = engine.nf
    fields = engine.fields
    checks = [_ColumnCheck(f, engine.field_missing[i], f.required) for i, f in enumerate(fields)]
    key_fields = sorted({i for i, _ in engine.unique} | set(engine.pk) | {i for idx, _, _ in engine.fks for i in idx})
    all_missing_values = engine.missing
    rn = reader.row_number
    qb = quote.encode("utf-8")
    rx_d, rx_q = re.escape(delim), re.escape(quote)
    field_re = f"(?:[^{rx_q}{rx_d}\\r]*|{rx_q}(?:[^{rx_q}]|{rx_q}{rx_q})*{rx_q})"
    well_formed = f"^{field_re}(?:{rx_d}{field_re})*$"
    # the width is the schema's (named columns): pyarrow must not take it from a block's first row
    read_opts = pacsv.ReadOptions(column_names=[f"f{i}" for i in range(nf)], use_threads=False, block_size=64 << 20)
    conv_opts = pacsv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(nf)},
                                     strings_can_be_null=False, quoted_strings_can_be_null=False)
    source = _blocks(reader, BLOCK_CHARS)
    pushed: list[bytes] = []

    def next_block():
        if pushed:
            return pushed.pop()
        return next(source, None)

    def text_of(b: bytes) -> str:
        return reader.decode_block(b) if raw else b.decode("utf-8")

    def parse_line(line: str) -> list:
        if line == "":
            return []
        return next(csv.reader([line], **kw), [])

    def whole_record(line: str):
        """The line's cells if Python's csv reads it as one whole record, else None (a quote left open)."""
        taken = 0

        def gen():
            nonlocal taken
            taken += 1
            yield line + "\n"
            taken += 1
            yield "\n"

        try:
            rec = next(csv.reader(gen(), **kw), [])
        except csv.Error:
            return None
        return rec if taken == 1 else None

    def exact_block(b: bytes) -> None:
        """Python's csv reader over the block, borrowing lines from the next block while a record is open."""
        nonlocal rn
        sio = io.StringIO(text_of(b), newline="")
        state = [0, 0]  # lines yielded, lines at the end of the last record

        def gen():
            for line in sio:
                state[0] += 1
                yield line
            while state[0] != state[1]:
                nxt = next_block()
                if nxt is None:
                    return
                cut = nxt.find(b"\n")
                if cut < 0 or cut + 1 == len(nxt):
                    head = nxt
                else:
                    head = nxt[:cut + 1]
                    pushed.append(nxt[cut + 1:])
                for line in io.StringIO(text_of(head), newline=""):
                    state[0] += 1
                    yield line

        try:
            for rec in csv.reader(gen(), **kw):
                state[1] = state[0]
                rn += 1
                reader.rows_read += 1
                engine.row(rn, rec)
        except csv.Error as exc:
            from .readers import SourceError

            raise SourceError(reader.path, f"CSV parse error at row {rn + 1}: {exc}", row_number=rn + 1) from None

    def simple_block(b: bytes) -> bool:
        """Check a block whose records are its lines; False when it is not such a block (the caller then reads it
        with the exact reader)."""
        nonlocal rn
        if raw and reader.codec != "utf-8":  # the reader switched to Latin-1 mid-file: give pyarrow UTF-8
            b = reader.decode_block(b).encode("utf-8")
        if b"\r" in b:
            if b.count(b"\r") != b.count(b"\r\n"):
                _count("exact:cr")
                return False
            b = b.replace(b"\r\n", b"\n")
        if not b:
            return True
        n = b.count(b"\n") + (0 if b.endswith(b"\n") else 1)
        rows_text: dict = {}  # line index -> its cells, for the lines the parser does not return
        skipped = []
        if b.startswith(b"\n"):
            skipped.append(0)
        pos = b.find(b"\n\n")
        last_pos, last_line = 0, 0
        while pos >= 0:
            last_line += b.count(b"\n", last_pos, pos + 1)
            last_pos = pos + 1
            skipped.append(last_line)
            pos = b.find(b"\n\n", pos + 1)
        for j in skipped:
            rows_text[j] = []
        invalid = []

        def handler(row):
            invalid.append(row.text)
            return "skip"

        has_quote = qb in b
        try:
            table = pacsv.read_csv(pa.BufferReader(b), read_options=read_opts, convert_options=conv_opts,
                                   parse_options=pacsv.ParseOptions(delimiter=delim, quote_char=quote,
                                                                    double_quote=True, newlines_in_values=has_quote,
                                                                    ignore_empty_lines=True,
                                                                    invalid_row_handler=handler))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            _count("exact:utf8-or-parse")
            return False  # not UTF-8, or a parse the exact reader must judge
        if invalid:
            if has_quote:
                _count("exact:ragged-with-quotes")
                return False
            start = 0
            last_pos, last_line = 0, 0
            for t in invalid:
                tb = t.encode("utf-8")
                if start == 0 and (b.startswith(tb + b"\n") or b == tb):
                    p = 0
                else:
                    p = b.find(b"\n" + tb + b"\n", max(0, start - 1))
                    if p < 0:
                        if not b.endswith(b"\n") and b.endswith(b"\n" + tb):
                            p = len(b) - len(tb) - 1
                        else:
                            _count("exact:ragged-not-found")
                            return False
                    p += 1
                last_line += b.count(b"\n", last_pos, p)
                last_pos = p
                j = last_line
                skipped.append(j)
                rows_text[j] = parse_line(t)
                start = p + len(tb)
            skipped.sort()
        ng = table.num_rows
        if ng + len(skipped) != n or len(set(skipped)) != len(skipped) or (ng and table.num_columns != nf):
            _count("exact:count-mismatch")
            return False
        if raw and not b.isascii():
            reader.note_non_ascii()
        if skipped:
            import bisect

            def line_of(g):  # the g-th parsed row's line index
                lo = g
                while True:
                    k = bisect.bisect_right(skipped, lo)
                    if g + k == lo:
                        return lo
                    lo = g + k
        else:
            def line_of(g):
                return g
        bad: dict = dict(rows_text)  # line index -> cells (None: take them from the parsed table)
        if has_quote:
            # lines in plain RFC 4180 form (fields unquoted without quotes, or quoted with doubled inner quotes)
            # read the same in pyarrow and Python's csv; any other line with a quote is read again by Python's csv
            # (the exact reader), must close its quotes, and goes to the exact engine with those cells
            lines = pc.split_pattern(pa.array([b], pa.binary()), b"\n").values
            if b.endswith(b"\n"):
                lines = lines.slice(0, len(lines) - 1)
            plain = pc.match_substring_regex(lines, well_formed)
            if not pc.all(plain).as_py():
                for j in pc.indices_nonzero(pc.invert(plain)).to_pylist():
                    if j in bad:
                        continue
                    cells = whole_record(lines[j].as_py().decode("utf-8"))
                    if cells is None:  # a quoted field runs past the line: not a block of one-line records
                        _count("exact:open-quote")
                        return False
                    bad[j] = cells
        cols = []
        missing_masks = []
        if ng:
            cols = [table.column(i).combine_chunks() for i in range(nf)]
            gbad = None
            all_missing = None
            for i, chk in enumerate(checks):
                cb, is_missing = chk.bad_mask(cols[i], pa, pc)
                missing_masks.append(is_missing)
                if cb is not None:
                    gbad = cb if gbad is None else pc.or_(gbad, cb)
                if all_missing is None or pc.any(all_missing).as_py():
                    if set(engine.field_missing[i]) == all_missing_values:
                        m = is_missing
                    else:
                        m = pc.is_in(cols[i], value_set=pa.array(sorted(all_missing_values), pa.string()))
                    all_missing = m if all_missing is None else pc.and_(all_missing, m)
            if all_missing is not None:
                gbad = all_missing if gbad is None else pc.or_(gbad, all_missing)
            if gbad is not None and pc.any(gbad).as_py():
                for g in pc.indices_nonzero(gbad).to_pylist():
                    j = line_of(g)
                    if j not in bad:
                        bad[j] = [cols[i][g].as_py() for i in range(nf)]
        _count("fast")
        if not engine.has_checks:
            for j in sorted(bad):
                engine.row(rn + 1 + j, bad[j])
            engine.rows += n - len(bad)
            rn += n
            reader.rows_read += n
            return True
        # keys: walk every row in order (clean rows register their keys; the others go to the engine)
        key_cols = {i: _key_values(cols[i], fields[i], missing_masks[i], pa, pc) for i in key_fields} if ng else {}
        skip_set = set(skipped)
        g = 0
        for j in range(n):
            row_number = rn + 1 + j
            if j in skip_set:
                engine.row(row_number, bad[j])
                continue
            if j in bad:
                engine.row(row_number, bad[j])
            elif _clean_keys(engine, key_cols, g, row_number):
                engine.rows += 1
            else:
                engine.row(row_number, [cols[i][g].as_py() for i in range(nf)])
            g += 1
        rn += n
        reader.rows_read += n
        return True

    while True:
        block = next_block()
        if block is None:
            break
        if not simple_block(block):
            if len(block) > 2 * SUB_BLOCK:
                # retry in small pieces: only the pieces around the odd rows go to the exact reader (each piece
                # starts at a record boundary: the previous one either was all whole lines or was read exactly)
                parts, start = [], 0
                while start < len(block):
                    end = block.find(b"\n", start + SUB_BLOCK)
                    end = len(block) - 1 if end < 0 else end
                    parts.append(block[start:end + 1])
                    start = end + 1
                pushed.extend(reversed(parts))
                _count("split")
                continue
            exact_block(block)
        if progress is not None:
            progress(reader.bytes_read, reader.info.size)
    reader._row_number = rn


def _clean_keys(engine, key_cols, g, row_number) -> bool:
    """Register a clean row's unique/primary keys; False if the row breaks one (the engine then reports it)."""
    for i, _ in engine.unique:
        v = key_cols[i][g]
        if v is not None and v in engine.unique_seen[i]:
            return False
    if engine.pk:
        key = tuple(key_cols[i][g] for i in engine.pk)
        if all(v is None for v in key) or key in engine.pk_seen:
            return False
    for idx, _, lookup in engine.fks:
        key = tuple(key_cols[i][g] for i in idx)
        if not all(v is None for v in key) and key not in lookup:
            return False
    for i, _ in engine.unique:
        v = key_cols[i][g]
        if v is not None:
            engine.unique_seen[i][v] = row_number
    if engine.pk:
        engine.pk_seen[tuple(key_cols[i][g] for i in engine.pk)] = row_number
    return True
