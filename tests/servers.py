"""Real peers for alert delivery, all on 127.0.0.1: an SMTP server (aiosmtpd), an HTTP server that implements the
PagerDuty Events API v2 contract, a JSON webhook receiver, and hostile ones (a tarpit, trickling, redirecting and
huge answers)."""

import json
import socket
import threading
import time
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


class _Served:
    """A `self.server` (socketserver) served from a thread for the length of a `with` block."""

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class _JsonServer(_Served):
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


def self_signed(directory, days: float, name: str = "localhost", stem: str = "server") -> tuple[str, str]:
    """A fresh self-signed certificate for `name` and 127.0.0.1, valid for `days` from now: (cert, key) PEM
    paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = f"{directory}/{stem}.crt", f"{directory}/{stem}.key"
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return cert_path, key_path


class HttpsServer(_Served):
    """A real HTTPS server on 127.0.0.1 answering every GET with 200 and `body`, under a given certificate."""

    def __init__(self, cert: str, key: str, body: bytes = b'{"status": "ok"}'):
        import ssl

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)



class Tarpit:
    """A TCP listener that accepts connections and never answers: every HTTP or TLS check against it hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.open = True

    def _accept(self):
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.open = False
        self.sock.close()
        for conn in self.held:
            conn.close()


class HostileHttp(_Served):
    """An HTTP peer on 127.0.0.1 that misbehaves in one way, for the bounds on alert delivery:

    - `trickle`: answers one byte of a never-ending header every `interval` seconds;
    - `redirect`: answers a POST with 302 to its own /moved, which answers a GET with 200;
    - `huge`: answers 200 with a body of `size` bytes (sent as fast as the client reads).

    Every answer stops by itself after `limit` seconds, or when the `with` block ends. `posts` and `gets` count the
    requests received."""

    def __init__(self, mode: str, interval: float = 0.5, size: int = 1 << 30, limit: float = 60):
        self.port = free_port()
        self.posts = self.gets = 0
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                owner.posts += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ends = time.monotonic() + limit
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{owner.port}/moved")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif mode == "trickle":
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 100_000:
                        if time.monotonic() > ends or owner.stopping.wait(interval):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                elif mode == "huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(size))
                    self.end_headers()
                    chunk, sent = b"\0" * (1 << 20), 0
                    while sent < size and time.monotonic() < ends and not owner.stopping.is_set():
                        self.wfile.write(chunk[:size - sent])
                        sent += len(chunk)

            def do_GET(self):
                owner.gets += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def handle(self):
                try:
                    super().handle()
                except OSError:  # the client gave up: that is what the bounds are for
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads, self.server.block_on_close = True, False

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        super().__exit__(*exc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"
