"""security.block_ip for real, in network namespaces the test creates: a listener in one namespace, a client in the
other, zenctl run inside the listener's namespace with `ip netns exec` (its own kernel nftables). A banned address
can no longer connect, and can again after `zenctl rollback`; a ban expires by itself; the allow list is refused.
Root only (skipped otherwise, never when CI=true)."""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from zenctl.agents.log_analyzer.kinds import block_ip
from zenctl.core.actions import ActionFailed, Proposal

PORT = 2222
ROOT = Path(__file__).resolve().parents[3]


def _need_root() -> None:
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    why = None
    if os.geteuid() != 0:
        why = "needs root (network namespaces, nftables)"
    elif missing:
        why = f"needs {', '.join(missing)} (Debian: apt-get install iproute2 nftables)"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {why}")
        pytest.skip(why)


def sh(*argv: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


class Net:
    """Two namespaces joined by a veth pair: `server` (10.231.N.1, fd00:231:N::1) and `client` (.2, ::2)."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.server, self.client = f"zsec-{tag}-s", f"zsec-{tag}-c"
        n = int(tag[:2], 16)
        self.v4 = (f"10.231.{n}.1", f"10.231.{n}.2")
        self.v6 = (f"fd00:231:{n:x}::1", f"fd00:231:{n:x}::2")
        self.listener = None

    def __enter__(self):
        for ns in (self.server, self.client):
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "zs0", "netns", self.server, "type", "veth", "peer", "name", "zc0", "netns",
           self.client)
        for ns, dev, i in ((self.server, "zs0", 0), (self.client, "zc0", 1)):
            sh("ip", "-n", ns, "addr", "add", f"{self.v4[i]}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{self.v6[i]}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        server = ("import socket\ns = socket.socket(socket.AF_INET6)\ns.setsockopt(socket.IPPROTO_IPV6, "
                  "socket.IPV6_V6ONLY, 0)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  f"s.bind(('::', {PORT}))\ns.listen(16)\nprint('up', flush=True)\n"
                  "while True:\n    c, _ = s.accept()\n    c.sendall(b'hi')\n    c.close()\n")
        self.listener = subprocess.Popen(["ip", "netns", "exec", self.server, sys.executable, "-c", server],
                                         stdout=subprocess.PIPE, text=True)
        assert self.listener.stdout.readline().strip() == "up"
        return self

    def __exit__(self, *exc):
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait(10)
        for ns in (self.server, self.client):
            sh("ip", "netns", "del", ns, check=False)

    def connects(self, v6: bool = False, expect: bool = True, within: float = 15) -> bool:
        """Whether the client reaches the listener (a dropped SYN: no answer within 1.5 s), tried again until it is
        as expected or `within` seconds passed (after a ban of IPv6 addresses, neighbour discovery needs a moment:
        the ban dropped its solicitations too)."""
        deadline = time.monotonic() + within
        while True:
            reached = self._connect(v6)
            if reached == expect or time.monotonic() > deadline:
                return reached
            time.sleep(0.5)

    def _connect(self, v6: bool) -> bool:
        addr = self.v6[0] if v6 else self.v4[0]
        probe = (f"import socket\ntry:\n    c = socket.create_connection(({addr!r}, {PORT}), timeout=1.5)\n"
                 "    print(c.recv(2).decode())\nexcept OSError as e:\n    print('no', e)\n")
        done = sh("ip", "netns", "exec", self.client, sys.executable, "-c", probe)
        return done.stdout.strip() == "hi"

    def in_server(self, *argv: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.server, *argv], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=ROOT)

    def elements(self) -> dict:
        done = self.in_server("nft", "-j", "list", "table", "inet", "zenctl")
        if done.returncode:
            return {}
        out = {}
        for item in json.loads(done.stdout)["nftables"]:
            for elem in item.get("set", {}).get("elem", []):
                val = elem["elem"]["val"]
                out[val if isinstance(val, str) else f"{val['prefix']['addr']}/{val['prefix']['len']}"] = \
                    item["set"]["name"]
        return out


def _auth_log(path: Path, ip: str, count: int) -> None:
    now = time.time()
    with path.open("w") as f:
        for i in range(count):
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 30 + i))
            f.write(f"{stamp} web01 sshd[{700 + i}]: Failed password for invalid user admin from {ip} "
                    f"port {40000 + i} ssh2\n")


def test_a_banned_address_cannot_connect_until_rollback(zenctl, tmp_path):
    _need_root()
    with Net() as net:
        assert net.connects() and net.connects(v6=True)
        log = tmp_path / "auth.log"
        _auth_log(log, net.v4[1], 4)
        config = zenctl.config("agents:\n  log_analyzer:\n    sources:\n"
                               f"      - {{name: auth, path: {log}, format: syslog}}\n"
                               "    jails:\n      sshd: {maxretry: 3, bantime: 3600}\n")

        def run(*args: str) -> tuple[int, dict]:
            done = net.in_server(str(Path(sys.executable).with_name("zenctl")), *args, "-c", str(config), "--json",
                                 env=zenctl.env)
            assert done.stdout, done.stderr
            return done.returncode, json.loads(done.stdout)

        code, scan = run("logs", "scan")
        [ban] = [a for a in scan["actions"] if a["kind"] == "security.block_ip"]
        assert code == 2 and ban["status"] == "awaiting_approval" and ban["target"] == net.v4[1]
        assert f"add element inet zenctl addr4 {{ {net.v4[1]} timeout 3600s }}" in ban["preview"]
        assert any(f["check"].endswith(f"sshd:{net.v4[1]}") and f["status"] == "critical"
                   for f in scan["findings"])
        assert net.connects()  # approve mode: nothing happened yet

        code, approved = run("approve", ban["approval_id"], "--run")
        assert approved["approval"]["status"] == "executed", approved
        assert net.elements() == {net.v4[1]: "addr4"}
        assert not net.connects(expect=False)
        assert net.connects(v6=True)  # only the banned address
        code, again = run("logs", "scan")  # still open, but banned: reported, not asked for again
        assert code == 2 and not [a for a in again["actions"] if a["kind"] == "security.block_ip"]
        assert any(f["check"].endswith(f"sshd:{net.v4[1]}") for f in again["findings"])

        code, undone = run("rollback", approved["approval"]["action_id"])
        assert code == 0 and [a["kind"] for a in undone["actions"]] == ["security.unblock_ip"], undone
        assert net.elements() == {} and net.connects()


def _apply_in(net: Net, kind: str, params: dict) -> subprocess.CompletedProcess:
    script = ("import json, sys\nfrom zenctl.agents.log_analyzer.kinds import block_ip\n"
              "from zenctl.core.actions import Proposal, get_kind\nimport zenctl.agents\n"
              "p = Proposal(sys.argv[1], 'x', json.loads(sys.argv[2]), 'test')\nk = get_kind(sys.argv[1])\n"
              "print(json.dumps({'preview': k.preview(p), 'message': k.apply(p).message, "
              "'verify': k.verify(p)}))\n")
    return net.in_server(sys.executable, "-c", script, kind, json.dumps(params))


def test_an_ipv6_subnet_ban_and_a_ban_that_expires_by_itself():
    _need_root()
    with Net() as net:
        subnet = net.v6[1].rsplit("::", 1)[0] + "::/64"
        done = _apply_in(net, "security.block_ip", {"ip": subnet, "bantime": 3600, "allow": ["::1"]})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["verify"] is None
        assert net.elements() == {subnet: "net6"}
        assert not net.connects(v6=True, expect=False) and net.connects()
        done = _apply_in(net, "security.unblock_ip", {"set": "net6", "element": subnet})
        assert done.returncode == 0 and net.connects(v6=True), done.stderr

        done = _apply_in(net, "security.block_ip", {"ip": net.v4[1], "bantime": 2})
        assert done.returncode == 0 and not net.connects(expect=False), done.stderr
        time.sleep(2.5)
        assert net.connects() and net.elements() == {}
        done = _apply_in(net, "security.unblock_ip", {"set": "addr4", "element": net.v4[1]})
        assert "expired already" in json.loads(done.stdout)["message"]


@pytest.mark.parametrize("ip,allow,why", [
    ("192.0.2.7", ["192.0.2.0/24"], "allow list holds 192.0.2.0/24"),
    ("192.0.2.0/24", ["192.0.2.200"], "allow list holds 192.0.2.200/32"),
    ("127.0.0.1", [], "loopback"),
    ("::ffff:192.0.2.7", [], "IPv4-mapped"),
    ("10.0.0.0/8", [], "wider than /16"),
    ("1.2.3.4; flush ruleset", [], "not an IP address"),
    ("", [], "not an IP address"),
])
def test_apply_refuses_what_must_never_be_banned(ip, allow, why):
    proposal = Proposal("security.block_ip", ip, {"ip": ip, "bantime": 60, "allow": allow}, "test")
    with pytest.raises(ActionFailed, match=why):
        block_ip.BlockIP().apply(proposal)
    assert block_ip.BlockIP().preview(proposal).startswith("would refuse")


@pytest.mark.parametrize("bantime", [0, -5, 10**9, "600; flush ruleset", None])
def test_apply_refuses_a_bantime_out_of_range(bantime):
    proposal = Proposal("security.block_ip", "198.51.100.7", {"ip": "198.51.100.7", "bantime": bantime}, "test")
    with pytest.raises(ActionFailed, match="bantime"):
        block_ip.BlockIP().apply(proposal)
    assert block_ip.BlockIP().preview(proposal).startswith("would refuse")
