"""The Log Analysis agent run through `zenctl logs scan` on real files: a first run learns, later runs report new
error templates with an example line, spikes against the template's own baseline, tracebacks grouped by type and
innermost frame, errors for System Health's targets; state carried across runs; bad input never fatal."""

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from zenctl.agents.log_analyzer.agent import guess_level, judge_spikes, mount_of


def config(zenctl, *sources: dict, extra: str = "") -> Path:
    return zenctl.config("agents:\n  log_analyzer:\n    sources: " + json.dumps(list(sources)) + "\n" + extra)


def scan(zenctl, cfg: Path, *args: str) -> tuple[int, dict]:
    done = zenctl("logs", "scan", "-c", str(cfg), "--json", *args)
    assert done.stdout, done.stderr
    return done.returncode, {f["check"]: f for f in json.loads(done.stdout)["findings"]}


def append(path: Path, *lines: str) -> None:
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def syslog(n: int, text: str) -> str:
    return f"Nov 25 10:{n // 60 % 60:02d}:{n % 60:02d} web1 app[{100 + n}]: {text}"


def test_first_run_learns_then_new_error_templates_are_reported_with_an_example(zenctl, tmp_path):
    log = tmp_path / "app.log"
    append(log, *(syslog(n, f"request {n} served in {n} ms") for n in range(50)),
           syslog(50, "error: connection to db1 lost"))
    cfg = config(zenctl, {"name": "app", "path": str(log), "format": "syslog"})
    code, found = scan(zenctl, cfg)
    assert code == 0, found
    assert "first run: learning" in found["logs:app"]["message"] and found["logs:app"]["value"] == 51
    assert not [c for c in found if ":new:" in c]

    code, found = scan(zenctl, cfg)  # nothing new: state carried across runs
    assert code == 0 and "nothing new" in found["logs:app"]["message"]

    append(log, syslog(60, "error: connection to db2 lost"), syslog(61, "request 7 served in 3 ms"),
           syslog(62, "error: certificate for api.example.org expired on 2026-11-01"))
    code, found = scan(zenctl, cfg)
    assert code == 1, found
    assert found["logs:app"]["value"] == 3
    (new,) = [f for c, f in found.items() if ":new:" in c]
    assert new["status"] == "warning" and "certificate for" in new["evidence"]["template"]
    assert new["evidence"]["example"] == f"{log}:54: {syslog(62, 'error: certificate for api.example.org expired on 2026-11-01')}"


def test_a_spike_is_judged_against_the_templates_own_baseline(zenctl, tmp_path):
    log = tmp_path / "app.log"
    cfg = config(zenctl, {"name": "app", "path": str(log), "format": "syslog"},
                 extra="    spike: {min_runs: 3, min_count: 10}\n")
    append(log, syslog(0, "started"))
    scan(zenctl, cfg)  # the first run: a backlog, no baseline
    n = 1
    for _ in range(4):
        append(log, *(syslog(n + i, f"warning: queue q{i} is slow") for i in range(3)))
        n += 3
        code, found = scan(zenctl, cfg)
        assert not [c for c in found if ":spike:" in c], found
    append(log, *(syslog(n + i, f"warning: queue q{i} is slow") for i in range(40)))
    code, found = scan(zenctl, cfg)
    (spike,) = [f for c, f in found.items() if ":spike:" in c]
    assert code == 1 and spike["status"] == "warning"
    assert spike["evidence"]["count"] == 40 and spike["evidence"]["baseline_runs"] >= 3
    assert spike["value"] > spike["threshold"] >= 3 * spike["evidence"]["baseline_mean"]


def test_spike_arithmetic():
    settings = SimpleNamespace(factor=3.0, sigma=3.0, min_count=10, min_runs=3, alpha=0.5, min_level="warning")
    templates = {"t": {"level": "error"}, "i": {"level": "info"}}
    baseline: dict = {}
    for _ in range(4):
        spikes, baseline = judge_spikes(baseline, Counter(t=10, i=10), templates, 3600, settings, True, True)
        assert spikes == []
    assert baseline["t"] == [10.0, 0.0, 4] and "i" not in baseline  # info templates are not followed
    spikes, after = judge_spikes(baseline, Counter(t=31), templates, 3600, settings, True, True)
    assert [s["id"] for s in spikes] == ["t"] and spikes[0]["threshold"] == 30.0
    spikes, _ = judge_spikes(baseline, Counter(t=29), templates, 3600, settings, True, True)
    assert spikes == []
    spikes, same = judge_spikes(baseline, Counter(t=500), templates, 3600, settings, False, False)
    assert spikes == [] and same == baseline  # a backlog run neither judges nor learns


def test_tracebacks_are_grouped_by_type_and_innermost_frame(zenctl, tmp_path):
    log = tmp_path / "app.log"

    def traceback(n: int, exc: str, func: str) -> list[str]:
        return [f"2026-11-25 10:00:{n:02d},000 ERROR worker: job {n} failed", "Traceback (most recent call last):",
                '  File "/srv/app/jobs.py", line 10, in run', "    step()",
                f'  File "/srv/app/steps.py", line 20, in {func}', "    do()", f"{exc}: job {n}"]

    append(log, "2026-11-25 10:00:00,000 INFO worker: started")
    cfg = config(zenctl, {"name": "app", "path": str(log), "format": "python"})
    scan(zenctl, cfg)
    append(log, *traceback(1, "KeyError", "load"), *traceback(2, "KeyError", "load"),
           *traceback(3, "ValueError", "parse"))
    code, found = scan(zenctl, cfg)
    groups = {c: f for c, f in found.items() if ":traceback:" in c}
    (keyerror,) = groups.values()  # the last traceback was written just now and may still grow: it waits
    assert keyerror["check"] == "logs:app:traceback:KeyError@/srv/app/steps.py:load"
    assert keyerror["evidence"]["count"] == 2 and keyerror["status"] == "warning"
    aged = time.time() - 60
    os.utime(log, (aged, aged))  # its writer is done with it
    code, found = scan(zenctl, cfg)
    (valueerror,) = [f for c, f in found.items() if ":traceback:" in c]
    assert valueerror["check"] == "logs:app:traceback:ValueError@/srv/app/steps.py:parse"
    assert valueerror["evidence"]["count"] == 1 and valueerror["status"] == "warning"
    assert valueerror["evidence"]["example"].startswith(f"{log}:16: 2026-11-25 10:00:03,000 ERROR")
    append(log, *traceback(4, "KeyError", "load"))
    os.utime(log, (aged, aged))
    code, found = scan(zenctl, cfg)
    assert found["logs:app:traceback:KeyError@/srv/app/steps.py:load"]["status"] == "ok"  # known by now


def test_errors_other_agents_act_on_name_their_target(zenctl, tmp_path):
    log = tmp_path / "app.log"
    append(log, syslog(0, "started"))
    cfg = config(zenctl, {"name": "app", "path": str(log), "format": "syslog"})
    scan(zenctl, cfg)
    append(log, syslog(1, f"error: write {tmp_path}/data/x.db: No space left on device"),
           syslog(2, f"error: write {tmp_path}/data/y.db: No space left on device"),
           syslog(3, "kernel: Out of memory: Killed process 4242 (java) total-vm:123kB"))
    code, found = scan(zenctl, cfg)
    mount = subprocess.run(["findmnt", "-n", "-o", "TARGET", "--target", str(tmp_path)], capture_output=True,
                           text=True).stdout.strip()
    disk = found[f"logs:app:for:disk:{mount}"]
    assert disk["status"] == "warning" and disk["evidence"]["agent"] == "system_health"
    assert disk["evidence"]["target"] == f"disk:{mount}" and disk["evidence"]["count"] == 2
    assert found["logs:app:for:memory"]["evidence"]["target"] == "memory"
    assert code == 2  # the OOM killer's line is also a new message at critical level


def test_bad_input_is_counted_never_fatal(zenctl, tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"\x00\x01\x02\xff binary\n" + b"A" * (10 * 1024 * 1024) + b"\n" + b"\xc3\x28 bad utf-8\n")
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    cfg = config(zenctl, {"name": "app", "path": str(log)}, {"name": "pipe", "path": str(fifo)},
                 {"name": "gone", "path": str(tmp_path / "missing" / "*.log")})
    code, found = scan(zenctl, cfg)
    assert code == 1, found  # the FIFO is a warning; the rest is fine
    app = found["logs:app"]
    assert app["status"] == "ok" and app["value"] == 3
    assert {k: app["evidence"][k] for k in ("truncated", "invalid_utf8", "binary")} == \
        {"truncated": 1, "invalid_utf8": 2, "binary": 1}
    assert found["logs:pipe"]["status"] == "warning" and "not a regular file" in found["logs:pipe"]["message"]
    assert found["logs:gone"]["status"] == "ok"


def test_config_errors_name_the_key(zenctl, tmp_path):
    for source, words in (({"name": "x", "path": "relative.log"}, "absolute"),
                          ({"name": "x", "path": "/l", "format": "regex"}, "needs a pattern"),
                          ({"name": "x", "path": "/l", "format": "regex", "pattern": "(?P<msg>"}, "not a valid"),
                          ({"name": "x", "path": "/l", "timezone": "Mars/Olympus"}, "unknown time zone"),
                          ({"name": "a b", "path": "/l"}, "letters")):
        done = zenctl("logs", "scan", "-c", str(config(zenctl, source)))
        assert done.returncode == 3 and words in done.stderr and "sources" in done.stderr, (source, done.stderr)
        assert "Traceback" not in done.stderr


def test_helpers():
    assert guess_level("Connection refused") == "error" and guess_level("kernel panic - not syncing") == "critical"
    assert guess_level("all fine") is None
    assert mount_of("nothing here") == "/"


def test_a_tripped_jail_is_a_security_finding_with_a_ban_proposal_and_in_the_report(zenctl, tmp_path):
    import time

    log = tmp_path / "auth.log"
    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
    append(log, *(f"{stamp} web1 sshd[{100 + n}]: Failed password for root from 203.0.113.9 port {4000 + n} ssh2"
                  for n in range(6)))
    cfg = config(zenctl, {"name": "auth", "path": str(log), "format": "syslog", "timezone": "UTC"})
    done = zenctl("logs", "scan", "-c", str(cfg), "--json", "--dry-run")
    assert done.returncode == 2, done.stdout + done.stderr
    out = json.loads(done.stdout)
    (trip,) = [f for f in out["findings"] if f["security"]]
    assert trip["check"] == "logs:security:sshd:203.0.113.9" and trip["status"] == "critical"
    assert trip["evidence"]["count"] == 6 and all("Failed password" in line for line in trip["evidence"]["lines"])
    (action,) = out["actions"]
    assert (action["kind"], action["target"], action["check"]) == ("security.block_ip", "203.0.113.9", trip["check"])
    assert action["mode"] == "approve" and action["params"]["bantime"] == 600
    code, report = zenctl.json("logs", "report")
    assert [row["ip"] for row in report["security"]] == ["203.0.113.9"]
    assert "Security incidents" in zenctl("logs", "report").stdout


def test_an_edited_state_is_never_fatal(zenctl, tmp_path):
    import sqlite3

    log = tmp_path / "app.log"
    append(log, syslog(0, "started"))
    cfg = config(zenctl, {"name": "app", "path": str(log), "format": "syslog"})
    scan(zenctl, cfg)
    with sqlite3.connect(zenctl.db) as conn:
        conn.execute("UPDATE agent_state SET value = ? WHERE key = 'source:app'",
                     (json.dumps({"cursors": 7, "baseline": {"x": "y"}, "levels": [], "runs": "many", "last": "no"}),))
        conn.execute("UPDATE agent_state SET value = '\"junk\"' WHERE key = 'miner:app'")
    append(log, syslog(1, "error: still going"))
    code, found = scan(zenctl, cfg)
    assert found["logs:app"]["status"] == "ok" and found["logs:app"]["value"] == 2, found  # read as new
