"""Jails, as fail2ban keeps them, across cron runs: each jail counts the failures `security` finds per address (or,
for `sudo`, per local user) over `findtime`; `maxretry` of them trip it. A tripped jail is a CRITICAL,
security-related finding with the address, the count and the evidence lines, and (unless the jail only reports)
a proposal to ban the address for `bantime` with `security.block_ip`.

Between runs only the state remembers, so it is bounded: at most MAX_KEYS addresses per jail, MAX_HITS
timestamps and EVIDENCE lines per address, each line escaped and cut (they are attacker-written). Addresses on
the allow list (`ignoreip`: addresses or networks) are never counted. Repeat offenders get longer bans
(fail2ban's `bantime.increment`): the n-th trip of an address within `bantime_maxtime` is banned for
`bantime * bantime_factor**(n-1)`, at most `bantime_maxtime`. When `subnet_min` distinct addresses of one /24
(IPv6: /64) have failed within `findtime` and together reach `maxretry`, they trip as one subnet: one finding, one
subnet ban.

A trip stays open (reported again, with the same ban proposal, so an approval given later still matches the
plan) until its bantime has passed.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import Field, field_validator

from zenctl.core.confbase import Duration, Model
from zenctl.core.untrusted import line as escaped

MAX_KEYS = 20000  # addresses per jail
MAX_HITS = 500  # timestamps per address (same-second hits share one)
EVIDENCE = 5  # lines kept per address
EVIDENCE_CHARS = 400
MAX_OFFENDERS = 50000  # addresses remembered for bantime.increment
STATE_VERSION = 1


class JailConfig(Model):
    """One jail: when failures from one address trip it, and how long it bans."""

    enabled: bool = Field(True, description="Count this jail's failures and report when it trips.")
    mode: str = Field("normal", description="Filter mode, for the jails that have them: sshd normal, ddos, extra "
                                            "or aggressive; apache-auth normal or aggressive; nginx-http-auth "
                                            "normal, fallback or aggressive (fail2ban's modes).")
    findtime: Duration = Field(600, gt=0, description="Window the failures are counted over (seconds).")
    maxretry: int = Field(5, ge=1, le=1_000_000, description="Failures within findtime that trip the jail.")
    bantime: Duration = Field(600, gt=0, le=365 * 86400, description="How long a first ban lasts (seconds).")
    ban: bool = Field(True, description="Propose security.block_ip when the jail trips (false: report only).")
    bantime_increment: bool = Field(True, description="Ban repeat offenders longer (fail2ban's bantime.increment).")
    bantime_factor: float = Field(2.0, ge=1, le=100, description="Each further ban lasts this many times longer.")
    bantime_maxtime: Duration = Field(7 * 86400, gt=0, le=365 * 86400,
                                      description="Longest ban; also how long past offences are remembered.")
    ignoreip: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1"],
                                description="Allow list: addresses and networks (CIDR) never counted nor banned.",
                                examples=[["127.0.0.0/8", "::1", "192.0.2.0/24"]])
    subnet_min: int = Field(4, ge=0, le=256, description="Distinct failing addresses of one /24 (IPv6 /64) that "
                                                          "trip as one subnet (0: never).")

    @field_validator("ignoreip")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network (CIDR)") from None
        return out


_DEFAULTS: dict[str, dict[str, Any]] = {
    "sshd": {},
    "sudo": {"maxretry": 3, "ban": False},
    "apache-auth": {},
    "nginx-http-auth": {},
    "web-4xx": {"maxretry": 30, "findtime": 300},
    "web-scan": {"maxretry": 5},
    "web-attack": {"maxretry": 3},
}


def default_jails() -> dict[str, JailConfig]:
    """The jails and their defaults (every one of security.JAILS)."""
    return {name: JailConfig(**values) for name, values in _DEFAULTS.items()}


def complete(value: Any) -> Any:
    """Before validation of `agents.log_analyzer.jails`: a jail the config names gets its own defaults under what
    it sets (the jails it does not name keep theirs: `Jails` adds them); an unknown jail name or mode is an
    error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return value  # pydantic says what is wrong with it
    from zenctl.agents.log_analyzer.security import JAIL_MODES

    out: dict[str, Any] = {}
    for name, given in value.items():
        if name not in _DEFAULTS:
            raise ValueError(f"unknown jail {name!r} (one of: {', '.join(_DEFAULTS)})")
        if isinstance(given, JailConfig):
            given = given.model_dump(exclude_unset=True)
        if not isinstance(given, dict):
            out[name] = given
            continue
        mode = given.get("mode")
        if mode is not None and mode != "normal" and mode not in JAIL_MODES.get(name, {}):
            choices = ", ".join(JAIL_MODES.get(name, {"normal": None}))
            raise ValueError(f"jail {name}: unknown mode {mode!r} (one of: {choices})")
        out[name] = {**_DEFAULTS[name], **given}
    return out


@dataclass
class Trip:
    """A jail that tripped for one address, subnet or local user."""

    jail: str
    ip: str  # an address, a network (subnet trips), a host name, or "user:NAME" (sudo)
    count: int
    evidence: list[str]
    bantime: float
    first: float
    last: float
    offence: int = 1  # the n-th trip of this address within bantime_maxtime
    subnet: bool = False
    addresses: list[str] = field(default_factory=list)  # a subnet's failing addresses
    until: float = 0.0

    @property
    def check(self) -> str:
        return f"security:{self.jail}:{self.ip}"

    @property
    def bannable(self) -> bool:
        """An address or network (a host name or a local user is reported, never banned)."""
        try:
            ipaddress.ip_network(self.ip, strict=False)
        except ValueError:
            return False
        return True


@lru_cache(maxsize=16384)
def _network(key: str):
    try:
        return ipaddress.ip_network(key, strict=False)
    except ValueError:
        return None


def _allowed(key: str, networks: list) -> bool:
    addr = _network(key)
    return addr is not None and any(addr.version == net.version and addr.overlaps(net) for net in networks)


def _subnet(key: str) -> str | None:
    try:
        addr = ipaddress.ip_address(key)
    except ValueError:
        return None
    return str(ipaddress.ip_network(f"{addr}/{24 if addr.version == 4 else 64}", strict=False))


class Jails:
    """Failures per jail and address across runs. `config`: jail name -> JailConfig (missing jails: defaults);
    `state`: what `state()` returned last run (anything unreadable starts empty)."""

    def __init__(self, config: dict[str, JailConfig] | None = None, state: dict | None = None) -> None:
        self.config = {**default_jails(), **(config or {})}
        self._allow = {name: [ipaddress.ip_network(n, strict=False) for n in cfg.ignoreip]
                       for name, cfg in self.config.items()}
        state = state if isinstance(state, dict) and state.get("v") == STATE_VERSION else {}
        self.hits: dict[str, dict[str, dict]] = {j: dict(v) for j, v in (state.get("hits") or {}).items()
                                                 if isinstance(v, dict)}
        self.open: dict[str, dict[str, dict]] = {j: dict(v) for j, v in (state.get("open") or {}).items()
                                                 if isinstance(v, dict)}
        self.offences: dict[str, list] = dict(state.get("offences") or {})

    def state(self) -> dict:
        """JSON-able, bounded (see the module doc)."""
        return {"v": STATE_VERSION, "hits": self.hits, "open": self.open, "offences": self.offences}

    def feed(self, hit, record=None, now: float | None = None) -> bool:
        """Count one failure (a security.Hit) at its record's time; False when not counted (jail off, allow
        list)."""
        cfg = self.config.get(hit.jail)
        if cfg is None or not cfg.enabled:
            return False
        key = hit.key
        if _allowed(key, self._allow[hit.jail]):
            return False
        now = time.time() if now is None else now
        when = getattr(record, "time", None)
        when = now if when is None else min(when, now)
        jail = self.hits.setdefault(hit.jail, {})
        entry = jail.get(key)
        if entry is None:
            if len(jail) >= MAX_KEYS:  # a flood of new addresses: the least recent tenth goes, in one sort
                for old in sorted(jail, key=lambda k: jail[k]["last"])[:max(1, MAX_KEYS // 10)]:
                    del jail[old]
            entry = jail[key] = {"t": [], "ev": [], "last": when}
        stamps = entry["t"]
        second = int(when)
        if stamps and stamps[-1][0] == second:
            stamps[-1][1] += hit.count
        else:
            stamps.append([second, hit.count])
            if len(stamps) > MAX_HITS:
                del stamps[0]
        entry["last"] = max(entry["last"], when)
        if record is not None:  # the latest lines
            text = escaped((getattr(record, "raw", "") or "")[:EVIDENCE_CHARS])
            entry["ev"].append([when, f"{getattr(record, 'line', '?')}: {text}"])
            if len(entry["ev"]) > EVIDENCE:
                del entry["ev"][0]
        return True

    def tripped(self, now: float | None = None) -> list[Trip]:
        """The trips of this run: new ones (their windows cleared, as a ban would) and those still open."""
        now = time.time() if now is None else now
        self._forget_offences(now)
        trips: list[Trip] = []
        for name, cfg in self.config.items():
            jail = self.hits.get(name, {})
            opened = self.open.setdefault(name, {})
            for key in [k for k, v in opened.items() if v.get("until", 0) <= now]:
                del opened[key]
            if not cfg.enabled:
                continue
            counts = self._window(jail, now - cfg.findtime)
            for key, trip in self._new(name, cfg, jail, counts, now):
                opened[key] = {"count": trip.count, "evidence": trip.evidence, "bantime": trip.bantime,
                               "first": trip.first, "last": trip.last, "offence": trip.offence,
                               "subnet": trip.subnet, "addresses": trip.addresses, "until": trip.until}
            for key, item in sorted(opened.items()):
                members = item.get("addresses") or [key]
                fresh = sum(counts.get(k, 0) for k in members if k in jail)
                if fresh:  # failures while the trip is open: counted in, window cleared
                    item["count"] += fresh
                    for k in (k for k in members if k in jail):
                        item["evidence"] = (item["evidence"] + [e[1] for e in jail[k]["ev"]])[-EVIDENCE:]
                        item["last"] = max(item["last"], jail[k]["last"])
                        del jail[k]
                trips.append(Trip(name, key, item["count"], list(item["evidence"]), item["bantime"],
                                  item["first"], item["last"], item.get("offence", 1), item.get("subnet", False),
                                  list(item.get("addresses", [])), item["until"]))
        return trips

    # ---------------------------------------------------------------------------------------------- helpers

    @staticmethod
    def _window(jail: dict, since: float) -> dict[str, int]:
        """Failures per key since `since`; older timestamps and empty keys are dropped."""
        counts = {}
        for key in list(jail):
            stamps = [s for s in jail[key]["t"] if s[0] >= since]
            if not stamps:
                del jail[key]
                continue
            jail[key]["t"] = stamps
            jail[key]["ev"] = [e for e in jail[key]["ev"] if e[0] >= since]
            counts[key] = sum(n for _, n in stamps)
        return counts

    def _new(self, name: str, cfg: JailConfig, jail: dict, counts: dict[str, int], now: float):
        opened = self.open[name]
        covered = {key for key in counts if _subnet(key) in opened}  # a banned subnet's addresses: counted in it
        if cfg.subnet_min:
            nets: dict[str, list[str]] = {}
            for key in counts:
                if key not in opened:
                    net = _subnet(key)
                    if net is not None:
                        nets.setdefault(net, []).append(key)
            for net, keys in sorted(nets.items()):
                total = sum(counts[k] for k in keys)
                if (len(keys) >= cfg.subnet_min and total >= cfg.maxretry and net not in opened
                        and not _allowed(net, self._allow[name])):
                    covered.update(keys)
                    yield net, self._trip(name, cfg, jail, net, sorted(keys), total, now, subnet=True)
        for key, count in sorted(counts.items()):
            if count >= cfg.maxretry and key not in covered and key not in opened:
                yield key, self._trip(name, cfg, jail, key, [key], count, now)

    def _trip(self, name: str, cfg: JailConfig, jail: dict, key: str, members: list[str], count: int, now: float,
              subnet: bool = False) -> Trip:
        evidence: list[str] = []
        first, last = now, 0.0
        for member in members:
            entry = jail.pop(member)
            evidence.extend(e[1] for e in entry["ev"])
            first = min(first, entry["t"][0][0])
            last = max(last, entry["last"])
        offence, known = 1, f"{name} {key}"  # per jail, as fail2ban's bantime.overalljails = false
        if known in self.offences:
            offence = int(self.offences[known][0]) + 1
        bantime = cfg.bantime
        if cfg.bantime_increment:
            bantime = min(cfg.bantime * cfg.bantime_factor ** (offence - 1), max(cfg.bantime_maxtime, cfg.bantime))
        self.offences[known] = [offence, now]
        if len(self.offences) > MAX_OFFENDERS:
            for old in sorted(self.offences, key=lambda k: self.offences[k][1])[:max(1, MAX_OFFENDERS // 10)]:
                del self.offences[old]
        return Trip(name, key, count, evidence[-EVIDENCE:], float(int(bantime)), float(first), float(last), offence,
                    subnet, members if subnet else [], now + bantime)

    def _forget_offences(self, now: float) -> None:
        keep = max((cfg.bantime_maxtime for cfg in self.config.values()), default=7 * 86400)
        for key in [k for k, (_, when) in self.offences.items() if when < now - keep]:
            del self.offences[key]


# ------------------------------------------------------------------------------------------ findings, proposals

def finding(trip: Trip, cfg: JailConfig):
    """The CRITICAL, security-related finding of a trip."""
    from zenctl.core.agent import Finding

    what = f"subnet {trip.ip} ({len(trip.addresses)} addresses)" if trip.subnet else trip.ip
    message = (f"{trip.jail}: {what} failed {trip.count} time(s) within {_span(cfg.findtime)} (maxretry "
               f"{cfg.maxretry})" + (f"; offence {trip.offence}, ban {_span(trip.bantime)}"
                                     if cfg.ban and trip.bannable else ""))
    evidence = {"jail": trip.jail, "ip": trip.ip, "count": trip.count, "findtime": cfg.findtime,
                "maxretry": cfg.maxretry, "lines": trip.evidence, "first": trip.first, "last": trip.last,
                "offence": trip.offence}
    if trip.subnet:
        evidence["addresses"] = trip.addresses
    if cfg.ban and trip.bannable:
        evidence["bantime"] = trip.bantime
    return Finding(trip.check, "critical", escaped(message), trip.count, float(cfg.maxretry), "failures", evidence,
                   security=True)


def proposals(trips: list[Trip], config: dict[str, JailConfig], banned: dict | None = None) -> list:
    """One `security.block_ip` proposal per address or subnet that tripped a jail that bans (several jails for the
    same address: one ban, the longest). Its parameters stay the same while the trip is open, so an approval
    given on a later run still matches the plan. None for what is banned already: `banned` (element -> seconds
    left), looked up in nftables when not given (empty when nft cannot be asked)."""
    from zenctl.core.actions import Proposal

    merged: dict[str, list[Trip]] = {}
    for trip in trips:
        cfg = config.get(trip.jail)
        if cfg is not None and cfg.ban and trip.bannable and not _allowed(trip.ip, [
                ipaddress.ip_network(n, strict=False) for n in cfg.ignoreip]):
            merged.setdefault(trip.ip, []).append(trip)
    if merged and banned is None:
        from zenctl.agents.log_analyzer.kinds.block_ip import banned as banned_now

        banned = banned_now()
    for ip in [ip for ip in merged if ip in (banned or {})]:
        del merged[ip]
    out = []
    for ip, group in sorted(merged.items()):
        group.sort(key=lambda t: (-t.bantime, t.jail))
        jails = sorted({t.jail for t in group})
        allow = sorted({n for t in group for n in config[t.jail].ignoreip})
        params = {"ip": ip, "bantime": int(group[0].bantime), "jails": jails, "allow": allow}
        reason = "; ".join(f"{t.jail}: {t.count} failure(s), offence {t.offence}" for t in group)
        out.append(Proposal("security.block_ip", ip, params, escaped(reason), group[0].check))
    return out


def _span(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
