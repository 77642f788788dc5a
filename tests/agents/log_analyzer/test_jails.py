"""Jails across runs: windows kept in the (JSON) state between runs, repeat offenders banned longer, a /24 or /64
of many failing addresses tripping as one subnet, the allow list never counted, the state bounded."""

import json

import pytest

from zenctl.agents.log_analyzer import jails as J
from zenctl.agents.log_analyzer.config import LogAnalyzerConfig
from zenctl.agents.log_analyzer.formats import Record
from zenctl.agents.log_analyzer.security import Hit

T0 = 1_700_000_000.0


def cfg(**jails):
    """The jails as the agent has them: those the config names, the others with their defaults."""
    named = LogAnalyzerConfig(jails=jails).jails
    assert set(named) == set(jails)
    return {**J.default_jails(), **named}


def record(t: float, text: str = "Failed password for root from 198.51.100.7 port 22 ssh2", line: int = 1):
    return Record(line, text, text, t)


def run(config, state, hits, now):
    """One agent run: a Jails from the stored state, fed, asked, stored again (through JSON, as ctx.remember)."""
    jails = J.Jails(config, json.loads(json.dumps(state)) if state else None)
    for hit, rec in hits:
        jails.feed(hit, rec, now=now)
    trips = jails.tripped(now)
    return trips, json.loads(json.dumps(jails.state()))


def fails(ip: str, times: list[float], jail: str = "sshd"):
    return [(Hit(jail, ip, "failed_password"), record(t, f"from {ip}", i)) for i, t in enumerate(times, 1)]


def test_failures_add_up_across_runs_within_findtime_only():
    config = cfg(sshd={"maxretry": 3, "findtime": 600})
    trips, state = run(config, None, fails("198.51.100.7", [T0, T0 + 10]), T0 + 20)
    assert trips == []
    trips, state = run(config, state, fails("198.51.100.7", [T0 + 700]), T0 + 710)  # the first two are too old
    assert trips == []
    trips, state = run(config, state, fails("198.51.100.7", [T0 + 720, T0 + 730]), T0 + 740)
    assert [(t.jail, t.ip, t.count, t.bantime, t.subnet) for t in trips] == [("sshd", "198.51.100.7", 3, 600, False)]
    assert len(trips[0].evidence) == 3 and trips[0].evidence[0].startswith("1: ")


def test_an_open_trip_is_reported_again_with_the_same_ban_until_its_bantime_passes():
    config = cfg(sshd={"maxretry": 2, "bantime": 600})
    trips, state = run(config, None, fails("198.51.100.7", [T0, T0 + 1]), T0 + 2)
    again, state = run(config, state, fails("198.51.100.7", [T0 + 100]), T0 + 100)
    assert [(t.ip, t.bantime, t.count) for t in again] == [("198.51.100.7", 600, 3)]  # same ban, count goes on
    assert J.proposals(trips, config, {})[0].params == J.proposals(again, config, {})[0].params
    later, state = run(config, state, [], T0 + 700)
    assert later == []
    # banned already (nftables says so): still reported, not proposed again
    assert J.proposals(again, config, {"198.51.100.7": 500}) == []


def test_repeat_offenders_get_longer_bans_up_to_the_maximum():
    config = cfg(sshd={"maxretry": 2, "bantime": 600, "bantime_factor": 4, "bantime_maxtime": 7200})
    state, bans, now = None, [], T0
    for _ in range(4):
        trips, state = run(config, state, fails("198.51.100.7", [now, now + 1]), now + 2)
        bans.append((trips[0].bantime, trips[0].offence))
        now += 8000  # after the ban ended
    assert bans == [(600, 1), (2400, 2), (7200, 3), (7200, 4)]
    flat = cfg(sshd={"maxretry": 2, "bantime_increment": False})
    trips, state = run(flat, None, fails("198.51.100.7", [T0, T0 + 1]), T0 + 2)
    trips, state = run(flat, state, fails("198.51.100.7", [T0 + 900, T0 + 901]), T0 + 902)
    assert trips[0].bantime == 600


def test_many_addresses_of_one_24_trip_as_one_subnet():
    config = cfg(sshd={"maxretry": 5, "subnet_min": 4})
    hits = [h for i in range(1, 5) for h in fails(f"203.0.113.{i}", [T0 + i])] + fails("203.0.113.9", [T0 + 5])
    trips, state = run(config, None, hits + fails("198.51.100.7", [T0] * 5), T0 + 10)
    by_ip = {t.ip: t for t in trips}
    assert set(by_ip) == {"203.0.113.0/24", "198.51.100.7"}
    assert by_ip["203.0.113.0/24"].subnet and by_ip["203.0.113.0/24"].count == 5
    assert by_ip["203.0.113.0/24"].addresses == [f"203.0.113.{i}" for i in (1, 2, 3, 4, 9)]
    proposal = {p.target: p for p in J.proposals(trips, config, {})}["203.0.113.0/24"]
    assert proposal.kind == "security.block_ip" and proposal.params["ip"] == "203.0.113.0/24"
    # IPv6: a /64
    v6 = [h for i in range(1, 6) for h in fails(f"2001:db8:1:2::{i}", [T0 + i])]
    trips, _ = run(config, None, v6, T0 + 10)
    assert [t.ip for t in trips] == ["2001:db8:1:2::/64"]
    # fewer distinct addresses than subnet_min: each address on its own
    trips, _ = run(config, None, fails("203.0.113.1", [T0] * 5) + fails("203.0.113.2", [T0]), T0 + 1)
    assert [t.ip for t in trips] == ["203.0.113.1"]


def test_the_allow_list_is_never_counted_nor_banned():
    config = cfg(sshd={"maxretry": 2, "ignoreip": ["127.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]})
    hits = fails("192.0.2.10", [T0] * 9) + fails("2001:db8::1", [T0] * 9) + fails("127.0.0.1", [T0] * 9)
    trips, state = run(config, None, hits, T0 + 1)
    assert trips == [] and state["hits"].get("sshd", {}) == {}
    # a subnet overlapping the allow list is not banned as a whole
    config = cfg(sshd={"maxretry": 4, "ignoreip": ["198.51.100.77"]})
    trips, _ = run(config, None, [h for i in range(1, 5) for h in fails(f"198.51.100.{i}", [T0])], T0 + 1)
    assert trips == []


def test_sudo_reports_a_local_user_and_never_proposes_a_ban():
    config = cfg()
    hits = [(Hit("sudo", None, "sudo_password", 3, "mallory"), record(T0, "mallory : 3 incorrect password"))]
    trips, _ = run(config, None, hits, T0 + 1)
    assert [(t.jail, t.ip) for t in trips] == [("sudo", "user:mallory")]
    assert J.proposals(trips, config, {}) == []
    finding = J.finding(trips[0], config["sudo"])
    assert finding.status == "critical" and finding.security and finding.evidence["count"] == 3


def test_a_finding_escapes_attacker_text_and_one_address_in_two_jails_gets_one_ban():
    config = cfg(sshd={"maxretry": 1}, **{"web-4xx": {"maxretry": 1, "bantime": 3600}})
    evil = "Invalid user \x1b]52;c;ZWNobyBwd25lZA==\x07 from 198.51.100.7"
    trips, _ = run(config, None, [(Hit("sshd", "198.51.100.7", "invalid_user"), record(T0, evil)),
                                  (Hit("web-4xx", "198.51.100.7", "http_404"), record(T0))], T0 + 1)
    finding = J.finding(trips[0], config[trips[0].jail])
    assert "\x1b" not in json.dumps(finding.evidence) and "\\x1b" in finding.evidence["lines"][0]
    proposals = J.proposals(trips, config, {})
    assert len(proposals) == 1 and proposals[0].params["bantime"] == 3600
    assert proposals[0].params["jails"] == ["sshd", "web-4xx"]


def test_the_state_is_bounded(monkeypatch):
    monkeypatch.setattr(J, "MAX_KEYS", 50)
    monkeypatch.setattr(J, "MAX_HITS", 10)
    jails = J.Jails(cfg(sshd={"maxretry": 10**6}))
    for i in range(200):
        for k in range(30):
            jails.feed(Hit("sshd", f"10.1.{i}.1", "x"), record(T0 + k), now=T0 + 100)
    state = jails.state()
    assert len(state["hits"]["sshd"]) <= 50 and "10.1.199.1" in state["hits"]["sshd"]
    assert all(len(e["t"]) <= 10 and len(e["ev"]) <= J.EVIDENCE for e in state["hits"]["sshd"].values())
    assert J.Jails(None, {"v": 99, "hits": "garbage"}).state()["hits"] == {}  # unreadable state: start empty


def test_a_flood_of_new_addresses_evicts_the_least_recent_in_batches(monkeypatch):
    monkeypatch.setattr(J, "MAX_KEYS", 1000)
    jails = J.Jails(cfg(**{"web-4xx": {"maxretry": 10**6}}))
    for i in range(5000):
        jails.feed(Hit("web-4xx", f"2001:db8::{i:x}", "http_404"), record(T0 + i), now=T0 + 5000)
    kept = jails.state()["hits"]["web-4xx"]
    assert 900 <= len(kept) <= 1000 and "2001:db8::1387" in kept and "2001:db8::1" not in kept


@pytest.mark.parametrize("jails,message", [
    ({"ssh": {}}, "unknown jail 'ssh'"),
    ({"sshd": {"mode": "loud"}}, "unknown mode 'loud'"),
    ({"sshd": {"ignoreip": ["300.0.0.1"]}}, "not an address or network"),
    ({"sshd": {"maxretry": 0}}, "greater than or equal to 1"),
])
def test_bad_jail_config_says_what_is_wrong(jails, message):
    with pytest.raises(ValueError, match=message):
        LogAnalyzerConfig(jails=jails)
