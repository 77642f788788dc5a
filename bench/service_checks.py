"""50 service checks, 10 of them hanging, in one `zenctl health check`: the target is that the checks finish
within the longest timeout plus 0.5 s. Peers are real and local: an HTTP server, a TCP listener, and a tarpit
that accepts connections and never answers.

Run: uv run python bench/service_checks.py [RUNS]
"""

import json
import socket
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, summary, user_env  # noqa: E402

HANG_TIMEOUT = 2.0
CALM = ("agents:\n  system_health:\n    cpu_threshold: 100\n    cpu_warning: 100\n    memory_threshold: 100\n"
        "    memory_warning: 100\n    disk_threshold: 100\n    disk_warning: 100\n    inode_threshold: 100\n"
        "    inode_warning: 100\n    load_threshold: 1000\n    load_warning: 1000\n")


class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def tarpit() -> tuple[socket.socket, list]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    held: list = []

    def accept():
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return sock, held


def services(http_port: int, tcp_port: int, pit_port: int) -> list[dict]:
    quick = []
    for i in range(40):
        kind = i % 4
        if kind == 0:
            quick.append({"name": f"http{i}", "type": "http", "url": f"http://127.0.0.1:{http_port}/"})
        elif kind == 1:
            quick.append({"name": f"tcp{i}", "type": "tcp", "host": "127.0.0.1", "port": tcp_port})
        elif kind == 2:
            quick.append({"name": f"cmd{i}", "command": "echo ok"})
        else:
            quick.append({"name": f"proc{i}", "type": "process", "pattern": "^python"})
    hanging = [{"name": f"hang{i}", "type": "http" if i % 2 else "tls", "timeout": HANG_TIMEOUT,
                **({"url": f"http://127.0.0.1:{pit_port}/"} if i % 2 else {"host": "127.0.0.1", "port": pit_port})}
               for i in range(10)]
    return quick + hanging


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    web = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    pit, _ = tarpit()
    with tempfile.TemporaryDirectory() as tmp:
        full, none = Path(tmp, "full.yaml"), Path(tmp, "none.yaml")
        entries = services(web.server_address[1], listener.getsockname()[1], pit.getsockname()[1])
        full.write_text(CALM + "    services: " + json.dumps(entries) + "\n")
        none.write_text(CALM)
        env = user_env(ZENCTL_DB=f"{tmp}/zenctl.db", XDG_CONFIG_HOME=f"{tmp}/config", HOME=tmp)
        measure(["health", "check", "-q", "--dry-run", "-c", str(none)], env)
        base = [measure(["health", "check", "-q", "--dry-run", "-c", str(none)], env) for _ in range(runs)]
        checks = [measure(["health", "check", "-q", "--dry-run", "-c", str(full)], env) for _ in range(runs)]
    print(summary("health check, no services", base))
    print(summary("health check, 50 services (10 hanging, timeout 2 s)", checks))
    extra = statistics.median(r[0] for r in checks) - statistics.median(r[0] for r in base)
    worst = max(r[0] for r in checks) - min(r[0] for r in base)
    print(f"cost of the 50 checks: median {extra:.2f} s, worst {worst:.2f} s; target <= {HANG_TIMEOUT + 0.5:.1f} s "
          f"(longest timeout {HANG_TIMEOUT:g} s + 0.5 s)")


if __name__ == "__main__":
    main()
