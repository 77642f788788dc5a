"""The Log Analysis agent's commands: `zenctl logs scan` (the agent run), `logs templates` (what the miner
learned), `logs report` (a logwatch-style summary of the kept digests) and `logs parse` (one file as JSON lines,
without the state). `logs_scan` runs without typer for cron (see FAST)."""

import sys


def logs_scan(config: str | None = None, db: str | None = None, json: bool = False, quiet: bool = False,
              dry_run: bool = False, source: str | None = None) -> int:
    """Run the Log Analysis agent once (only `source` when given); the exit code."""
    from zenctl.agents.log_analyzer.agent import LogAnalyzerAgent
    from zenctl.clikit import error, show_run
    from zenctl.core.config import load_config
    from zenctl.core.dispatch import check_available, run_instance
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    loaded = load_config(config)
    check_available("log_analyzer")
    if source is not None:
        names = [s.name for s in loaded.config.agents.log_analyzer.sources]
        if source not in names:
            raise UsageError(f"--source {source!r}: no such source (agents.log_analyzer.sources: "
                             f"{', '.join(names) or 'none'})")
    result = run_instance(LogAnalyzerAgent(only=source), loaded, resolve_db_path(db), dry_run)
    show_run(result, json, quiet)
    if result.error:
        error(result.error)
    return result.exit_code


FAST = {("logs", "scan"): (logs_scan, {"--source": ("source", None)}, None)}


def stored(db: str | None, prefix: str) -> dict[str, object]:
    """The agent's stored values whose key starts with `prefix` (key without it -> value); {} without a state."""
    import json as jsonlib

    from zenctl.clikit import open_db

    state = open_db(db, create=False)
    if state is None:
        return {}
    try:
        rows = state.conn.execute("SELECT key, value FROM agent_state WHERE agent = 'log_analyzer' AND key LIKE ?",
                                  (prefix.replace("%", "") + "%",)).fetchall()
    finally:
        state.close()
    out = {}
    for key, value in rows:
        try:
            out[key[len(prefix):]] = jsonlib.loads(value)
        except ValueError:
            continue
    return out


def templates(db: str | None, source: str | None, top: int) -> list[dict]:
    """What the miner learned per source: its templates, most frequent first."""
    from zenctl.agents.log_analyzer.agent import merge_levels
    from zenctl.agents.log_analyzer.miner import Miner
    from zenctl.core.timeutil import iso

    out = []
    sources = stored(db, "source:")
    for name, state in sorted(stored(db, "miner:").items()):
        if source and name != source:
            continue
        miner = Miner(state if isinstance(state, dict) else None)
        rows = miner.templates()
        source_state = sources.get(name)
        levels = source_state.get("levels") if isinstance(source_state, dict) else None
        if isinstance(levels, dict):
            merge_levels(miner, {row["id"]: row for row in rows}, levels)
        rows = rows[:top]
        out += [{"source": name, **{k: row.get(k) for k in ("id", "count", "level", "template", "example")},
                 **{k: iso(row[k]) if isinstance(row.get(k), (int, float)) else None
                    for k in ("first_seen", "last_seen")}} for row in rows]
    return out


def report(db: str | None, since: float, now: float) -> dict:
    """The digests of the runs since `since`, summed: top errors, new templates, spikes, tracebacks, slow routes
    and statements, security incidents (the shape of `logs report --json`)."""
    from zenctl.agents.log_analyzer import bottlenecks
    from zenctl.core.timeutil import iso

    digests = [d for d in stored(db, "digest:").values() if isinstance(d, dict) and d.get("t", 0) >= since]
    digests.sort(key=lambda d: d.get("t", 0))
    sources: dict[str, dict] = {}
    security = {}
    skipped = 0
    for digest in digests:
        try:
            _add_digest(digest, sources, security)
        except (KeyError, TypeError, AttributeError, ValueError):  # an old or edited digest: left out, counted
            skipped += 1
    out = {"since": iso(since), "until": iso(now), "runs": len(digests) - skipped, "sources": {},
           "security": list(security.values())}
    for name, part in sorted(sources.items()):
        routes = []
        for entry in part["routes"].values():
            histogram = entry.pop("histogram")
            routes.append({**entry, "p50": bottlenecks.histogram_percentile(histogram, 50) / 1000,
                           "p95": bottlenecks.histogram_percentile(histogram, 95) / 1000,
                           "p99": bottlenecks.histogram_percentile(histogram, 99) / 1000})
        sql = [{**e, "total_ms": round(e["total_ms"], 3), "mean_ms": round(e["total_ms"] / e["calls"], 3)
                if e["calls"] else 0.0} for e in part["sql"].values()]
        out["sources"][name] = {
            "lines": part["lines"], "records": part["records"], "unparsed": part["unparsed"],
            "top_errors": sorted(part["errors"].values(), key=lambda r: -r["count"])[:20],
            "new_templates": list(part["new"].values())[:50],
            "spikes": sorted(part["spikes"], key=lambda r: -r["count"])[:50],
            "tracebacks": sorted(part["tracebacks"].values(), key=lambda r: -r["count"])[:20],
            "requests": part["requests"], "errors_5xx": part["errors_5xx"],
            "slow_routes": sorted(routes, key=lambda r: -r["p95"])[:20],
            "slow_sql": sorted(sql, key=lambda r: -r["total_ms"])[:20],
        }
    return out


def _add_digest(digest: dict, sources: dict, security: dict) -> None:
    """Sum one run's digest into the report's accumulators."""
    from zenctl.core.timeutil import iso

    for name, part in (digest.get("sources") or {}).items():
        into = sources.setdefault(name, {"lines": 0, "records": 0, "unparsed": 0, "errors": {}, "new": {},
                                         "spikes": [], "tracebacks": {}, "routes": {}, "sql": {},
                                         "requests": 0, "errors_5xx": 0})
        for key in ("lines", "records", "unparsed"):
            into[key] += part.get(key) or 0
        for row in part.get("errors") or []:
            entry = into["errors"].setdefault(row["id"], {**row, "count": 0})
            entry["count"] += row.get("count") or 0
        for row in part.get("new") or []:
            into["new"].setdefault(row["id"], {**row, "first_seen": iso(digest["t"])})
        for row in part.get("spikes") or []:
            into["spikes"].append({**row, "at": iso(digest["t"])})
        for row in part.get("tracebacks") or []:
            key = f"{row.get('type')} at {row.get('frame')}"
            entry = into["tracebacks"].setdefault(key, {**row, "count": 0})
            entry["count"] += row.get("count") or 0
        found = part.get("bottlenecks") or {}
        into["requests"] += found.get("requests") or 0
        into["errors_5xx"] += found.get("errors_5xx") or 0
        for row in found.get("routes") or []:
            entry = into["routes"].setdefault(row["route"], {"route": row["route"], "count": 0, "histogram": {}})
            entry["count"] += row.get("timed") or 0
            _merge(entry["histogram"], row.get("histogram") or {})
        for row in found.get("sql") or []:
            entry = into["sql"].setdefault(row["id"], {"query": row["query"], "calls": 0, "total_ms": 0.0,
                                                       "max_ms": 0.0})
            entry["calls"] += row.get("calls") or 0
            entry["total_ms"] += row.get("total_ms") or 0
            entry["max_ms"] = max(entry["max_ms"], row.get("max_ms") or 0)
    for row in digest.get("security") or []:
        entry = security.setdefault(row.get("check"), {**row, "runs": 0, "last": None})
        entry["runs"] += 1
        entry["last"] = iso(digest["t"])


def _merge(into: dict, histogram: dict) -> None:
    for key, count in histogram.items():
        into[key] = into.get(key, 0) + count


def report_text(data: dict) -> str:
    """The report as plain text for cron mail (control characters of log text escaped)."""
    from zenctl.core.untrusted import line

    out = [f"zenctl log report: {data['since']} to {data['until']} ({data['runs']} runs)", ""]

    def section(title: str, rows: list[str]) -> None:
        if rows:
            out.extend([f"  {title}", *(f"    {line(row)}" for row in rows), ""])

    if data["security"]:
        out.append("Security incidents")
        out.extend(f"  {line(row['message'])} (last {row['last']})" for row in data["security"])
        out.append("")
    for name, part in data["sources"].items():
        out.append(f"{name}: {part['lines']} lines, {part['records']} records"
                   + (f", {part['unparsed']} unparsed" if part["unparsed"] else "")
                   + (f", {part['errors_5xx']} of {part['requests']} requests 5xx" if part["requests"] else ""))
        section("Top errors", [f"{r['count']:>8}  {r['template']}" for r in part["top_errors"]])
        section("New messages", [f"{r['first_seen']}  {r.get('level') or ''}  {r['template']}"
                                 for r in part["new_templates"]])
        section("Spikes", [f"{r['at']}  {r['count']}x ({r['rate_per_hour']:.1f}/h)  {r['template']}"
                           for r in part["spikes"]])
        section("Tracebacks", [f"{r['count']:>8}  {r.get('type')} at {r.get('frame')}" for r in part["tracebacks"]])
        section("Slow routes (p50 / p95 / p99 s, requests)",
                [f"{r['p50']:>8.3f} {r['p95']:>8.3f} {r['p99']:>8.3f} {r['count']:>8}  {r['route']}"
                 for r in part["slow_routes"]])
        section("Slow SQL (total / mean ms, calls)",
                [f"{r['total_ms']:>12.1f} {r['mean_ms']:>10.1f} {r['calls']:>8}  {r['query'][:200]}"
                 for r in part["slow_sql"]])
    if not data["sources"] and not data["security"]:
        out.append("Nothing recorded in this period (has `zenctl logs scan` run?).")
    return "\n".join(out).rstrip() + "\n"


def commands() -> list[tuple[str, object]]:
    """The agent's commands for `zenctl --help` (the registry's `cli`)."""
    from typing import Annotated

    import typer

    from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt, print_json

    app = typer.Typer(help="Log Analysis agent: error patterns, slow routes and queries, security incidents.",
                      no_args_is_help=True)
    SourceOpt = Annotated[str | None, typer.Option("--source", metavar="NAME",
                                                   help="Only this source (agents.log_analyzer.sources).")]

    @app.command("scan")
    def scan(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
             dry_run: DryRunOpt = False, source: SourceOpt = None) -> None:
        """Run the Log Analysis agent once: read what the sources wrote since the last scan. Exit 0 OK,
        1 WARNING, 2 CRITICAL, 3 UNKNOWN or could not run."""
        raise typer.Exit(logs_scan(config, db, json, quiet, dry_run, source))

    @app.command("templates")
    def templates_command(db: DbOpt = None, json: JsonOpt = False, source: SourceOpt = None,
                          top: Annotated[int, typer.Option("--top", min=1, help="Templates per source.")] = 20) -> None:
        """What the miner learned: templates per source with their counts, most frequent first."""
        from zenctl.core.untrusted import line

        rows = templates(db, source, top)
        if json:
            print_json({"templates": rows})
            return
        if not rows:
            print("No templates yet (run `zenctl logs scan` first).")
        for row in rows:
            print(f"{row['source']:<14} {row['id']:<12} {row['count']:>9}  {(row['level'] or '-'):<8}  "
                  f"{line(row['template'])}")

    @app.command("report")
    def report_command(db: DbOpt = None, json: JsonOpt = False,
                       since: Annotated[str, typer.Option("--since", metavar="DURATION",
                                                          help="Period to sum up, e.g. 24h, 7d.")] = "24h") -> None:
        """A logwatch-style summary of the scans in the period, plain text for cron mail (or --json): top
        errors, new messages, spikes, tracebacks, slow routes and SQL, security incidents."""
        import time

        from zenctl.core.timeutil import duration_seconds
        from zenctl.errors import UsageError

        seconds = duration_seconds(since)
        if seconds is None:
            raise UsageError(f"--since {since!r}: not a duration such as 24h or 7d")
        now = time.time()
        data = report(db, now - seconds, now)
        if json:
            print_json(data)
        else:
            sys.stdout.write(report_text(data))

    @app.command("parse")
    def parse_command(
            file: Annotated[str, typer.Argument(metavar="FILE", help="Log file to read (once, from its start).")],
            format: Annotated[str, typer.Option("--format", metavar="F", help="auto, syslog, rfc5424, nginx, "
                                                "apache, json, python, postgres or regex.")] = "auto",
            pattern: Annotated[str | None, typer.Option("--pattern", metavar="REGEX",
                                                        help="For --format regex: named groups, 'message' mined.")]
            = None,
            jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per record (the output "
                                                                "format; the default).")] = True) -> None:
        """Parse and mine FILE without touching the state: one JSON object per record on stdout (line,
        template_id, template, params, and security {jail, ip} for a jail's failures)."""
        from zenctl.agents.log_analyzer.config import FORMAT_NAMES
        from zenctl.agents.log_analyzer.parse import run_parse
        from zenctl.errors import UsageError

        if format not in FORMAT_NAMES:
            raise UsageError(f"--format {format!r}: not one of {', '.join(FORMAT_NAMES)}")
        if pattern is not None and format != "regex":
            raise UsageError("--pattern is only for --format regex")
        code = run_parse(file, format, pattern, sys.stdout)
        raise typer.Exit(code or 0)

    return [("logs", app)]
