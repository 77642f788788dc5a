"""Quality checks over time: a profile of each dataset gathered in the validation's single pass (null counts,
numeric mean and spread, ranges, distinct counts, duplicates by key, the newest timestamp), judged against the
configured checks and against the band the dataset's own earlier runs set (drift).

The drift band, per statistic (the row count, and each numeric field's mean and standard deviation): from the
last `history` runs (at least `min_runs`), the median m and the median absolute deviation MAD; a value is
outside when it differs from m by more than max(sigmas x 1.4826 x MAD, 1% of |m|, 1e-9). 1.4826 x MAD estimates
the standard deviation of normally distributed values without letting a few wild runs widen the band; the 1%
floor keeps a perfectly steady history from flagging a change in the last digit. A run's profile joins the
history after it was judged, so one bad run does not hide itself.

Also here: SQLite `PRAGMA quick_check` (or `integrity_check`) and `foreign_key_check`, PostgreSQL rows that
violate a constraint declared NOT VALID, and orphans of a foreign key declared NOT VALID or only in the schema.
"""

import hashlib
import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal

MAX_DISTINCT = 1_000_000  # distinct values counted exactly up to this many per field, then "at least"
MAX_KEYS = 20_000_000


@dataclass
class Numeric:
    """Welford's running mean and variance, with min and max."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        self.low, self.high = min(self.low, x), max(self.high, x)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0


@dataclass
class Profile:
    """What one pass over a dataset's rows learned (`add` each row's cells, as read)."""

    header: list[str]
    fields: list  # schema fields by position
    missing_values: frozenset
    distinct_of: set[str] = field(default_factory=set)
    keys: list[list[str]] = field(default_factory=list)
    timestamp_field: str | None = None
    rows: int = 0
    numeric: dict[str, Numeric] = field(default_factory=dict)
    distinct: dict[str, set] = field(default_factory=dict)
    distinct_capped: set[str] = field(default_factory=set)
    key_seen: list[set] = field(default_factory=list)
    key_duplicates: list[int] = field(default_factory=list)
    key_examples: list[list] = field(default_factory=list)
    newest: datetime | None = None

    def __post_init__(self):
        self.names = [f.name for f in self.fields] or list(self.header)
        self.null_counts = [0] * len(self.names)
        self.missing_of = [frozenset(f.missing_values) if f.missing_values is not None else self.missing_values
                           for f in self.fields] or [self.missing_values] * len(self.names)
        self.numeric_index = [i for i, f in enumerate(self.fields) if f.type in ("integer", "number", "year")]
        self.numeric = {self.names[i]: Numeric() for i in self.numeric_index}
        self.numeric_of = [(i, self.numeric[self.names[i]], self.fields[i]) for i in self.numeric_index]
        self.distinct = {n: set() for n in self.distinct_of if n in self.names}
        self.distinct_of_index = [(self.names.index(n), n, seen) for n, seen in self.distinct.items()]
        self.key_index = [[self.names.index(n) for n in key] for key in self.keys if all(n in self.names for n in key)]
        self.key_seen = [set() for _ in self.key_index]
        self.key_duplicates = [0] * len(self.key_index)
        self.key_examples = [[] for _ in self.key_index]
        self.ts_index = self.names.index(self.timestamp_field) if self.timestamp_field in self.names else None

    @property
    def nulls(self) -> dict[str, int]:
        return dict(zip(self.names, self.null_counts))

    def _value(self, index: int, cell):
        """The typed value of a cell, None when missing or not castable."""
        if cell is None:
            return None
        if isinstance(cell, str):
            if cell in self.missing_of[index]:
                return None
            if index >= len(self.fields):
                return cell
            value, note = self.fields[index].cast(cell)
            return None if note else value
        return cell

    def add(self, cells: list) -> None:
        """One row. Kept lean: it runs once per row of every dataset."""
        self.rows += 1
        width = len(cells)
        empty = []
        counts, missing_of = self.null_counts, self.missing_of
        for i in range(len(counts)):
            cell = cells[i] if i < width else None
            if cell is None or (cell.__class__ is str and cell in missing_of[i]):
                counts[i] += 1
                empty.append(i)
        for i, stats, fld in self.numeric_of:
            if i >= width or i in empty:
                continue
            cell = cells[i]
            if cell.__class__ is str:
                try:
                    x = float(cell)  # the common case; anything else (groups, a decimal comma) by the schema
                except ValueError:
                    value, note = fld.cast(cell)
                    if note or value is None or isinstance(value, bool):
                        continue
                    x = float(value)
            elif isinstance(cell, (int, float, Decimal)) and not isinstance(cell, bool):
                x = float(cell)
            else:
                continue
            if math.isfinite(x):
                stats.add(x)
        for i, name, seen in self.distinct_of_index:
            if i < width and i not in empty and name not in self.distinct_capped:
                seen.add(_hashable(cells[i]))
                if len(seen) > MAX_DISTINCT:
                    self.distinct_capped.add(name)
        for k, index in enumerate(self.key_index):
            if empty and any(j in empty for j in index):
                continue  # a key with an empty part identifies nothing (as frictionless's unique checks)
            key = tuple(_hashable(cells[i]) if i < width else None for i in index)
            digest = hashlib.blake2b(repr(key).encode("utf-8", "surrogatepass"), digest_size=12).digest()
            if digest in self.key_seen[k]:
                self.key_duplicates[k] += 1
                if len(self.key_examples[k]) < 5:
                    self.key_examples[k].append({"row": self.rows + 1, "key": [str(v) for v in key]})
            elif len(self.key_seen[k]) < MAX_KEYS:
                self.key_seen[k].add(digest)
        if self.ts_index is not None and self.ts_index < width:
            stamp = _as_datetime(self._value(self.ts_index, cells[self.ts_index]))
            if stamp and (self.newest is None or stamp > self.newest):
                self.newest = stamp

    def summary(self) -> dict:
        """What the history keeps of this run."""
        return {"rows": self.rows,
                "fields": {n: {"mean": s.mean, "std": s.std} for n, s in self.numeric.items() if s.count}}


def _hashable(value):
    if isinstance(value, (list, dict)):
        return repr(value)
    return value


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return _as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


@dataclass
class Problem:
    """One failed quality check."""

    check: str  # null_rate, range, distinct, duplicates, freshness, drift.rows, drift.mean, drift.std
    field: str | None
    message: str
    value: float | None = None
    limit: float | str | None = None


def judge(profile: Profile, checks, now: float, file_mtime: float | None) -> list[Problem]:
    """The configured checks against one run's profile."""
    problems = []
    for name, ceiling in checks.null_rate.items():
        if name not in profile.nulls:
            problems.append(Problem("null_rate", name, f"{name}: no such field"))
            continue
        rate = profile.nulls[name] / profile.rows if profile.rows else 0.0
        if rate > ceiling:
            problems.append(Problem("null_rate", name, f"{name}: {rate:.1%} empty, ceiling {ceiling:.1%} "
                                                       f"({profile.nulls[name]} of {profile.rows} rows)",
                                    rate, ceiling))
    for name, bounds in checks.ranges.items():
        stats = profile.numeric.get(name)
        if stats is None:
            problems.append(Problem("range", name, f"{name}: not a numeric field of the schema"))
            continue
        if not stats.count:
            continue
        if bounds.min is not None and stats.low < bounds.min:
            problems.append(Problem("range", name, f"{name}: smallest value {stats.low:g} is below {bounds.min:g}",
                                    stats.low, bounds.min))
        if bounds.max is not None and stats.high > bounds.max:
            problems.append(Problem("range", name, f"{name}: largest value {stats.high:g} is above "
                                                   f"{bounds.max:g}", stats.high, bounds.max))
    for name, bounds in checks.distinct.items():
        if name not in profile.distinct:
            problems.append(Problem("distinct", name, f"{name}: no such field"))
            continue
        count = len(profile.distinct[name])
        capped = name in profile.distinct_capped
        if bounds.min is not None and count < bounds.min and not capped:
            problems.append(Problem("distinct", name, f"{name}: {count} distinct values, fewer than {bounds.min:g}",
                                    count, bounds.min))
        if bounds.max is not None and count > bounds.max:
            more = "at least " if capped else ""
            problems.append(Problem("distinct", name, f"{name}: {more}{count} distinct values, more than "
                                                      f"{bounds.max:g}", count, bounds.max))
    for index, key in enumerate(k for k in checks.unique_keys if all(n in profile.names for n in k)):
        if profile.key_duplicates[index]:
            examples = ", ".join(f"row {e['row']} ({'/'.join(e['key'])})" for e in profile.key_examples[index][:3])
            problems.append(Problem("duplicates", ",".join(key),
                                    f"{profile.key_duplicates[index]} row(s) repeat the key ({', '.join(key)}): "
                                    f"{examples}", profile.key_duplicates[index], 0))
    for key in checks.unique_keys:
        missing = [n for n in key if n not in profile.names]
        if missing:
            problems.append(Problem("duplicates", ",".join(key), f"unique key: no field {missing[0]!r}"))
    if checks.freshness:
        fresh = checks.freshness
        if fresh.field:
            newest = profile.newest.timestamp() if profile.newest else None
            what = f"newest {fresh.field}"
        else:
            newest, what = file_mtime, "file modified"
        if newest is None:
            problems.append(Problem("freshness", fresh.field, f"no {what} value to judge freshness by"))
        elif now - newest > fresh.max_age:
            problems.append(Problem("freshness", fresh.field, f"{what} {_age(now - newest)} ago, older than "
                                                              f"{_age(fresh.max_age)}", now - newest,
                                    fresh.max_age))
    return problems


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def band(values: list[float], sigmas: float) -> tuple[float, float]:
    """(centre, half-width) of the drift band over earlier runs' values (see the module doc)."""
    centre = statistics.median(values)
    mad = statistics.median(abs(v - centre) for v in values)
    return centre, max(sigmas * 1.4826 * mad, 0.01 * abs(centre), 1e-9)


def drift(summary: dict, history: list[dict], drift_cfg) -> list[Problem]:
    """This run's summary against the earlier runs' (oldest first)."""
    if not drift_cfg.enabled or not history:
        return []
    problems = []
    previous = history[-1]["rows"]
    if previous and abs(summary["rows"] - previous) / previous > drift_cfg.row_change:
        problems.append(Problem("drift.rows", None, f"row count {summary['rows']} vs {previous} in the previous "
                                                    f"run ({(summary['rows'] - previous) / previous:+.0%}, limit "
                                                    f"±{drift_cfg.row_change:.0%})", summary["rows"], previous))
    recent = history[-drift_cfg.history:]
    if len(recent) < drift_cfg.min_runs:
        return problems
    for name, stats in summary["fields"].items():
        for stat in ("mean", "std"):
            values = [h["fields"][name][stat] for h in recent if name in h.get("fields", {})]
            if len(values) < drift_cfg.min_runs:
                continue
            centre, half = band(values, drift_cfg.sigmas)
            if abs(stats[stat] - centre) > half:
                problems.append(Problem(f"drift.{stat}", name,
                                        f"{name}: {stat} {stats[stat]:.6g} outside its band {centre - half:.6g} .. "
                                        f"{centre + half:.6g} (median of {len(values)} runs ± {half:.3g})",
                                        stats[stat], f"{centre - half:.6g}..{centre + half:.6g}"))
    return problems


# --- database integrity ---------------------------------------------------------------------------------------

def sqlite_integrity(conn, table: str, full: bool = False) -> tuple[list[str], list[str]]:
    """(corruption, foreign key violations) of a SQLite database, each a list of messages (first 20)."""
    from zenctl.agents.data_validator.tables import qi

    pragma = "integrity_check" if full else "quick_check"
    corrupt = [r[0] for r in conn.execute(f"PRAGMA {pragma}(100)").fetchall() if r[0] != "ok"]
    fk = [f"{r[0]} rowid {r[1]} has no parent in {r[2]} (foreign key {r[3]})"
          for r in conn.execute(f"PRAGMA foreign_key_check({qi(table)})").fetchmany(20)] if table else []
    return corrupt, fk


def pg_integrity(conn, table: str, schema_fks: list[tuple[list[str], str, list[str]]]) -> list[str]:
    """Rows of `table` that violate a constraint declared NOT VALID (check and foreign key), and orphans of the
    foreign keys only the schema declares (`schema_fks`: (fields, referenced table, referenced fields)). Runs in
    a READ ONLY transaction (a check expression is the table owner's code)."""
    from psycopg import sql

    from zenctl.agents.data_validator.tables import pg_split

    out = []
    schema, name = pg_split(table)
    ident = sql.Identifier(schema, name)
    rows = conn.execute(
        "SELECT c.conname, c.contype, pg_get_expr(c.conbin, c.conrelid), "
        "  ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
        "        ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), "
        "  CASE WHEN c.confrelid <> 0 THEN c.confrelid::regclass::text END, "
        "  ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a "
        "        ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = %s AND t.relname = %s AND NOT c.convalidated ORDER BY c.conname",
        (schema, name)).fetchall()
    for conname, contype, expr, cols, ref_table, ref_cols in rows:
        if contype == "c" and expr:
            count = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT ({})").format(
                ident, sql.SQL(expr)), prepare=False).fetchone()[0]
            if count:
                out.append(f"{count} row(s) violate check constraint {conname} (NOT VALID): {expr}")
        elif contype == "f":
            count = _orphans(conn, ident, cols, ref_table, ref_cols)
            if count:
                out.append(f"{count} row(s) have no parent in {ref_table} (foreign key {conname}, NOT VALID)")
    for cols, ref_table, ref_cols in schema_fks:
        count = _orphans(conn, ident, cols, ref_table, ref_cols)
        if count:
            out.append(f"{count} row(s) have no parent in {ref_table} ({', '.join(cols)} -> "
                       f"{', '.join(ref_cols)}, declared in the schema)")
    conn.commit()
    return out


def _orphans(conn, ident, cols: list[str], ref_table: str, ref_cols: list[str]) -> int:
    from psycopg import sql

    schema, _, name = ref_table.rpartition(".")
    ref = sql.Identifier(schema.strip('"'), name.strip('"')) if schema else sql.Identifier(name.strip('"'))
    present = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
    match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(c))
                                  for c, r in zip(cols, ref_cols))
    query = sql.SQL("SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
        ident, present, ref, match)
    return conn.execute(query).fetchone()[0]
