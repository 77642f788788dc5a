"""Governance through the installed zenctl: approvals, the escalation ladder with real alert peers, silences,
stop/resume, safe mode and rollback."""

import json
import sqlite3
import stat
import subprocess
import time

import pytest

from tests.conftest import CALM, ZENCTL
from tests.servers import PagerDutyEvents, SmtpSink, WebhookReceiver, free_port

pytestmark = pytest.mark.integration
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def paths_config(*entries: str, extra: str = "") -> str:
    return CALM + "    paths:\n" + "".join(entries) + extra


def service_config(check: str, restart: str | None = None, extra: str = "", restart_timeout: float = 10) -> str:
    text = CALM + f"    services:\n      - name: web\n        command: {json.dumps(check)}\n        timeout: 5\n"
    if restart:
        text += f"        restart: {json.dumps(restart)}\n        restart_timeout: {restart_timeout}\n"
    return text + extra


def audit_events(zenctl, event: str) -> list[dict]:
    _, out = zenctl.json("audit", "--event", event)
    return out["entries"]


def db_rows(zenctl, sql: str, args=()) -> list[tuple]:
    with sqlite3.connect(zenctl.db) as conn:
        return conn.execute(sql, args).fetchall()


# --- approvals -----------------------------------------------------------------------------------------------

def test_approval_request_approve_and_run(zenctl, tmp_path):
    target = tmp_path / "data"
    target.mkdir(mode=0o700)
    config = zenctl.config(paths_config(f"      - path: {target}\n        mode: \"0750\"\n",
                                        extra="policy:\n  modes:\n    fs.chmod: approve\n"))
    code, first = zenctl.json("health", "check", "-c", str(config))
    assert code == 1 and first["actions"][0]["status"] == "awaiting_approval"
    zenctl("health", "check", "-c", str(config))  # the same problem again: updates, does not add
    _, listed = zenctl.json("approvals", "list")
    assert len(listed["approvals"]) == 1
    request = listed["approvals"][0]
    assert request["requests"] == 2 and request["kind"] == "fs.chmod" and len(request["plan_hash"]) == 64
    assert request["preview"] == f"mode of {target} 0700 -> 0750"
    assert stat.S_IMODE(target.stat().st_mode) == 0o700

    code, shown = zenctl.json("approvals", "show", request["id"])
    assert code == 0 and shown["params"]["mode"] == 0o750

    code, done = zenctl.json("approve", request["id"], "--comment", "reviewed", "--run", "-c", str(config))
    assert code == 0, done
    assert done["approval"]["status"] == "executed" and done["approval"]["decided_by"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o750

    again = zenctl("approve", request["id"])
    assert again.returncode == 3 and "already executed" in again.stderr and "Traceback" not in again.stderr
    unknown = zenctl("approve", "deadbeef")
    assert unknown.returncode == 3 and "no approval request 'deadbeef'" in unknown.stderr


def _pending_chmod(zenctl, tmp_path):
    """A directory whose mode fix waits for approval: (the directory, the config, the request id)."""
    target = tmp_path / "data"
    target.mkdir(mode=0o700)
    config = zenctl.config(paths_config(f"      - path: {target}\n        mode: \"0750\"\n",
                                        extra="policy:\n  modes:\n    fs.chmod: approve\n"))
    zenctl("health", "check", "-c", str(config))
    return target, config, zenctl.json("approvals", "list")[1]["approvals"][0]["id"]


def test_approval_is_void_when_the_plan_changed(zenctl, tmp_path):
    target, config, old = _pending_chmod(zenctl, tmp_path)
    assert zenctl("approve", old).returncode == 0
    target.chmod(0o701)  # the world changed after the approval: the plan is now 0701 -> 0750
    code, run = zenctl.json("health", "check", "-c", str(config))
    assert stat.S_IMODE(target.stat().st_mode) == 0o701, "a void approval must not apply"
    assert run["actions"][0]["status"] == "awaiting_approval" and run["actions"][0]["approval_id"] != old
    _, everything = zenctl.json("approvals", "list", "--all")
    statuses = {a["id"]: a["status"] for a in everything["approvals"]}
    assert statuses[old] == "void" and statuses[run["actions"][0]["approval_id"]] == "pending"
    assert any(old in e["message"] for e in audit_events(zenctl, "approval.void"))


def test_reject_expiry_and_approvers(zenctl, tmp_path):
    target = tmp_path / "data"
    target.mkdir(mode=0o700)
    base = paths_config(f"      - path: {target}\n        mode: \"0750\"\n")
    config = zenctl.config(base + "policy:\n  approval_expiry: 2s\n  modes:\n    fs.chmod: approve\n")
    zenctl("health", "check", "-c", str(config))
    first = zenctl.json("approvals", "list")[1]["approvals"][0]["id"]
    done = zenctl("reject", first, "-m", "not now", "-c", str(config))
    assert done.returncode == 0, done.stderr
    _, run = zenctl.json("health", "check", "-c", str(config))
    assert run["actions"][0]["status"] == "rejected"  # not asked again while the rejection stands
    time.sleep(2.2)
    zenctl("health", "check", "-c", str(config))
    second = zenctl.json("approvals", "list")[1]["approvals"][0]["id"]
    assert second != first
    time.sleep(2.2)
    expired = zenctl("approve", second, "-c", str(config))
    assert expired.returncode == 3 and "expired" in expired.stderr

    zenctl("health", "check", "-c", str(config))
    third = zenctl.json("approvals", "list")[1]["approvals"][0]["id"]
    strict = zenctl.config(base + "policy:\n  approvers: [nobody-here]\n  modes:\n    fs.chmod: approve\n", "s.yaml")
    refused = zenctl("approve", third, "-c", str(strict))
    assert refused.returncode == 3 and "may not decide approvals" in refused.stderr


def test_two_concurrent_approvals_record_one_decision(zenctl, tmp_path):
    _, _, request = _pending_chmod(zenctl, tmp_path)
    procs = [subprocess.Popen([ZENCTL, "approve", request, "-m", f"person {n}"], env=zenctl.env, cwd=zenctl.tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    codes = sorted(p.wait(30) for p in procs)
    assert codes == [0, 3]
    assert len(audit_events(zenctl, "approval.approved")) == 1


# --- escalation ladder and alerts ----------------------------------------------------------------------------

def test_the_whole_ladder_with_real_alert_peers(zenctl, tmp_path):
    healthy = tmp_path / "healthy"
    with SmtpSink() as smtp, PagerDutyEvents() as pd, WebhookReceiver() as hook:
        config = zenctl.config(service_config(
            f"test -f {healthy} || {{ echo 'web is down'; exit 2; }}", restart="echo 'restart failed'; exit 1",
            extra=(f"policy:\n  circuit_failures: 10\nescalation:\n  backoff_base: 1s\n  flap_hold: 0\n"
                   f"alerts:\n  email:\n    to: [ops@example.com]\n    host: 127.0.0.1\n    port: {smtp.port}\n"
                   f"  pagerduty:\n    enabled: true\n    url: {pd.url}\n  webhook:\n    url: {hook.url}\n")))
        env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY}
        statuses = []
        for _ in range(6):
            code, run = zenctl.json("health", "check", "-c", str(config), env=env)
            statuses.append([(a["status"], a["gate"]) for a in run["actions"]])
            time.sleep(1.1)
        # level 1, then retries 1..3 with backoff (1 s, 2 s, 4 s: the 4 s one waits, and says so)
        assert statuses[0] == [("failed", "")]
        assert ("deferred", "backoff") in [s[0] for s in statuses]
        for _ in range(10):
            code, run = zenctl.json("health", "check", "-c", str(config), env=env)
            statuses.append([(a["status"], a["gate"]) for a in run["actions"]])
            if _safe_mode(zenctl):
                break
            time.sleep(1.1)
        failed = sum(s == [("failed", "")] for s in statuses)
        assert failed == 4, statuses  # 1 + 3 retries, then no more
        # level 3: one alert per channel; level 4: safe mode after more than 3 failed repairs in an hour
        assert len(smtp.messages) >= 1 and "service:web" in smtp.messages[0][2]
        triggers = [r for r in pd.requests if r["event_action"] == "trigger"]
        problem_key = [r["dedup_key"] for r in triggers if r["dedup_key"].endswith("system_health:service:web")]
        assert len(problem_key) == 1, "deduplicated: one trigger per problem"
        assert _safe_mode(zenctl)
        assert any(r["problem"] == "zenctl:safe_mode" for r in hook.requests)
        code, run = zenctl.json("health", "check", "-c", str(config), env=env)
        assert run["actions"][0]["status"] in ("held", "deferred")

        assert zenctl("resume", "-c", str(config), env=env).returncode == 0
        assert not _safe_mode(zenctl)
        healthy.touch()  # the problem clears: resolve goes out with the same dedup key
        code, run = zenctl.json("health", "check", "-c", str(config), env=env)
        assert code == 0
        resolves = [r for r in pd.requests if r["event_action"] == "resolve"]
        assert {r["dedup_key"] for r in resolves} >= {problem_key[0]}
        assert pd.incidents[problem_key[0]] == "resolved"
        assert any(r["event"] == "resolve" and r["problem"] == "system_health:service:web" for r in hook.requests)
        assert any("RESOLVED" in m[2] for m in smtp.messages)
        problem = db_rows(zenctl, "SELECT state, attempts FROM problems WHERE check_name = 'service:web'")
        assert problem == [("resolved", 0)], "attempts reset when the problem clears"


def _safe_mode(zenctl) -> bool:
    _, status = zenctl.json("status")
    return bool(status["safe_mode"])


def test_alert_channel_down_then_back_loses_nothing(zenctl):
    port = free_port()
    config = zenctl.config(service_config("echo 'db unreachable'; exit 2",
                                          extra=f"alerts:\n  webhook:\n    url: http://127.0.0.1:{port}/hook\n"))
    code, _ = zenctl.json("health", "check", "-c", str(config))
    assert code == 2
    _, status = zenctl.json("status")
    pending = [a for a in status["undelivered_alerts"] if a["channel"] == "webhook"]
    assert pending and pending[0]["status"] == "pending" and "Connection refused" in pending[0]["last_error"]
    with WebhookReceiver(port) as hook:
        zenctl("health", "check", "-c", str(config))
        assert [r["event"] for r in hook.requests] == ["trigger"]
        assert hook.requests[0]["problem"] == "system_health:service:web"
    _, status = zenctl.json("status")
    assert not status["undelivered_alerts"]


def test_flap_damping_and_silences(zenctl, tmp_path):
    flag = tmp_path / "up"
    with WebhookReceiver() as hook:
        config = zenctl.config(service_config(f"test -f {flag} || exit 2",
                                              extra=f"escalation:\n  flap_hold: 1h\nalerts:\n  webhook:\n"
                                                    f"    url: {hook.url}\n"))
        zenctl("health", "check", "-c", str(config))
        flag.touch()
        zenctl("health", "check", "-c", str(config))  # clears, but not for flap_hold yet
        flag.unlink()
        zenctl("health", "check", "-c", str(config))  # back within the hold: no resolve, no new trigger
        assert [r["event"] for r in hook.requests] == ["trigger"]
        assert audit_events(zenctl, "problem.flap")

        other = zenctl.config(service_config("exit 2", extra=f"alerts:\n  webhook:\n    url: {hook.url}\n")
                              .replace("name: web", "name: api"), "other.yaml")
        added = zenctl.json("silence", "add", "system_health:service:api", "--for", "1h", "--reason", "deploy")[1]
        zenctl("health", "check", "-c", str(other))
        assert all(r["problem"] != "system_health:service:api" for r in hook.requests)
        _, held = zenctl.json("alerts", "list")
        assert held["alerts"] and {a["status"] for a in held["alerts"]} == {"held"}
        assert "deploy" in held["alerts"][0]["held_by"]
        assert zenctl("silence", "remove", added["id"]).returncode == 0
        zenctl("health", "check", "-c", str(other))
        assert any(r["problem"] == "system_health:service:api" for r in hook.requests)


def test_maintenance_window_holds_alerts(zenctl):
    config = zenctl.config(service_config("exit 2", extra='alerts:\n  maintenance:\n    - schedule: "* * * * *"\n'
                                                         '      duration: 2m\n      reason: patching\n'))
    done = zenctl("health", "check", "-c", str(config))
    assert "ALERT" not in done.stderr
    _, held = zenctl.json("alerts", "list")
    assert held["alerts"][0]["status"] == "held" and "patching" in held["alerts"][0]["held_by"]


def test_stderr_alert_is_one_line_and_deduplicated(zenctl):
    config = zenctl.config(service_config("echo 'web down'; exit 2"))
    first = zenctl("health", "check", "-c", str(config), "-q")
    assert first.returncode == 2
    assert [line for line in first.stderr.splitlines() if "ALERT" in line] == [
        "zenctl: ALERT TRIGGER [critical] system_health:service:web: CRITICAL: web: web down "
        "(CRITICAL with no automatic repair)"]
    second = zenctl("health", "check", "-c", str(config), "-q")
    assert "ALERT" not in second.stderr
