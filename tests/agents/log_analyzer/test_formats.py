"""Log formats: each one's message, time, level, host, program and fields; detection; multi-line records;
lines no format takes (counted, never fatal); hostile lines (huge, binary, undecodable)."""

from datetime import datetime, timezone

import pytest

from zenctl.agents.log_analyzer.formats import MAX_LINE, FormatError, detect, parse_lines


def parse(lines: list[str], fmt: str = "auto", **kw) -> list:
    return list(parse_lines(enumerate(lines, 1), fmt, **kw))


def utc(*args) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_syslog_rfc3164_with_and_without_pri_and_iso_times():
    recs = parse(["Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=218.188.2.4",
                  "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                  "2024-01-02T03:04:05.5+00:00 host postfix/smtpd[12]: connect from unknown[1.2.3.4]",
                  "Jun 14 15:16:02 combo kernel: Linux version 2.6.5"], "syslog", year=2005, timezone="UTC")
    a, b, c, d = recs
    assert (a.program, a.host, a.fields["pid"], a.message) == ("sshd(pam_unix)", "combo", "19939",
                                                               "authentication failure; rhost=218.188.2.4")
    assert a.time == utc(2005, 6, 14, 15, 16, 1) and a.level is None
    assert (b.level, b.fields["facility"], b.program) == ("critical", 4, "su")
    assert c.time == utc(2024, 1, 2, 3, 4, 5, 500000) and c.program == "postfix/smtpd"
    assert d.program == "kernel" and "pid" not in d.fields


def test_rfc5424():
    (rec,) = parse(['<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 '
                    'iut="3" eventSource="Application"] \ufeffAn application event'])
    assert rec.message == "An application event" and rec.level == "notice" and rec.program == "evntslog"
    assert rec.host == "mymachine.example.com" and rec.fields["msgid"] == "ID47" and "pid" not in rec.fields
    assert rec.time == utc(2003, 10, 11, 22, 14, 15, 3000)


def test_access_logs_with_request_time_and_error_logs():
    recs = parse(['203.0.113.5 - frank [10/Oct/2000:13:55:36 -0700] "GET /a/1?x=2 HTTP/1.1" 404 2326 "http://r/" '
                  '"Mozilla/5.0" 0.123',
                  '203.0.113.6 - - [10/Oct/2000:13:55:37 -0700] "POST /login HTTP/1.1" 503 - "-" "curl" 1500',
                  '::1 - - [10/Oct/2000:13:55:38 -0700] "\\x16\\x03\\x01" 400 0 "-" "-"',
                  '2024/01/01 12:00:00 [error] 123#0: *4 open() "/x" failed, client: 1.2.3.4'], "apache")
    a, b, c, d = recs
    assert a.fields["ip"] == "203.0.113.5" and a.fields["status"] == 404 and a.fields["method"] == "GET"
    assert a.fields["path"] == "/a/1?x=2" and a.fields["request_time"] == 0.123 and a.level == "warning"
    assert a.time == utc(2000, 10, 10, 20, 55, 36) and a.fields["agent"] == "Mozilla/5.0"
    assert b.fields["bytes"] == 0 and b.fields["request_time"] == pytest.approx(0.0015) and b.level == "error"
    assert c.fields["request"] == "\\x16\\x03\\x01" and "unparsed" not in c.fields
    assert d.program == "nginx" and d.level == "error" and d.fields["connection"] == "4"
    (e,) = parse(['1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 2'], "nginx")
    assert e.fields["request_time"] == 2.0  # nginx: seconds; apache's integer %D: microseconds
    (f,) = parse(["[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6"], "apache")
    assert f.level == "error" and f.message == "mod_jk child workerEnv in error state 6"


def test_json_lines():
    recs = parse(['{"time":"2024-01-01T00:00:00Z","level":"warn","msg":"disk slow","host":"a","service":"db"}',
                  '{"ts": 1704067200123, "severity": 3, "message": {"nested": true}}',
                  "[1, 2]", '{"broken": '], "json")
    a, b, c, d = recs
    assert (a.message, a.level, a.host, a.program, a.time) == ("disk slow", "warning", "a", "db", utc(2024, 1, 1))
    assert a.fields["service"] == "db"
    assert b.time == pytest.approx(1704067200.123) and b.level == "error" and b.message == '{"nested": true}'
    assert c.fields == {"unparsed": True} and d.fields == {"unparsed": True}


def test_python_and_java_records_keep_their_tracebacks():
    recs = parse(["2024-01-01 12:00:00,123 - app.db - ERROR - connection lost",
                  "Traceback (most recent call last):",
                  '  File "/srv/app/db.py", line 3, in connect',
                  "    sock.connect()",
                  '  File "/srv/app/net.py", line 9, in connect',
                  "ConnectionError: refused",
                  "",
                  "2024-01-01 12:00:01,000 INFO [main] com.foo.Bar - started",
                  "2024-01-01 12:00:02,000 ERROR [main] com.foo.Bar - boom",
                  "java.lang.RuntimeException: wrapped",
                  "\tat com.foo.Bar.run(Bar.java:10)",
                  "Caused by: java.io.IOException: disk",
                  "\tat java.io.File.open(File.java:1)",
                  "\t... 2 more",
                  "WARNING:root:plain basicConfig"], "python", timezone="UTC")
    a, b, c, d = recs
    assert (a.line, a.level, a.program, a.message) == (1, "error", "app.db", "connection lost")
    assert a.raw.count("\n") == 6 and a.fields["traceback"] == {"type": "ConnectionError",
                                                                 "frame": "/srv/app/net.py:connect"}
    assert a.time == utc(2024, 1, 1, 12, 0, 0, 123000)
    assert (b.line, b.level, b.program, b.message) == (8, "info", "com.foo.Bar", "started")
    assert c.fields["traceback"] == {"type": "java.io.IOException", "frame": "java.io.File.open"}
    assert (d.line, d.level, d.program, d.message) == (15, "warning", "root", "plain basicConfig")


def test_log4j_and_hadoop_heads():
    recs = parse(["17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers",
                  "081109 203615 148 WARN dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
                  "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - "
                  "Notification time out: 3200"], "python", timezone="UTC")
    a, b, c = recs
    assert (a.program, a.level, a.message, a.time) == ("executor.CoarseGrainedExecutorBackend", "info",
                                                       "Registered signal handlers", utc(2017, 6, 9, 20, 10, 40))
    assert (b.program, b.level, b.message, b.time) == ("dfs.DataNode$PacketResponder", "warning",
                                                       "PacketResponder 1 terminating", utc(2008, 11, 9, 20, 36, 15))
    assert (c.program, c.level, c.message) == ("FastLeaderElection", "info", "Notification time out: 3200")


def test_postgres_duration_and_continued_statements():
    recs = parse(["2024-01-01 12:00:00.123 UTC [1234] LOG:  duration: 1001.123 ms  statement: SELECT pg_sleep(1)",
                  "\tFROM t",
                  "2024-01-01 12:00:00 UTC [99]: [1-1] user=app,db=test,app=psql,client=127.0.0.1 ERROR:  relation "
                  '"x" does not exist at character 15',
                  "2024-01-01 12:00:00 UTC [99]: [2-1] user=app,db=test STATEMENT:  select * from x;",
                  "2024-01-01 12:00:01.5 UTC [7] LOG:  duration: 0.5 ms  execute S_1: SELECT 1",
                  "2024-01-01 12:00:02 UTC [7] LOG:  duration: 2.000 ms"], "postgres")
    a, b, c, d, e = recs
    assert a.fields["duration_ms"] == 1001.123 and a.fields["statement"] == "SELECT pg_sleep(1)\nFROM t"
    assert a.level == "info" and a.time == utc(2024, 1, 1, 12, 0, 0, 123000) and a.fields["pid"] == "1234"
    assert b.level == "error" and b.fields["user"] == "app" and b.fields["db"] == "test"
    assert c.fields["statement"] == "select * from x;" and c.level is None
    assert d.fields["phase"] == "execute" and d.fields["statement"] == "SELECT 1"
    assert e.fields["duration_ms"] == 2.0 and "statement" not in e.fields


def test_regex_mines_the_message_group():
    recs = parse(["a=1 lvl=ERROR msg=disk full", "nothing"], "regex",
                 pattern=r"a=(?P<x>\d+) lvl=(?P<level>\w+) msg=(?P<message>.*)")
    assert (recs[0].message, recs[0].level, recs[0].fields) == ("disk full", "error", {"x": "1"})
    assert recs[1].fields == {"unparsed": True} and recs[1].message == "nothing"
    with pytest.raises(FormatError, match="pattern"):
        parse(["x"], "regex", pattern="(?P<message")
    with pytest.raises(FormatError, match="pattern"):
        parse(["x"], "regex")
    with pytest.raises(FormatError, match="klingon"):
        parse(["x"], "klingon")
    with pytest.raises(FormatError, match="timezone"):
        parse(["x"], "syslog", timezone="Mars/Olympus")


def test_detection_picks_the_format_most_lines_match():
    assert detect(["Jun 14 15:16:01 combo sshd[1]: x"] * 3 + ["junk"]) == "syslog"
    assert detect(['1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 1']) == "nginx"
    assert detect(['{"msg": "x"}']) == "json"
    assert detect(["2024-01-01 12:00:00,1 INFO x: y"]) == "python"
    assert detect(["2024-01-01 12:00:00.1 UTC [1] LOG:  x"]) == "postgres"
    assert detect(["no format at all", "none"]) is None
    recs = parse(["no format at all", "ERROR something broke"])
    assert all(r.fields.get("unparsed") for r in recs) and recs[1].message == "something broke"
    assert recs[1].level == "error"


def test_hostile_lines_are_records_never_errors():
    huge = "Jun 14 15:16:01 h sshd[1]: " + "A" * 10_000_000
    recs = parse([huge, "\x00\x01\x02\xff binary", "bad \udcff\udcfe utf8", "", "   ", "<999>garbage"], "syslog")
    assert len(recs) == 4
    assert len(recs[0].raw) == MAX_LINE and recs[0].fields["truncated"] == len(huge)
    assert recs[1].fields["unparsed"] and recs[2].fields["unparsed"] and recs[3].fields["unparsed"]
    many = ["2024-01-01 12:00:00,000 ERROR x: boom"] + ["  frame"] * 1000 + ["2024-01-01 12:00:01,000 INFO x: ok"]
    first, second = parse(many, "python")
    assert first.raw.count("\n") == 200 and first.fields["dropped_lines"] == 800 and second.line == 1002
