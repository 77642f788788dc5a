"""Performance bottlenecks in logs: slow and failing routes of access logs (as GoAccess reports them) and slow
statements of PostgreSQL logs (as pgBadger does), judged against thresholds into findings with their evidence.

Routes are normalized so that one endpoint is one row: the query string is dropped and path segments that are
ids become `:id` (numbers, hex of 8+ digits, UUIDs, and long tokens mixing digits and letters). Statements are
normalized as pgBadger does: literals (strings, numbers, `$1` parameters) become `?`, `IN (?, ?, ...)` becomes
`IN (?)`, whitespace and case fold. Percentiles of a run are exact (nearest rank); what a report merges over
several runs comes from the per-run histograms kept in digests (log-spaced buckets, within 10%).
"""

import hashlib
import math
import re
from dataclasses import dataclass, field

MAX_ROUTES = 5000  # distinct routes per source and run; beyond, they count under "(other)"
MAX_STATEMENTS = 5000
MAX_EXAMPLE = 300
MAX_FINDINGS = 20  # slow routes and slow statements judged one by one per source and run; the rest summed up
_BUCKET_BASE = 1.1  # histogram: bucket k holds durations in (1.1^(k-1), 1.1^k] ms

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^[-+]?\d+(?:[.,]\d+)?$")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]{8,}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,}$")
_METHOD = re.compile(r"[A-Za-z]{1,16}")
_ID_WITH_EXT = re.compile(r"^(?P<id>.+?)(?P<ext>\.[A-Za-z0-9]{1,6})$")


def _is_id(segment: str) -> bool:
    if _NUMBER.match(segment) or _UUID.match(segment) or (_HEX.match(segment) and re.search(r"\d", segment)):
        return True
    return bool(_TOKEN.match(segment) and re.search(r"\d", segment) and re.search(r"[A-Za-z]", segment))


def normalize_route(path: str) -> str:
    """`/users/42/orders/7f3a9c2e1b4d?page=2` -> `/users/:id/orders/:id`."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return path[:200] or "/"
    parts = []
    for segment in path.split("/")[1:]:
        if _is_id(segment):
            parts.append(":id")
            continue
        ext = _ID_WITH_EXT.match(segment)
        parts.append(":id" + ext.group("ext") if ext and _is_id(ext.group("id")) else segment)
    route = "/" + "/".join(parts)
    return route if len(route) <= 200 else route[:200] + "..."


_SQL_STRING = re.compile(r"(?:[EeBbXxNn]|U&)?'(?:[^']|'')*'")
_SQL_DOLLAR = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)
_SQL_NUMBER = re.compile(r"(?<![\w$.])[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)(?![\w.])")
_SQL_PARAM = re.compile(r"\$\d+")
_SQL_IN = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SQL_VALUES = re.compile(r"(values\s*\(\?\)(?:\s*,\s*\(\?\))+)", re.I)
_SQL_SPACE = re.compile(r"\s+")
_SQL_PHASE = re.compile(r"^(?:execute|parse|bind)\s+[^:]*:\s*", re.I)
_SQL_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)


def normalize_sql(statement: str) -> str:
    """`SELECT * FROM t WHERE id = 42 AND name IN ('a', 'b')` -> `select * from t where id = ? and name in (?)`."""
    text = _SQL_PHASE.sub("", statement[:20000])
    text = _SQL_COMMENT.sub(" ", text)
    text = _SQL_DOLLAR.sub("?", text)
    text = _SQL_STRING.sub("?", text)
    text = _SQL_PARAM.sub("?", text)
    text = _SQL_NUMBER.sub("?", text)
    text = _SQL_IN.sub("(?)", text)
    text = _SQL_SPACE.sub(" ", text).strip().rstrip(";").strip().lower()
    text = _SQL_VALUES.sub("values (?)", text)
    return text[:2000]


def bucket(ms: float) -> int:
    return 0 if ms <= 1 else math.ceil(math.log(ms, _BUCKET_BASE))


def bucket_ms(index: int) -> float:
    return _BUCKET_BASE ** index


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def histogram_percentile(histogram: dict, q: float) -> float:
    """The q-th percentile (ms) of a {bucket: count} histogram, as the bucket's upper bound."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for index in sorted(histogram, key=int):
        seen += histogram[index]
        if seen >= rank:
            return bucket_ms(int(index))
    return bucket_ms(int(max(histogram, key=int)))


@dataclass
class RouteStat:
    times: list = field(default_factory=list)  # seconds
    count: int = 0
    errors: int = 0  # 5xx
    slowest: tuple = (0.0, "")  # (seconds, file:line)


@dataclass
class SqlStat:
    times: list = field(default_factory=list)  # ms
    example: str = ""
    slowest: tuple = (0.0, "")  # (ms, file:line)


class Collector:
    """One source's requests and statements of one run."""

    def __init__(self) -> None:
        self.routes: dict[str, RouteStat] = {}
        self.statements: dict[str, SqlStat] = {}
        self.requests = 0
        self.errors = 0
        self.timed = 0
        self.path = ""

    def add(self, record, path: str = "") -> None:
        """Count one parsed record (others than requests and timed statements are ignored); `path` is its file."""
        self.path = path
        fields = record.fields
        status = fields.get("status")
        if isinstance(status, int) and ("method" in fields or "path" in fields or "request" in fields):
            self._request(record, fields, status)
        elif "duration_ms" in fields and fields.get("phase") in (None, "execute"):
            self._statement(record, fields)

    def _request(self, record, fields: dict, status: int) -> None:
        self.requests += 1
        method = fields.get("method")
        method = method if isinstance(method, str) and _METHOD.fullmatch(method) else "-"
        key = f"{method} {normalize_route(str(fields.get('path') or fields.get('request') or ''))}"
        stat = self.routes.get(key)
        if stat is None:
            if len(self.routes) >= MAX_ROUTES:
                key = "(other)"
                stat = self.routes.setdefault(key, RouteStat())
            else:
                stat = self.routes[key] = RouteStat()
        stat.count += 1
        if status >= 500:
            stat.errors += 1
            self.errors += 1
        seconds = fields.get("request_time")
        if isinstance(seconds, (int, float)) and seconds >= 0:
            self.timed += 1
            stat.times.append(float(seconds))
            if seconds > stat.slowest[0]:
                stat.slowest = (float(seconds), f"{self.path}:{record.line}")

    def _statement(self, record, fields: dict) -> None:
        ms = fields.get("duration_ms")
        statement = fields.get("statement")
        if not isinstance(ms, (int, float)) or not statement:
            return
        key = normalize_sql(statement)
        stat = self.statements.get(key)
        if stat is None:
            if len(self.statements) >= MAX_STATEMENTS:
                return
            stat = self.statements[key] = SqlStat(example=statement[:MAX_EXAMPLE])
        stat.times.append(float(ms))
        if ms > stat.slowest[0]:
            stat.slowest = (float(ms), f"{self.path}:{record.line}")

    # --------------------------------------------------------------------------------------------- summaries
    def route_rows(self) -> list[dict]:
        """Per route: count, 5xx, p50/p95/p99/max (seconds) when timed; slowest p95 first."""
        rows = []
        for route, stat in self.routes.items():
            row = {"route": route, "count": stat.count, "errors_5xx": stat.errors}
            if stat.times:
                times = sorted(stat.times)
                row.update(timed=len(times), p50=percentile(times, 50), p95=percentile(times, 95),
                           p99=percentile(times, 99), max=times[-1], slowest_line=stat.slowest[1],
                           histogram=_histogram(t * 1000 for t in times))
            rows.append(row)
        return sorted(rows, key=lambda r: (-r.get("p95", -1), -r["count"]))

    def sql_rows(self) -> list[dict]:
        """Per normalized statement: calls, total, mean, max (ms), an example; by total time, as pgBadger."""
        rows = []
        for query, stat in self.statements.items():
            total = sum(stat.times)
            rows.append({"query": query, "id": sql_id(query), "calls": len(stat.times), "total_ms": round(total, 3),
                         "mean_ms": round(total / len(stat.times), 3), "max_ms": stat.slowest[0],
                         "slowest_line": stat.slowest[1], "example": stat.example,
                         "histogram": _histogram(stat.times)})
        return sorted(rows, key=lambda r: -r["total_ms"])


def sql_id(query: str) -> str:
    return hashlib.blake2b(query.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()


def _histogram(values_ms) -> dict:
    histogram: dict[str, int] = {}
    for ms in values_ms:
        key = str(bucket(ms))
        histogram[key] = histogram.get(key, 0) + 1
    return histogram


def judge(source: str, collector: Collector, routes_cfg, sql_cfg) -> list[dict]:
    """Findings (as dicts for core.agent.Finding) for slow routes, a high 5xx rate and slow statements."""
    findings: list[dict] = []
    route_rows = collector.route_rows()
    more_routes: list[str] = []
    for row in route_rows:
        if row.get("timed", 0) < routes_cfg.min_requests or row["route"] == "(other)":
            continue
        p95 = row["p95"]
        status = "critical" if p95 >= routes_cfg.p95_critical else "warning" if p95 >= routes_cfg.p95_warning \
            else None
        if status and sum(1 for f in findings if ":route:" in f["check"]) >= MAX_FINDINGS:
            more_routes.append(row["route"])
        elif status:
            limit = routes_cfg.p95_critical if status == "critical" else routes_cfg.p95_warning
            findings.append(dict(
                check=f"logs:{source}:route:{row['route']}", status=status,
                message=f"{row['route']} is slow: p95 {p95:.3f}s over {row['timed']} requests (p50 {row['p50']:.3f}s, "
                        f"p99 {row['p99']:.3f}s, max {row['max']:.3f}s; {status} from {limit:g}s)",
                value=round(p95, 6), threshold=limit, unit="s",
                evidence={k: row[k] for k in ("count", "timed", "p50", "p95", "p99", "max", "errors_5xx")}
                | {"slowest": row["slowest_line"]}))
    if more_routes:
        findings.append(dict(check=f"logs:{source}:route:more", status="warning",
                             message=f"{len(more_routes)} more slow routes", value=len(more_routes),
                             evidence={"routes": more_routes[:100]}))
    if collector.requests >= routes_cfg.min_requests:
        rate = 100.0 * collector.errors / collector.requests
        status = "critical" if rate >= routes_cfg.error_rate_critical else \
            "warning" if rate >= routes_cfg.error_rate_warning else "ok"
        worst = sorted((r for r in route_rows if r["errors_5xx"]), key=lambda r: -r["errors_5xx"])[:5]
        findings.append(dict(
            check=f"logs:{source}:5xx", status=status,
            message=f"{collector.errors} of {collector.requests} requests answered 5xx ({rate:.1f}%)",
            value=round(rate, 3), threshold=routes_cfg.error_rate_critical if status == "critical" else
            routes_cfg.error_rate_warning, unit="%",
            evidence={"requests": collector.requests, "errors_5xx": collector.errors,
                      "routes": [{"route": r["route"], "errors_5xx": r["errors_5xx"], "count": r["count"]}
                                 for r in worst]}))
    slow_sql = 0
    more_sql: list[str] = []
    for row in collector.sql_rows():
        if row["calls"] < sql_cfg.min_calls:
            continue
        mean_s, total_s = row["mean_ms"] / 1000, row["total_ms"] / 1000
        if mean_s >= sql_cfg.mean_critical:
            status, why = "critical", f"mean {mean_s:.3f}s (critical from {sql_cfg.mean_critical:g}s)"
        elif mean_s >= sql_cfg.mean_warning:
            status, why = "warning", f"mean {mean_s:.3f}s (warning from {sql_cfg.mean_warning:g}s)"
        elif total_s >= sql_cfg.total_warning:
            status, why = "warning", f"total {total_s:.1f}s in this run (warning from {sql_cfg.total_warning:g}s)"
        else:
            continue
        slow_sql += 1
        if slow_sql > MAX_FINDINGS:
            more_sql.append(row["query"][:200])
            continue
        findings.append(dict(
            check=f"logs:{source}:sql:{row['id']}", status=status,
            message=f"slow statement: {why}, {row['calls']} calls, total {total_s:.3f}s, max "
                    f"{row['max_ms'] / 1000:.3f}s: {row['query'][:160]}",
            value=round(mean_s, 6), threshold=sql_cfg.mean_critical if status == "critical" else sql_cfg.mean_warning,
            unit="s",
            evidence={"query": row["query"], "calls": row["calls"], "total_ms": row["total_ms"],
                      "mean_ms": row["mean_ms"], "max_ms": row["max_ms"], "example": row["example"],
                      "slowest": row["slowest_line"]}))
    if more_sql:
        findings.append(dict(check=f"logs:{source}:sql:more", status="warning",
                             message=f"{len(more_sql)} more slow statements", value=len(more_sql),
                             evidence={"queries": more_sql[:100]}))
    return findings


def digest(collector: Collector, top_routes: int, top_sql: int) -> dict:
    """What a run keeps for `logs report`: the slowest routes and the heaviest statements, with histograms."""
    routes = [r for r in collector.route_rows() if "timed" in r][:top_routes]
    return {"requests": collector.requests, "errors_5xx": collector.errors,
            "routes": [{k: r[k] for k in ("route", "count", "timed", "p95", "max", "errors_5xx", "histogram")}
                       for r in routes],
            "sql": [{k: r[k] for k in ("query", "id", "calls", "total_ms", "max_ms", "histogram")}
                    for r in collector.sql_rows()[:top_sql]]}
