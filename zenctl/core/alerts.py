"""Alerts: an outbox in the state file, delivered to email (SMTP), PagerDuty Events API v2, a JSON webhook and
stderr.

Queueing is part of the run's transaction; delivery happens after, one row per channel, so a channel that is down
keeps its rows `pending` and the next run (of any agent) retries them: an alert is never lost. Rows are claimed
before sending so two runs never deliver the same one. Silences and maintenance windows hold rows (`held`): they
are recorded and shown, and released when the silence ends if their problem is still open.

Delivery is bounded, because it holds the run (and its lock) open: the channels are sent in parallel, each
channel's rows in order, all within `alerts.delivery_deadline`; what has not gone out by then stays pending. Only a
2xx answer from the configured URL counts as delivered (redirects are not followed), and at most a few hundred
bytes of an answer are read.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from zenctl.core import audit, untrusted
from zenctl.core.audit import Entry, scrub
from zenctl.core.state import State
from zenctl.core.timeutil import iso
from zenctl.errors import UsageError

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.core.configmodels import Config

COLUMNS = ("id", "problem", "channel", "event", "severity", "summary", "details", "dedup_key", "status", "created",
           "attempts", "last_error", "sent_at", "held_by")
# zenctl's statuses as PagerDuty severities.
_PD_SEVERITY = {"critical": "critical", "unknown": "error", "warning": "warning", "ok": "info"}
ANSWER_BYTES = 300  # of an HTTP answer, read for the error message; the rest is never read


class DeliveryError(Exception):
    """A channel could not take the alert; the row stays pending."""


def channels(config: Config) -> list[str]:
    """The channels alerts go to with this config."""
    alerts = config.alerts
    out = ["stderr"] if alerts.stderr else []
    if alerts.email.to:
        out.append("email")
    if alerts.pagerduty.enabled:
        out.append("pagerduty")
    if alerts.webhook.url:
        out.append("webhook")
    return out


def dedup_key(problem: str) -> str:
    """Stable per host and problem, so PagerDuty folds a repeat into the open incident and a resolve closes it."""
    return f"zenctl/{socket.gethostname()}/{problem}"


def silenced_by(state: State, config: Config, problem: str, now: float) -> str | None:
    """The silence or maintenance window covering `problem` now, described, or None."""
    row = state.conn.execute(
        "SELECT id, match, reason, ends FROM silences WHERE removed IS NULL AND ends > ? ORDER BY ends DESC", (now,)
    ).fetchall()
    for silence_id, match, reason, ends in row:
        if fnmatchcase(problem, match):
            return f"silence {silence_id} until {iso(ends)} ({reason})"
    for window in config.alerts.maintenance:
        if fnmatchcase(problem, window.match):
            opened = _window_open_since(window.schedule, window.duration, now)
            if opened is not None:
                return f"maintenance window {window.schedule!r} until {iso(opened + window.duration)} ({window.reason})"
    return None


def _window_open_since(schedule: str, duration: float, now: float) -> float | None:
    """When the current occurrence of a recurring window opened, if it is open at `now` (local time, as cron)."""
    from datetime import datetime

    from croniter import croniter

    last = croniter(schedule, datetime.fromtimestamp(now).astimezone()).get_prev(float)
    return last if now < last + duration else None


def queue(state: State, config: Config, problem: str, event: str, severity: str, summary: str, details: dict,
          run_id: str | None, now: float) -> None:
    """One row per channel for a trigger or resolve (inside the caller's write transaction)."""
    held = silenced_by(state, config, problem, now)
    status = "held" if held else "pending"
    details = {**details, "host": socket.gethostname(), "problem": problem}
    for channel in channels(config):
        state.conn.execute(
            "INSERT INTO alerts (problem, channel, event, severity, summary, details, dedup_key, status, created, "
            "held_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (problem, channel, event, severity, scrub(summary), json.dumps(details, default=str), dedup_key(problem),
             status, iso(now), held))
    verb = "held" if held else "queued"
    audit.append(state, [Entry(problem.split(":", 1)[0], f"alert.{verb}",
                               f"alert {event} {verb} for {problem}: {summary}" + (f" [{held}]" if held else ""),
                               run_id, {"problem": problem, "event": event, "severity": severity,
                                        "channels": channels(config), "held_by": held})])


def release_held(state: State, config: Config, now: float) -> None:
    """Held rows whose silence is over: pending again if their problem is still open, else dropped (recorded)."""
    if not state.conn.execute("SELECT 1 FROM alerts WHERE status = 'held' LIMIT 1").fetchone():
        return  # the usual case: no write transaction on every run
    with state.write() as conn:
        rows = conn.execute("SELECT id, problem FROM alerts WHERE status = 'held'").fetchall()
        for alert_id, problem in rows:
            if silenced_by(state, config, problem, now):
                continue
            agent, _, check = problem.partition(":")
            open_row = conn.execute("SELECT 1 FROM problems WHERE agent = ? AND check_name = ? AND state != "
                                    "'resolved'", (agent, check)).fetchone()
            conn.execute("UPDATE alerts SET status = ?, last_error = ? WHERE id = ?",
                         ("pending", None, alert_id) if open_row or problem.startswith("zenctl:")
                         else ("dropped", "problem resolved during the silence", alert_id))


def deliver(state: State, config: Config, run_id: str | None, now: float | None = None) -> dict[str, int]:
    """Send every pending row (this run's and earlier runs' leftovers) within the delivery deadline; counts of
    sent and failed (not sent in time counts as failed)."""
    now = time.time() if now is None else now
    release_held(state, config, now)
    if not state.conn.execute("SELECT 1 FROM alerts WHERE status = 'pending' LIMIT 1").fetchone():
        return {"sent": 0, "failed": 0}
    limit = config.alerts.delivery_deadline
    with state.write() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE status = 'pending' AND "
            "(claimed_until IS NULL OR claimed_until < ?) ORDER BY id", (now,)).fetchall()
        rows = [dict(zip(COLUMNS, r)) for r in rows]
        # Claimed for the length of the delivery; a run killed meanwhile frees them after that.
        conn.executemany("UPDATE alerts SET claimed_until = ? WHERE id = ?",
                         [(now + limit + 60, r["id"]) for r in rows])
    outcomes = _send_all(config, rows, time.monotonic() + limit)
    counts = {"sent": 0, "failed": 0}
    for row in rows:
        error = outcomes.get(row["id"], f"not sent within alerts.delivery_deadline ({limit:g} s)")
        if error is not None:
            error = scrub(error)
            with state.write() as conn:
                conn.execute("UPDATE alerts SET attempts = attempts + 1, last_error = ?, claimed_until = NULL "
                             "WHERE id = ?", (error, row["id"]))
                audit.append(state, [Entry(row["problem"].split(":", 1)[0], "alert.failed",
                                           f"{row['channel']} {row['event']} for {row['problem']} not delivered "
                                           f"(kept, retried next run): {error}", run_id,
                                           {"alert_id": row["id"], "channel": row["channel"]})])
            counts["failed"] += 1
            continue
        with state.write() as conn:
            conn.execute("UPDATE alerts SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL,"
                         " claimed_until = NULL WHERE id = ?", (iso(), row["id"]))
            audit.append(state, [Entry(row["problem"].split(":", 1)[0], "alert.sent",
                                       f"{row['channel']} {row['event']} sent for {row['problem']}", run_id,
                                       {"alert_id": row["id"], "channel": row["channel"]})])
        counts["sent"] += 1
    return counts


def _send_all(config: Config, rows: list[dict], deadline: float) -> dict[int, str | None]:
    """Each channel's rows in order, the channels in parallel; {row id: None when sent, else the error} for the
    rows done by `deadline` (monotonic). The senders are daemon threads: one stuck on a peer that never lets go is
    left behind (its row stays pending) and cannot hold the run, nor the process's exit."""
    outcomes: dict[int, str | None] = {}
    by_channel: dict[str, list[dict]] = {}
    for row in rows:
        by_channel.setdefault(row["channel"], []).append(row)

    def send(channel_rows: list[dict]) -> None:
        for row in channel_rows:
            if time.monotonic() >= deadline:
                return
            try:
                _send(config, row, deadline)
                outcomes[row["id"]] = None
            except DeliveryError as exc:  # may quote the peer: printed later, so one line, no control characters
                outcomes[row["id"]] = untrusted.line(str(exc))
            except Exception as exc:  # a thread's exception would only be printed: keep it as the row's error
                outcomes[row["id"]] = untrusted.line(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=send, args=(channel_rows,), name=f"alerts-{channel}", daemon=True)
               for channel, channel_rows in by_channel.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    return dict(outcomes)


def _timeout(timeout: float, deadline: float) -> float:
    """A channel's timeout, shortened to what is left of the delivery deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeliveryError("alerts.delivery_deadline passed")
    return min(timeout, left)


def _send(config: Config, row: dict, deadline: float) -> None:
    details = json.loads(row["details"])
    if row["channel"] == "stderr":
        sys.stderr.write(untrusted.line(f"zenctl: ALERT {row['event'].upper()} [{row['severity']}] "
                                        f"{row['summary']}") + "\n")
        sys.stderr.flush()
    elif row["channel"] == "email":
        _send_email(config, row, details, deadline)
    elif row["channel"] == "pagerduty":
        _send_pagerduty(config, row, details, deadline)
    elif row["channel"] == "webhook":
        body = {"version": 1, "event": row["event"], "problem": row["problem"], "severity": row["severity"],
                "summary": row["summary"], "dedup_key": row["dedup_key"], "created": row["created"],
                "details": details}
        _post_json(config.alerts.webhook.url, body, _timeout(config.alerts.webhook.timeout, deadline))
    else:
        raise DeliveryError(f"channel {row['channel']!r} is not configured any more")


def _send_email(config: Config, row: dict, details: dict, deadline: float) -> None:
    import smtplib  # the mail and TLS modules cost ~30 ms to import: only runs that send pay it
    import ssl
    from email.message import EmailMessage

    email = config.alerts.email
    if not email.to:
        raise DeliveryError("alerts.email.to is empty (set it or ALERT_EMAIL)")
    message = EmailMessage()
    word = "RESOLVED" if row["event"] == "resolve" else row["severity"].upper()
    message["Subject"] = f"[zenctl] {word}: {row['summary']}"[:200]
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["X-Zenctl-Dedup-Key"] = row["dedup_key"]
    message.set_content(f"{row['summary']}\n\nevent: {row['event']}\nproblem: {row['problem']}\n"
                        f"severity: {row['severity']}\nat: {row['created']}\n\n"
                        + json.dumps(details, indent=2, default=str) + "\n")
    try:
        if email.tls == "ssl":
            client = smtplib.SMTP_SSL(email.host, email.port, timeout=_timeout(email.timeout, deadline),
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(email.host, email.port, timeout=_timeout(email.timeout, deadline))
        with client:
            if email.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if email.username:
                client.login(email.username, os.environ.get(email.password_env, ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP {email.host}:{email.port}: {exc}") from None


def _send_pagerduty(config: Config, row: dict, details: dict, deadline: float) -> None:
    pd = config.alerts.pagerduty
    key = pd.routing_key or os.environ.get(pd.routing_key_env, "")
    if not key:
        raise DeliveryError(f"no PagerDuty routing key (set alerts.pagerduty.routing_key or ${pd.routing_key_env})")
    body: dict = {"routing_key": key, "event_action": row["event"], "dedup_key": row["dedup_key"]}
    if row["event"] == "trigger":
        body["payload"] = {"summary": row["summary"][:1024], "source": details.get("host", socket.gethostname()),
                           "severity": _PD_SEVERITY.get(row["severity"], "error"),
                           "component": row["problem"].split(":", 1)[0], "class": row["problem"].split(":", 1)[-1],
                           "custom_details": details}
    _post_json(pd.url, body, _timeout(pd.timeout, deadline))


def _post_json(url: str | None, body: dict, timeout: float) -> None:
    """POST `body`; only a 2xx answer from `url` itself counts, and at most ANSWER_BYTES of any answer are read."""
    import http.client
    import urllib.error
    import urllib.request

    if not url:
        raise DeliveryError("no URL configured")
    if not url.lower().startswith(("http://", "https://")):
        raise DeliveryError(f"{url}: not an http:// or https:// URL")
    request = urllib.request.Request(url, data=json.dumps(body, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "zenctl"})
    try:
        with _opener().open(request, timeout=timeout):
            pass  # a 2xx: delivered; its body is not needed
    except urllib.error.HTTPError as exc:
        text = exc.read1(ANSWER_BYTES).decode(errors="replace").strip() if exc.fp else ""
        where = exc.headers.get("Location") if 300 <= exc.code < 400 else None
        raise DeliveryError(f"{url}: HTTP {exc.code}" + (f" (redirect to {where} not followed: configure the final "
                                                         "URL)" if where else "") + (f": {text}" if text else "")
                            ) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def _opener():
    """urllib without redirects: a 3xx becomes an HTTPError (a redirect followed as a GET delivers nothing)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    return urllib.request.build_opener(NoRedirect)


def listing(state: State, everything: bool) -> list[dict]:
    where = "1" if everything else "status IN ('pending', 'held')"
    rows = state.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE {where} ORDER BY id DESC LIMIT 500"
                              ).fetchall()
    out = []
    for found in rows:
        row = dict(zip(COLUMNS, found))
        row["details"] = json.loads(row["details"])
        out.append(row)
    return out


def add_silence(state: State, match: str, seconds: float, reason: str, who: str) -> dict:
    if seconds <= 0:
        raise UsageError("--for must be longer than 0 s")
    silence = {"id": os.urandom(3).hex(), "match": match, "reason": reason or "no reason given", "created_by": who,
               "created": iso(), "ends": iso(time.time() + seconds)}
    with state.write() as conn:
        conn.execute("INSERT INTO silences (id, match, reason, created_by, created, ends) VALUES (?, ?, ?, ?, ?, ?)",
                     (silence["id"], match, silence["reason"], who, silence["created"], time.time() + seconds))
        audit.append(state, [Entry("zenctl", "silence.add", f"silence {silence['id']} for {match!r} until "
                                                            f"{silence['ends']} by {who}: {silence['reason']}",
                                   None, silence)])
    return silence


def silences(state: State, everything: bool = False) -> list[dict]:
    where = "1" if everything else "removed IS NULL AND ends > :now"
    rows = state.conn.execute(f"SELECT id, match, reason, created_by, created, ends, removed FROM silences "
                              f"WHERE {where} ORDER BY created DESC", {"now": time.time()}).fetchall()
    return [{"id": r[0], "match": r[1], "reason": r[2], "created_by": r[3], "created": r[4], "ends": iso(r[5]),
             "removed": r[6], "active": r[6] is None and r[5] > time.time()} for r in rows]


def remove_silence(state: State, silence_id: str, who: str) -> None:
    with state.write() as conn:
        changed = conn.execute("UPDATE silences SET removed = ? WHERE id = ? AND removed IS NULL",
                               (iso(), silence_id)).rowcount
        if not changed:
            raise UsageError(f"no active silence {silence_id!r} (see 'zenctl silence list')")
        audit.append(state, [Entry("zenctl", "silence.remove", f"silence {silence_id} removed by {who}", None,
                                   {"id": silence_id, "by": who})])
