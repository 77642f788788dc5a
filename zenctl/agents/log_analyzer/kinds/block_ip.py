"""security.block_ip: ban an address or a subnet for `bantime` seconds in zenctl's own nftables table, and its
undo, security.unblock_ip (what `zenctl rollback` runs).

zenctl keeps to one table, `inet zenctl`, created on first use: four sets with timeouts (`addr4`, `net4`, `addr6`,
`net6`; addresses and subnets apart, since an interval set refuses an address inside a banned subnet) and an
`input` chain hooked before the usual filters (priority -10) that drops packets from them. A ban is one set
element with a timeout: the kernel forgets it when it expires, with no zenctl run needed; rollback deletes it
sooner. Nothing else of the ruleset is read or touched. `nft` runs as an argument list (never a shell), the
script on its standard input, its answers read as JSON (`nft -j`). Needs CAP_NET_ADMIN (root).

An address on the allow list (the jails' `ignoreip`, carried in the plan's `allow`) is refused here too, as are
loopback, unspecified, multicast and link-local addresses and networks wider than /16 (IPv6 /32).

Parameters: ip (an address or a network), bantime (seconds), jails (which tripped), allow (networks never banned).
Before-data: set, element, existed (already banned: nothing changed, nothing to undo), created (the table was made).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register

FAMILY, TABLE, CHAIN = "inet", "zenctl", "input"
SETS = {(4, False): "addr4", (4, True): "net4", (6, False): "addr6", (6, True): "net6"}
_TYPES = {"addr4": "ipv4_addr", "net4": "ipv4_addr", "addr6": "ipv6_addr", "net6": "ipv6_addr"}
_MATCH = {"addr4": "ip", "net4": "ip", "addr6": "ip6", "net6": "ip6"}
TIMEOUT = 30  # seconds for one nft call
WIDEST = {4: 16, 6: 32}
MAX_BANTIME = 365 * 86400


class NftError(ActionFailed):
    """nft could not be run or refused the request."""


def _nft_path() -> str:
    """nft where Debian puts it (cron's PATH has no /usr/sbin), else from PATH."""
    for path in ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("nft") or "nft"


def nft(args: list[str], script: str | None = None) -> str:
    """Run `nft ARGS` (the script on stdin); its stdout, or NftError with its first line of stderr."""
    try:
        done = subprocess.run([_nft_path(), *args], input=script, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise NftError("nft is not installed (Debian: apt-get install nftables)") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"nft {' '.join(args)} did not answer within {TIMEOUT} s") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
        if "Operation not permitted" in done.stderr:
            first += " (nft needs CAP_NET_ADMIN: run zenctl as root)"
        raise NftError(f"nft {' '.join(args[:2])}: {first}")
    return done.stdout


def target(ip: str, allow: list[str] | tuple = ()) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]:
    """The network to ban and its set; ActionFailed when it must not be banned."""
    try:
        net = ipaddress.ip_network(str(ip), strict=False)
    except ValueError:
        raise ActionFailed(f"{ip!r} is not an IP address or network") from None
    if net.prefixlen < WIDEST[net.version]:
        raise ActionFailed(f"refusing to ban {net}: wider than /{WIDEST[net.version]}")
    first = net.network_address
    if first.is_loopback or first.is_unspecified or first.is_multicast or first.is_link_local:
        raise ActionFailed(f"refusing to ban {net}: a loopback, unspecified, multicast or link-local address")
    if net.version == 6 and first.ipv4_mapped is not None:
        raise ActionFailed(f"refusing to ban {net}: an IPv4-mapped address (ban the IPv4 address)")
    for item in allow:
        try:
            allowed = ipaddress.ip_network(item, strict=False)
        except ValueError:
            continue
        if allowed.version == net.version and allowed.overlaps(net):
            raise ActionFailed(f"refusing to ban {net}: the allow list holds {allowed}")
    return net, SETS[(net.version, net.prefixlen < net.max_prefixlen)]


def _bantime(value) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ActionFailed(f"bantime {value!r} is not a number of seconds") from None
    if not 1 <= seconds <= MAX_BANTIME:
        raise ActionFailed(f"bantime {seconds} s is outside 1 s .. {MAX_BANTIME} s")
    return seconds


def _element(net) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def listing() -> dict | None:
    """zenctl's table as {"sets": {name: {element: expires seconds}}, "rules": set names a drop rule uses,
    "chain": bool}; None when the table does not exist. NftError when nft cannot be asked."""
    try:
        out = nft(["-j", "list", "table", FAMILY, TABLE])
    except NftError as exc:
        if "No such file or directory" in str(exc) or "does not exist" in str(exc):
            return None
        raise
    try:
        items = json.loads(out).get("nftables", [])
    except ValueError:
        raise NftError("nft -j answered something that is not JSON") from None
    table: dict = {"sets": {}, "rules": set(), "chain": False}
    for item in items:
        if "set" in item:
            elements = {}
            for elem in item["set"].get("elem", []):
                value = elem.get("elem", elem) if isinstance(elem, dict) else elem
                expires = value.get("expires") if isinstance(value, dict) and "val" in value else None
                val = value.get("val") if isinstance(value, dict) and "val" in value else value
                if isinstance(val, dict) and "prefix" in val:
                    val = f"{val['prefix']['addr']}/{val['prefix']['len']}"
                elements[str(val)] = expires
            table["sets"][item["set"].get("name")] = elements
        elif "chain" in item and item["chain"].get("name") == CHAIN:
            table["chain"] = True
        elif "rule" in item and item["rule"].get("chain") == CHAIN:
            text = json.dumps(item["rule"].get("expr", []))
            table["rules"].update(name for name in _TYPES if f'"@{name}"' in text)
    return table


def banned() -> dict[str, int | None]:
    """Every address and network banned now, with its seconds left; {} when there is no table or nft cannot be
    asked (no permission, not installed): for an agent that wants to skip proposing what is banned already."""
    try:
        table = listing()
    except NftError:
        return {}
    return {element: left for elements in (table or {"sets": {}})["sets"].values() for element, left in
            elements.items()}


def setup(table: dict | None) -> list[str]:
    """The nft commands that make zenctl's table, sets, chain and drop rules where they are missing."""
    lines = []
    if table is None:
        lines.append(f"add table {FAMILY} {TABLE}")
        table = {"sets": {}, "rules": set(), "chain": False}
    for name, kind in _TYPES.items():
        if name not in table["sets"]:
            flags = "interval, timeout" if name.startswith("net") else "timeout"
            lines.append(f"add set {FAMILY} {TABLE} {name} {{ type {kind}; flags {flags}; }}")
    if not table["chain"]:
        lines.append(f"add chain {FAMILY} {TABLE} {CHAIN} {{ type filter hook input priority -10; policy accept; }}")
    for name in _TYPES:
        if name not in table["rules"]:
            lines.append(f"add rule {FAMILY} {TABLE} {CHAIN} {_MATCH[name]} saddr @{name} drop")
    return lines


def _script(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _shown(lines: list[str]) -> str:
    return "; ".join(lines)


@register
class BlockIP(ActionKind):
    name = "security.block_ip"
    summary = ("Ban an address or a /24 (IPv6 /64) for bantime seconds: an element with a timeout in nftables "
               "table inet zenctl (made on first use); rollback deletes it, the kernel expires it.")
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        try:
            net, name = target(p["ip"], p.get("allow", ()))
            seconds = _bantime(p["bantime"])
        except ActionFailed as exc:
            return f"would refuse: {exc}"
        try:
            table = listing()
        except NftError as exc:
            table, note = None, f" (the table could not be read: {exc}; shown as if it were missing)"
        else:
            note = ""
        element = _element(net)
        if table is not None and element in table["sets"].get(name, {}):
            return f"{element} is banned already ({table['sets'][name][element]} s left): nothing to do"
        lines = setup(table) + [f"add element {FAMILY} {TABLE} {name} {{ {element} timeout {seconds}s }}"]
        return f"ban {element} for {seconds} s: nft -f - with: {_shown(lines)}{note}"

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        net, name = target(p["ip"], p.get("allow", ()))
        seconds = _bantime(p["bantime"])
        element = _element(net)
        table = listing()
        if table is not None and element in table["sets"].get(name, {}):
            return Applied(f"{element} was banned already ({table['sets'][name][element]} s left); nothing changed",
                           {"set": name, "element": element, "existed": True, "created": False})
        lines = setup(table)
        lines.append(f"add element {FAMILY} {TABLE} {name} {{ {element} timeout {seconds}s }}")
        nft(["-f", "-"], _script(lines))
        return Applied(f"banned {element} for {seconds} s (nftables {FAMILY} {TABLE} {name})",
                       {"set": name, "element": element, "existed": False, "created": table is None})

    def verify(self, proposal: Proposal) -> str | None:
        net, name = target(proposal.params["ip"])
        table = listing()
        if table is None or _element(net) not in table["sets"].get(name, {}):
            return f"{_element(net)} is not in nftables set {FAMILY} {TABLE} {name}"
        missing = [s for s in _TYPES if s not in table["rules"]]
        return f"no drop rule for set(s) {', '.join(missing)} in chain {CHAIN}" if missing else None

    def undo(self, action: dict, check: bool = True) -> Proposal | str:
        before = action.get("before") or {}
        if before.get("existed"):
            return f"action {action['id']} changed nothing ({action['target']} was banned already); nothing to undo"
        if not before.get("set") or not before.get("element"):
            return f"action {action['id']} recorded no ban; nothing to undo"
        params = {"undo": action["id"], "set": before["set"], "element": before["element"]}
        return Proposal("security.unblock_ip", action["target"], params,
                        f"rollback of {action['id']} (security.block_ip {action['target']}, {action['finished']})",
                        f"rollback:{action['id']}")


@register
class UnblockIP(ActionKind):
    name = "security.unblock_ip"
    summary = "Lift a ban security.block_ip made: delete its element from nftables table inet zenctl."
    irreversible_why = "ban the address again instead"

    def _checked(self, p: dict) -> tuple[str, str]:
        name, element = p["set"], p["element"]
        if name not in _TYPES:
            raise ActionFailed(f"{name!r} is not one of zenctl's sets")
        net, expected = target(element)
        if expected != name:
            raise ActionFailed(f"{element} does not belong in set {name}")
        return name, _element(net)

    def preview(self, proposal: Proposal) -> str:
        try:
            name, element = self._checked(proposal.params)
        except ActionFailed as exc:
            return f"would refuse: {exc}"
        return f"lift the ban of {element}: nft delete element {FAMILY} {TABLE} {name} {{ {element} }}"

    def apply(self, proposal: Proposal) -> Applied:
        name, element = self._checked(proposal.params)
        table = listing()
        if table is None or element not in table["sets"].get(name, {}):
            return Applied(f"the ban of {element} had expired already; nothing to delete")
        nft(["delete", "element", FAMILY, TABLE, name, f"{{ {element} }}"])
        return Applied(f"lifted the ban of {element} (nftables {FAMILY} {TABLE} {name})")

    def verify(self, proposal: Proposal) -> str | None:
        name, element = self._checked(proposal.params)
        table = listing()
        if table is not None and element in table["sets"].get(name, {}):
            return f"{element} is still in nftables set {FAMILY} {TABLE} {name}"
        return None
