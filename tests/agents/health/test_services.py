"""Service checks of every type against real peers on 127.0.0.1, and the repairs they call for: a killed web
server restarted, a certificate renewed, PostgreSQL sessions idle in transaction terminated, a leaking process
restarted."""

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import redis

from tests.conftest import CALM, _service_or_skip
from tests.servers import HttpsServer, Tarpit, free_port, self_signed

pytestmark = pytest.mark.integration


def services(*entries: dict, extra: str = "") -> str:
    return CALM + "    services: " + json.dumps(list(entries)) + "\n" + extra


def findings(out: dict) -> dict[str, dict]:
    return {f["check"]: f for f in out["findings"]}


def start_web(port: int, pidfile) -> str:
    """The shell command that starts a real web server in the background and writes its pid file."""
    return (f"setsid {sys.executable} -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 & "
            f"echo $! > {pidfile}")


def wait_port(port: int, seconds: float = 10) -> None:
    import socket

    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def kill_pidfile(pidfile) -> None:
    try:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def test_killed_web_server_is_restarted_by_its_http_tcp_and_process_checks(zenctl, tmp_path):
    port, pidfile = free_port(), tmp_path / "web.pid"
    restart = start_web(port, pidfile)
    subprocess.run(["sh", "-c", restart], check=True)
    try:
        wait_port(port)
        config = zenctl.config(services(
            {"name": "web", "type": "http", "url": f"http://127.0.0.1:{port}/", "body": "Directory listing",
             "latency_critical_ms": 5000, "restart": restart, "restart_wait": 10},
            {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": port},
            {"name": "proc", "type": "process", "pidfile": str(pidfile)},
            {"name": "pattern", "type": "process", "pattern": f"http.server {port}", "min": 1, "max": 1}))
        code, out = zenctl.json("health", "check", "-c", str(config))
        seen = findings(out)
        assert code == 0, out
        assert seen["service:web"]["message"].startswith(f"web: http://127.0.0.1:{port}/: HTTP 200 in ")
        assert seen["service:port"]["message"].startswith(f"port: 127.0.0.1:{port} accepts connections")
        assert seen["service:proc"]["evidence"]["count"] == 1
        assert seen["service:pattern"]["evidence"]["pids"] == [int(pidfile.read_text())]

        kill_pidfile(pidfile)
        time.sleep(0.2)
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
        seen = findings(out)
        assert code == 2
        assert "Connection refused" in seen["service:web"]["message"] and seen["service:web"]["status"] == "critical"
        assert seen["service:proc"]["message"] == f"proc: 0 process(es) match pid file {pidfile}, want at least 1"
        assert [(a["kind"], a["status"]) for a in out["actions"]] == [("service.restart", "previewed")]

        code, out = zenctl.json("health", "check", "-c", str(config))
        action = out["actions"][0]
        assert action["status"] == "applied", action
        assert findings(out)["service:web"]["status"] == "ok"  # repaired by the restart
        wait_port(port)
    finally:
        kill_pidfile(pidfile)


def test_http_status_body_and_latency_are_judged(zenctl, tmp_path):
    cert, key = self_signed(tmp_path, days=90)
    with HttpsServer(cert, key) as server:
        url = f"https://127.0.0.1:{server.port}/healthz"
        config = zenctl.config(services(
            {"name": "strict", "type": "http", "url": url},
            {"name": "pinned", "type": "http", "url": url + "?full=1", "ca_file": cert, "body": '"status": "ok"'},
            {"name": "unverified", "type": "http", "url": url, "verify": False},
            {"name": "wrongstatus", "type": "http", "url": url, "verify": False, "status": [204]},
            {"name": "wrongbody", "type": "http", "url": url, "verify": False, "body": "healthy"},
            {"name": "slow", "type": "http", "url": url, "verify": False, "latency_warning_ms": 0.001,
             "severity": "warning"}))
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
    seen = findings(out)
    assert seen["service:strict"]["status"] == "critical"
    assert "certificate not trusted: self-signed certificate" in seen["service:strict"]["message"]
    assert seen["service:pinned"]["status"] == "ok" and seen["service:unverified"]["status"] == "ok"
    assert "HTTP 200 OK, expected 204" in seen["service:wrongstatus"]["message"]
    assert "body does not match 'healthy'" in seen["service:wrongbody"]["message"]
    assert seen["service:slow"]["status"] == "warning" and "slower than 0.001 ms" in seen["service:slow"]["message"]
    perf = seen["service:pinned"]["evidence"]["perfdata"]
    assert [m["label"] for m in perf] == ["time", "size"] and perf[1]["value"] == len(b'{"status": "ok"}')


PLUGINS = "/usr/lib/nagios/plugins"  # Debian's monitoring-plugins-basic, installed by .ci/run


def plugin(name: str) -> str:
    """The path of a real Nagios plugin (skipped when the package is missing, failed under CI)."""
    path = os.path.join(PLUGINS, name)
    if not os.access(path, os.X_OK):
        _service_or_skip(f"{path} (apt-get install monitoring-plugins-basic)", FileNotFoundError(path))
    return path


def script(tmp_path, name: str, output: str, code: int = 0) -> str:
    """A plugin that prints `output` as is and exits with `code`."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\ncat <<'END'\n{output}END\nexit {code}\n")
    path.chmod(0o755)
    return str(path)


def test_real_nagios_plugins_are_read_as_the_plugin_guidelines_say(zenctl, tmp_path):
    cert, key = self_signed(tmp_path, days=90)
    closed = free_port()
    long = script(tmp_path, "long", "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
                                    "/ 15272 MB (77%);\n/boot 68 MB (69%); | /boot=68MB;88;93;0;98\n"
                                    "'var log'=818MB;970;975;0;980 broken=;1 also\n", code=1)
    with HttpsServer(cert, key) as server:
        http = f"{plugin('check_http')} -I 127.0.0.1 -p {server.port} -S -u /healthz -w 5 -c 10"
        config = zenctl.config(services(
            {"name": "load", "command": f"{plugin('check_load')} -w 1000,1000,1000 -c 2000,2000,2000"},
            {"name": "disk", "command": f"{plugin('check_disk')} -w 10% -c 5% -p /"},
            {"name": "dummy", "command": f"{plugin('check_dummy')} 1 'half there'"},
            {"name": "down", "command": f"{plugin('check_dummy')} 2 'gone'"},
            {"name": "web", "command": http},
            {"name": "pattern", "command": http + " -r nomatch"},
            {"name": "port", "command": f"{plugin('check_tcp')} -H 127.0.0.1 -p {closed}"},
            {"name": "long", "command": long}))
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
    seen = findings(out)

    load = seen["service:load"]
    assert load["status"] == "ok" and load["message"].startswith("load: LOAD OK - total load average: ")
    assert "|" not in load["message"] and "load1=" not in load["message"]
    assert [(m["label"], m["unit"], m["warning"], m["critical"], m["min"], m["max"])
            for m in load["evidence"]["perfdata"]] == [(f"load{n}", "", 1000, 2000, 0, None) for n in (1, 5, 15)]
    assert load["value"] == load["evidence"]["perfdata"][0]["value"] >= 0

    (disk,) = seen["service:disk"]["evidence"]["perfdata"]
    total = os.statvfs("/").f_blocks * os.statvfs("/").f_frsize
    assert disk["label"] == "/" and disk["unit"] == "B" and disk["min"] == 0
    assert 0 < disk["value"] <= disk["max"] <= total and disk["warning"] < disk["critical"] <= disk["max"]

    assert seen["service:dummy"]["status"] == "warning" and seen["service:dummy"]["message"] == \
        "dummy: WARNING: half there" and seen["service:dummy"]["evidence"]["perfdata"] == []
    assert seen["service:down"]["status"] == "critical" and seen["service:down"]["evidence"]["down"]

    web = seen["service:web"]
    assert web["status"] == "ok" and web["message"].startswith("web: HTTP OK: HTTP/1.0 200 OK - ")
    time_, size = web["evidence"]["perfdata"]
    assert (time_["label"], time_["unit"], time_["warning"], time_["critical"], time_["max"]) == \
        ("time", "s", 5, 10, 10) and 0 < time_["value"] < 10
    assert (size["label"], size["unit"]) == ("size", "B") and size["value"] > len(b'{"status": "ok"}')
    assert seen["service:pattern"]["status"] == "critical" and "pattern not found" in \
        seen["service:pattern"]["message"] and len(seen["service:pattern"]["evidence"]["perfdata"]) == 2
    assert seen["service:port"]["status"] == "critical" and \
        seen["service:port"]["message"] == f"port: connect to address 127.0.0.1 and port {closed}: Connection refused"

    long = seen["service:long"]
    assert long["status"] == "warning" and long["message"] == "long: DISK OK - free space: / 3326 MB (56%);"
    assert long["evidence"]["long_output"] == "/ 15272 MB (77%);\n/boot 68 MB (69%);"
    assert [(m["label"], m["value"], m["max"]) for m in long["evidence"]["perfdata"]] == \
        [("/", 2643, 5968), ("/boot", 68, 98), ("var log", 818, 980)]
    assert long["evidence"]["perfdata_malformed"] == {
        "count": 2, "samples": ["broken=;1 (value is not a number or U)", "also (not 'label'=value)"]}


def test_a_plugin_that_prints_only_to_stderr_is_heard_and_stdout_is_its_output(zenctl, tmp_path):
    config = zenctl.config(services(
        {"name": "crash", "command": "echo 'cannot open /etc/x: Permission denied' >&2; exit 3"},
        {"name": "noisy", "command": "echo 'deprecated option' >&2; echo 'OK fine|a=1'"}))
    code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
    seen = findings(out)
    assert seen["service:crash"]["status"] == "unknown"
    assert seen["service:crash"]["message"] == "crash: cannot open /etc/x: Permission denied"
    noisy = seen["service:noisy"]
    assert noisy["message"] == "noisy: OK fine" and noisy["evidence"]["stderr"] == "deprecated option"
    assert noisy["evidence"]["perfdata"][0]["value"] == 1


def test_tls_expiry_from_a_server_and_from_a_file_and_renewal(zenctl, tmp_path):
    cert, key = self_signed(tmp_path, days=3)
    fresh, _ = self_signed(tmp_path, days=90, stem="fresh")
    live = tmp_path / "live.crt"
    live.write_bytes(open(cert, "rb").read())
    renew = f"cp {fresh} {live}"
    with HttpsServer(cert, key) as server:
        config = zenctl.config(services(
            {"name": "site", "type": "tls", "host": "127.0.0.1", "port": server.port},
            {"name": "file", "type": "tls", "file": str(live), "renew": renew, "renew_days": 30},
            {"name": "far", "type": "tls", "file": fresh}))
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
        seen = findings(out)
        assert code == 2
        assert seen["service:site"]["status"] == "critical"
        assert f"127.0.0.1:{server.port}: certificate expires in 2.9" in seen["service:site"]["message"] or \
            f"127.0.0.1:{server.port}: certificate expires in 3.0" in seen["service:site"]["message"]
        assert seen["service:far"]["status"] == "ok"
        assert [(a["kind"], a["target"], a["status"]) for a in out["actions"]] == [("tls.renew", "file",
                                                                                    "previewed")]
        assert live.read_bytes() == open(cert, "rb").read()  # a dry-run renews nothing

        code, out = zenctl.json("health", "check", "-c", str(config))
    action = out["actions"][0]
    assert action["status"] == "applied", action
    assert findings(out)["service:file"]["status"] == "ok"
    assert live.read_bytes() == open(fresh, "rb").read()


def test_renewal_that_does_not_move_the_expiry_fails_verification(zenctl, tmp_path):
    cert, _ = self_signed(tmp_path, days=3)
    config = zenctl.config(services({"name": "file", "type": "tls", "file": cert, "renew": "true"}))
    code, out = zenctl.json("health", "check", "-c", str(config))
    action = out["actions"][0]
    assert action["kind"] == "tls.renew" and action["status"] == "failed"
    assert action["message"].startswith("verify failed: the certificate still expires in 2.9") or \
        action["message"].startswith("verify failed: the certificate still expires in 3.0")


@pytest.fixture
def idle_sessions(pg_dsn):
    """Two sessions left idle in transaction: one of the role zenctl may reset, one of another role."""
    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute("DROP ROLE IF EXISTS zenctl_app")
    admin.execute("CREATE ROLE zenctl_app LOGIN")
    database = admin.info.dbname
    app = psycopg.connect(pg_dsn, user="zenctl_app")
    other = psycopg.connect(pg_dsn)
    for conn in (app, other):
        conn.execute("SELECT 1")  # opens a transaction, then stays idle in it
    yield {"dsn": pg_dsn, "app": app, "other": other, "database": database,
           "app_pid": app.info.backend_pid, "other_pid": other.info.backend_pid}
    for conn in (app, other):
        conn.close()
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'zenctl_app'")
    admin.execute("DROP ROLE IF EXISTS zenctl_app")
    admin.close()


def test_postgres_check_and_reset_of_idle_in_transaction_sessions(zenctl, idle_sessions):
    time.sleep(1.2)
    config = zenctl.config(services(
        {"name": "db", "type": "postgres", "dsn": idle_sessions["dsn"], "idle_in_transaction_warning": 1,
         "reset_idle_after": 1, "reset_roles": ["zenctl_app"]}))
    code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
    seen = findings(out)["service:db"]
    assert seen["status"] == "warning"
    assert "oldest idle in transaction" in seen["message"] and "connections (" in seen["message"]
    assert [s["pid"] for s in seen["evidence"]["reset_candidates"]] == [idle_sessions["app_pid"]]
    assert [a["kind"] for a in out["actions"]] == ["db.reset_connections"]
    assert f"{idle_sessions['app_pid']} (zenctl_app, idle" in out["actions"][0]["preview"]

    code, out = zenctl.json("health", "check", "-c", str(config))
    action = out["actions"][0]
    assert action["status"] == "applied", action
    assert action["message"].startswith(f"terminated 1 session(s) idle in transaction in "
                                        f"{idle_sessions['database']}: pids {idle_sessions['app_pid']}")
    with pytest.raises(psycopg.OperationalError):
        idle_sessions["app"].execute("SELECT 1")
    idle_sessions["other"].execute("SELECT 1")  # another role's session: untouched
    assert "postgres@127.0.0.1" not in json.dumps(out) or "***" not in json.dumps(out)
    rows = zenctl("audit", "--json").stdout
    assert idle_sessions["dsn"] not in json.dumps([a["params"] for a in out["actions"]])
    assert "zenctl_app" in rows


def test_postgres_down_and_redis_memory(zenctl, redis_url):
    client = redis.Redis.from_url(redis_url)
    used = client.info("memory")["used_memory"]
    before = client.config_get("maxmemory")["maxmemory"]
    client.config_set("maxmemory", int(used * 1.02))
    try:
        config = zenctl.config(services(
            {"name": "cache", "type": "redis", "url": redis_url},
            {"name": "nodb", "type": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
             "timeout": 3}))
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
    finally:
        client.config_set("maxmemory", before)
    seen = findings(out)
    assert seen["service:cache"]["status"] == "critical" and "maxmemory used" in seen["service:cache"]["message"]
    assert seen["service:nodb"]["status"] == "critical" and "cannot connect" in seen["service:nodb"]["message"]
    code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
    assert findings(out)["service:cache"]["status"] == "ok"
    assert findings(out)["service:cache"]["message"].startswith("cache: PONG")


def test_hanging_checks_are_cut_at_their_timeout_and_the_rest_still_report(zenctl):
    with Tarpit() as pit:
        entries = [{"name": f"hang{i}", "type": "http", "url": f"http://127.0.0.1:{pit.port}/", "timeout": 1}
                   for i in range(5)]
        entries += [{"name": "tlshang", "type": "tls", "host": "127.0.0.1", "port": pit.port, "timeout": 1},
                    {"name": "sleeper", "type": "command", "command": "sleep 30", "timeout": 1},
                    {"name": "quick", "command": "echo fine"}]
        config = zenctl.config(services(*entries))
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run", timeout=20)
    seen = findings(out)
    for i in range(5):
        assert seen[f"service:hang{i}"]["status"] == "critical"
        assert seen[f"service:hang{i}"]["message"].endswith(("timed out", "no answer within 1 s"))
    assert seen["service:tlshang"]["status"] == "critical"
    assert seen["service:sleeper"]["message"] == "sleeper: check timed out after 1 s (killed)"
    assert seen["service:quick"]["status"] == "ok"


LEAKER = """
import sys, time
hold = []
open(sys.argv[1], "w").write("ready")
while True:
    hold.append(bytearray(4 << 20))
    time.sleep(0.1)
"""


def test_a_leaking_process_is_restarted_after_approval(zenctl, tmp_path):
    script = tmp_path / "leaker.py"
    script.write_text(LEAKER)
    ready = tmp_path / "ready"
    pidfile = tmp_path / "leaker.pid"
    start = f"setsid {sys.executable} {script} {ready} >/dev/null 2>&1 & echo $! > {pidfile}"
    stop = f"kill $(cat {pidfile})"  # not pkill -f: the restart shell's own command line names the script
    subprocess.run(["sh", "-c", start], check=True)
    try:
        while not ready.exists():
            time.sleep(0.05)
        config = zenctl.config(services({
            "name": "leaker", "type": "process", "pattern": str(script), "leak_mb_per_hour": 1000,
            "leak_window": 6, "restart": f"{stop}; rm -f {ready}; {start}", "restart_wait": 10}))
        for _ in range(12):  # until 4 samples span half the window (runs take ~0.5 s each)
            code, out = zenctl.json("health", "check", "-c", str(config))
            leak = findings(out)["memory:leaker"]
            if leak["evidence"]["judged"]:
                break
            time.sleep(0.5)
        assert leak["status"] == "warning" and "MB/h steadily" in leak["message"], leak["evidence"]
        action = out["actions"][0]
        assert (action["kind"], action["status"]) == ("service.memory_leak", "awaiting_approval")
        old_pids = action["params"]["pids"]
        done = zenctl("approve", action["approval_id"], "--run", "-c", str(config))
        assert done.returncode in (0, 1), done.stdout + done.stderr
        out = json.loads(zenctl("audit", "--json", "--event", "action").stdout)
        applied = [e for e in out["entries"] if e["event"] == "action.applied"]
        assert applied and "restarted leaker" in applied[-1]["message"], [e["message"] for e in out["entries"]]
        code, out = zenctl.json("health", "check", "-c", str(config), "--dry-run")
        assert set(findings(out)["service:leaker"]["evidence"]["pids"]).isdisjoint(old_pids)
    finally:
        subprocess.run(["sh", "-c", stop])
