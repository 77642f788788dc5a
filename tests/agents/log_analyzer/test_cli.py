"""`zenctl logs ...` as subprocesses: scan (--dry-run, --json, -q, --source), templates, report (plain text for
cron mail and --json), parse (JSON lines, the state untouched); usage errors as one line and exit 3."""

import json
import sqlite3
from pathlib import Path


def setup(zenctl, tmp_path: Path) -> tuple[Path, Path]:
    app, web = tmp_path / "app.log", tmp_path / "access.log"
    app.write_text("".join(f"Nov 25 10:00:{n % 60:02d} web1 app[1]: user {n} logged in\n" for n in range(30)))
    web.write_text("".join(f'10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET /item/{n} HTTP/1.1" 200 5 "-" "c" 0.01\n'
                           for n in range(30)))
    cfg = zenctl.config("agents:\n  log_analyzer:\n    sources:\n"
                        f"      - {{name: app, path: '{app}', format: syslog}}\n"
                        f"      - {{name: web, path: '{web}', format: nginx}}\n")
    return cfg, app


def test_scan_dry_run_json_quiet_and_source(zenctl, tmp_path):
    cfg, app = setup(zenctl, tmp_path)
    code, out = zenctl.json("logs", "scan", "-c", str(cfg), "--dry-run", "--source", "app")
    assert code == 0 and out["agent"] == "log_analyzer" and out["dry_run"] is True
    assert [f["check"] for f in out["findings"]] == ["logs:app"] and out["findings"][0]["value"] == 30
    done = zenctl("logs", "scan", "-c", str(cfg), "-q")
    assert done.returncode == 0 and done.stdout == "", done.stdout
    with open(app, "a") as handle:
        handle.write("Nov 25 10:01:00 web1 app[1]: error: database db1 unreachable\n")
    done = zenctl("logs", "scan", "-c", str(cfg), "-q")
    assert done.returncode == 1 and "database" in done.stdout  # -q prints when there is a problem
    done = zenctl("logs", "scan", "-c", str(cfg), "--source", "nope")
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "no such source" in done.stderr


def test_templates_and_report(zenctl, tmp_path):
    cfg, app = setup(zenctl, tmp_path)
    zenctl("logs", "scan", "-c", str(cfg))
    with open(app, "a") as handle:
        handle.write("".join(f"Nov 25 10:01:{n:02d} web1 app[1]: error: disk sd{n} failed\n" for n in range(3)))
        handle.write("Nov 25 10:02:00 web1 app[1]: error: \x1b]52;c;ZWNobyBoaQ==\x07 escape\n")
    zenctl("logs", "scan", "-c", str(cfg))
    code, out = zenctl.json("logs", "templates", "--source", "app", "--top", "5")
    assert code == 0 and {row["source"] for row in out["templates"]} == {"app"}
    top = out["templates"][0]
    assert top["count"] == 30 and top["template"].startswith("user")
    assert top["first_seen"].endswith("Z") and top["first_seen"] <= top["last_seen"]
    text = zenctl("logs", "templates").stdout
    assert "app" in text and "web" in text

    code, out = zenctl.json("logs", "report", "--since", "24h")
    assert code == 0 and out["runs"] == 2
    errors = out["sources"]["app"]["top_errors"]
    assert errors[0]["count"] == 3 and "failed" in errors[0]["template"]
    assert [r["route"] for r in out["sources"]["web"]["slow_routes"]] == ["GET /item/:id"]
    done = zenctl("logs", "report")
    assert done.returncode == 0 and "Top errors" in done.stdout and "GET /item/:id" in done.stdout
    assert "\x1b" not in done.stdout and "\\x1b]" in done.stdout, done.stdout  # the escape shown, not sent
    done = zenctl("logs", "report", "--since", "soon")
    assert done.returncode == 3 and "--since" in done.stderr


def test_parse_writes_json_lines_and_leaves_the_state_alone(zenctl, tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("Nov 25 10:00:00 web1 sshd[7]: Failed password for root from 203.0.113.9 port 4242 ssh2\n"
                   "Nov 25 10:00:01 web1 sshd[7]: Connection closed by 203.0.113.9 port 4242\n")
    done = zenctl("logs", "parse", str(log), "--format", "syslog", "--jsonl")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2]
    assert {"template_id", "template", "params"} <= rows[0].keys()
    assert rows[0]["security"] == {"jail": "sshd", "ip": "203.0.113.9"}
    assert not zenctl.db.exists() or not sqlite3.connect(zenctl.db).execute(
        "SELECT count(*) FROM agent_state").fetchone()[0]
    done = zenctl("logs", "parse", str(tmp_path / "missing.log"))
    assert done.returncode == 3 and "missing.log" in done.stderr and "Traceback" not in done.stderr
    done = zenctl("logs", "parse", str(log), "--format", "klingon")
    assert done.returncode == 3 and "--format" in done.stderr


def test_digests_older_than_report_keep_are_dropped(zenctl, tmp_path):
    cfg, _ = setup(zenctl, tmp_path)
    zenctl("logs", "scan", "-c", str(cfg))
    with sqlite3.connect(zenctl.db) as conn:
        conn.execute("UPDATE agent_state SET updated = '2000-01-01T00:00:00.000000Z' WHERE key LIKE 'digest:%'")
    zenctl("logs", "scan", "-c", str(cfg))
    with sqlite3.connect(zenctl.db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM agent_state WHERE key LIKE 'digest:%'").fetchone()
    assert count == 1


def test_a_damaged_digest_is_left_out_of_the_report(zenctl, tmp_path):
    cfg, _ = setup(zenctl, tmp_path)
    zenctl("logs", "scan", "-c", str(cfg))
    zenctl("logs", "scan", "-c", str(cfg))
    with sqlite3.connect(zenctl.db) as conn:
        key = conn.execute("SELECT key FROM agent_state WHERE key LIKE 'digest:%' LIMIT 1").fetchone()[0]
        conn.execute("UPDATE agent_state SET value = ? WHERE key = ?",
                     (json.dumps({"t": 4e9, "sources": {"app": {"errors": [{"no": "id"}]}}}), key))
    code, out = zenctl.json("logs", "report")
    assert code == 0 and out["runs"] == 1, out
