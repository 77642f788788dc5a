"""Bottlenecks: routes of an access log (p50/p95/p99 per normalized route, the 5xx rate, thresholds) and slow
statements of a real PostgreSQL server's log (a throwaway cluster the test starts with initdb/pg_ctl as the
postgres user, logging_collector on and log_min_duration_statement 0), judged by `zenctl logs scan`."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from zenctl.agents.log_analyzer import bottlenecks
from zenctl.agents.log_analyzer.config import LogAnalyzerConfig
from zenctl.agents.log_analyzer.formats import parse_lines

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def access_log(path: Path) -> None:
    """A combined access log with nginx's $request_time last: a slow route with ids, a fast one, a failing one."""
    lines = []
    for n in range(100):
        lines.append(f'10.0.0.{n % 7} - - [25/Nov/2026:10:{n % 60:02d}:00 +0000] "GET /api/users/{1000 + n}/orders'
                     f'?page={n} HTTP/1.1" 200 512 "-" "curl/8" {1.0 + n / 50:.3f}')
        lines.append(f'10.0.0.{n % 7} - - [25/Nov/2026:10:{n % 60:02d}:01 +0000] "GET /static/app.css HTTP/1.1" '
                     f'200 99 "-" "curl/8" 0.00{n % 10}')
        status = 502 if n % 4 == 0 else 200
        lines.append(f'10.0.0.{n % 7} - - [25/Nov/2026:10:{n % 60:02d}:02 +0000] "POST /api/items/'
                     f'550e8400-e29b-41d4-a716-4466554400{n:02d} HTTP/1.1" {status} 10 "-" "curl/8" 0.2{n % 10}')
    path.write_text("\n".join(lines) + "\n")


def test_routes_are_normalized_and_judged_by_percentile_and_5xx_rate(tmp_path):
    log = tmp_path / "access.log"
    access_log(log)
    collector = bottlenecks.Collector()
    with open(log) as handle:
        for record in parse_lines(((i + 1, t.rstrip("\n")) for i, t in enumerate(handle)), "nginx"):
            collector.add(record, str(log))
    rows = {r["route"]: r for r in collector.route_rows()}
    assert set(rows) == {"GET /api/users/:id/orders", "GET /static/app.css", "POST /api/items/:id"}
    slow = rows["GET /api/users/:id/orders"]
    times = sorted(1.0 + n / 50 for n in range(100))
    assert slow["count"] == 100 and slow["p50"] == pytest.approx(times[49], abs=1e-3)
    assert slow["p95"] == pytest.approx(times[94], abs=1e-3) and slow["p99"] == pytest.approx(times[98], abs=1e-3)
    cfg = LogAnalyzerConfig()
    findings = {f["check"]: f for f in bottlenecks.judge("web", collector, cfg.routes, cfg.slow_sql)}
    route = findings["logs:web:route:GET /api/users/:id/orders"]
    assert route["status"] == "warning" and route["threshold"] == 1.0  # p95 2.88 s: warning from 1 s, critical from 3 s
    assert route["evidence"]["slowest"] == f"{log}:298"  # the slowest request's line
    assert "logs:web:route:GET /static/app.css" not in findings
    rate = findings["logs:web:5xx"]
    assert rate["status"] == "warning" and rate["value"] == pytest.approx(100 * 25 / 300, abs=1e-3)
    assert rate["evidence"]["routes"][0] == {"route": "POST /api/items/:id", "errors_5xx": 25, "count": 100}


def test_sql_is_normalized_as_pgbadger_does():
    assert bottlenecks.normalize_sql("SELECT * FROM t WHERE id = 42 AND name IN ('a', 'b''c')") == \
        "select * from t where id = ? and name in (?)"
    assert bottlenecks.normalize_sql("execute S_1: insert into t values ($1, $2), ($3, $4)") == \
        "insert into t values (?)"
    assert bottlenecks.normalize_sql("select t1.c2, 'x' -- note\n from t1 where c = -1.5e3") == \
        "select t1.c2, ? from t1 where c = ?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pg_cluster():
    """A throwaway PostgreSQL cluster logging every statement's duration to its own log file; (psql, log dir)."""
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("a throwaway PostgreSQL cluster needs root and PostgreSQL 15's initdb (CI=true: not skipping)")
        pytest.skip("needs root and PostgreSQL 15's initdb")
    postgres = pwd.getpwnam("postgres")
    top = Path(tempfile.mkdtemp(prefix="zenctl-pg-"))
    os.chown(top, postgres.pw_uid, postgres.pw_gid)
    data, port = top / "data", _free_port()

    def as_postgres(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), user=postgres.pw_uid, group=postgres.pw_gid, extra_groups=[],
                              capture_output=True, text=True, timeout=120, check=check, cwd=top,
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})

    try:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = ''\nunix_socket_directories = '{top}'\n"
                       "logging_collector = on\nlog_directory = 'log'\nlog_filename = 'postgresql.log'\n"
                       "log_min_duration_statement = 0\nlog_line_prefix = '%m [%p] %q%u@%d '\n")
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(top / "start.log"), "start")

        def psql(sql: str) -> str:
            return as_postgres("psql", "-h", str(top), "-p", str(port), "-U", "postgres", "-d", "postgres",
                               "-X", "-q", "-c", sql).stdout

        yield psql, data / "log"
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(top, ignore_errors=True)


def test_slow_statements_of_a_real_postgres_log_are_found_by_normalized_sql(pg_cluster, zenctl):
    psql, log_dir = pg_cluster
    psql("CREATE TABLE orders (id int primary key, customer text)")
    psql("INSERT INTO orders SELECT g, 'c' || g FROM generate_series(1, 1000) g")
    for n in range(4):
        psql(f"SELECT pg_sleep(0.3), count(*) FROM orders WHERE customer = 'c{n}' AND id > {n}")
    for n in range(20):
        psql(f"SELECT customer FROM orders WHERE id = {n}")
    aged = time.time() - 60
    for path in log_dir.iterdir():  # the last record may continue until its writer is done: a minute ago, it is
        os.utime(path, (aged, aged))
    cfg = zenctl.config(
        "agents:\n  log_analyzer:\n    sources:\n"
        f"      - {{name: pg, path: '{log_dir}/*.log', format: postgres}}\n"
        "    slow_sql: {mean_warning: 0.2, mean_critical: 1.0}\n")
    done = zenctl("logs", "scan", "-c", str(cfg), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    findings = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    (slow,) = [f for f in findings.values() if ":sql:" in f["check"]]
    assert slow["status"] == "warning"
    assert slow["evidence"]["query"] == "select pg_sleep(?), count(*) from orders where customer = ? and id > ?"
    assert slow["evidence"]["calls"] == 4 and slow["evidence"]["mean_ms"] >= 300
    assert slow["evidence"]["total_ms"] == pytest.approx(4 * slow["evidence"]["mean_ms"], rel=1e-3)
    assert slow["evidence"]["slowest"].startswith(str(log_dir))

    code, report = zenctl.json("logs", "report", "--since", "1h")
    assert code == 0
    sql = {r["query"]: r for r in report["sources"]["pg"]["slow_sql"]}
    assert sql["select customer from orders where id = ?"]["calls"] == 20
    assert sql["select pg_sleep(?), count(*) from orders where customer = ? and id > ?"]["calls"] == 4
    text = zenctl("logs", "report", "--since", "1h").stdout
    assert "Slow SQL" in text and "select pg_sleep(?)" in text


def test_findings_are_bounded_however_many_slow_routes_an_attacker_makes(tmp_path):
    from zenctl.agents.log_analyzer.formats import Record

    collector = bottlenecks.Collector()
    for n in range(100 * 30):
        route = f"/r{n % 100}x"  # 100 distinct slow routes, 30 requests each
        collector.add(Record(n + 1, "", "", fields={"method": "GET" if n % 2 else "\x1b[31m" * 50, "path": route,
                                                    "status": 200, "request_time": 5.0}))
    cfg = LogAnalyzerConfig()
    findings = bottlenecks.judge("web", collector, cfg.routes, cfg.slow_sql)
    routes = [f for f in findings if ":route:" in f["check"]]
    assert len(routes) == 21 and routes[-1]["check"] == "logs:web:route:more"
    assert routes[-1]["value"] == 100 - 20
    assert any(f["check"].startswith("logs:web:route:- /r") for f in routes)  # a method that is no method: "-"
    assert all(len(f["check"]) < 300 and "\x1b" not in f["check"] for f in findings)
