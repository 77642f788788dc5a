"""Real peers for alert delivery, all on 127.0.0.1: an SMTP server (aiosmtpd), an HTTP server that implements the
PagerDuty Events API v2 contract, and a JSON webhook receiver."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """aiosmtpd in a thread; `messages` holds (mail_from, rcpt_tos, raw text) of every message received."""

    def __init__(self, port: int | None = None):
        self.messages: list[tuple[str, list[str], str]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.content.decode(errors="replace")))
                return "250 OK"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class _JsonServer:
    """A threaded HTTP server on 127.0.0.1 recording every JSON body POSTed to it."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._reply(400, {"status": "invalid event", "message": "Event object is invalid",
                                             "errors": ["body is not JSON"]})
                code, reply = owner.handle(self.path, self.headers, body)
                self._reply(code, reply)

            def _reply(self, code, reply):
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    def handle(self, path, headers, body) -> tuple[int, dict]:
        self.requests.append(body)
        return 200, {"ok": True}

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


class WebhookReceiver(_JsonServer):
    """Accepts any JSON POST."""


class PagerDutyEvents(_JsonServer):
    """The Events API v2 contract (POST /v2/enqueue): a routing key of 32 characters, event_action trigger,
    acknowledge or resolve, a dedup_key (required to resolve), and for trigger a payload with summary, source and
    a severity of critical/error/warning/info. 202 with the dedup key on success, 400 naming the errors otherwise.
    `incidents` tracks open incidents by dedup key, as PagerDuty would."""

    def __init__(self, port: int | None = None):
        super().__init__(port)
        self.incidents: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

    def handle(self, path, headers, body):
        errors = []
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
            errors.append("'routing_key' must be 32 characters")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        key = body.get("dedup_key")
        if action in ("acknowledge", "resolve") and not key:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if action == "trigger":
            payload = body.get("payload") or {}
            for field in ("summary", "source", "severity"):
                if not payload.get(field):
                    errors.append(f"'payload.{field}' is missing")
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        self.requests.append(body)
        if action == "trigger":
            self.incidents[key] = "triggered"
        elif action == "resolve":
            self.incidents[key] = "resolved"
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}
