"""Log line formats: each record's message (the part to mine), time, level, host, program and fields.

Every input is attacker-written text: a line that matches no format still becomes a Record (fields
{"unparsed": True}) so it is counted and sampled; nothing here raises on content. Lines are cut at MAX_LINE
characters (the original length kept in fields["truncated"]); a multi-line record (a Python or Java traceback,
a PostgreSQL statement continued on tab-indented lines) keeps at most MAX_RECORD_LINES lines and
MAX_RECORD_CHARS characters, the rest counted in fields["dropped_lines"].
"""

from __future__ import annotations

import json
import re
import time as _time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone as _tz
from zoneinfo import ZoneInfo

MAX_LINE = 65536
MAX_RECORD_LINES = 200
MAX_RECORD_CHARS = 262144
DETECT_LINES = 50

FORMATS = ("auto", "syslog", "rfc5424", "nginx", "apache", "json", "python", "postgres", "regex")


@dataclass(slots=True)
class Record:
    """One log record; see the module doc. `line` is the 1-based number of its first line in its file."""

    line: int
    message: str
    raw: str
    time: float | None = None
    level: str | None = None
    host: str | None = None
    program: str | None = None
    fields: dict = field(default_factory=dict)


class FormatError(ValueError):
    """A format name or a regex pattern that cannot be used (a configuration error, not a content one)."""


_LEVELS = {
    "trace": "debug", "debug": "debug", "dbg": "debug", "verbose": "debug", "fine": "debug", "finer": "debug",
    "finest": "debug", "d": "debug", "v": "debug", "debug1": "debug", "debug2": "debug", "debug3": "debug",
    "debug4": "debug", "debug5": "debug",
    "info": "info", "information": "info", "informational": "info", "i": "info", "log": "info", "config": "info",
    "notice": "notice", "note": "notice",
    "warn": "warning", "warning": "warning", "w": "warning",
    "err": "error", "error": "error", "severe": "error", "e": "error", "failure": "error",
    "crit": "critical", "critical": "critical", "fatal": "critical", "alert": "critical", "emerg": "critical",
    "emergency": "critical", "panic": "critical", "f": "critical", "a": "critical",
}
_SYSLOG_SEVERITY = ("critical", "critical", "critical", "error", "warning", "notice", "info", "debug")


def normalize_level(text: str | None) -> str | None:
    """A level word of any common spelling as one of debug/info/notice/warning/error/critical, else None."""
    if not text:
        return None
    return _LEVELS.get(text.strip().strip("[]<>:").lower())


# ---------------------------------------------------------------------------------------------------------- time

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                        "dec"), 1)}


class _Clock:
    """Turns the time texts of one file into epoch seconds, with the file's timezone and a small cache (consecutive
    lines share their second)."""

    def __init__(self, timezone: str | None, year: int | None) -> None:
        try:
            self.zone = ZoneInfo(timezone) if timezone else None
        except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise FormatError(f"unknown timezone: {timezone!r}") from exc
        self.year = year
        self.now = _time.time()
        self.cache: dict[str, float | None] = {}

    def _local(self, parts: tuple) -> float | None:
        try:
            dt = datetime(*parts)
        except (ValueError, OverflowError):
            return None
        if self.zone is not None:
            return dt.replace(tzinfo=self.zone).timestamp()
        return dt.timestamp()  # naive: the host's local time, as syslog writes it

    def _cached(self, text: str, compute) -> float | None:
        cache = self.cache
        value = cache.get(text, cache)
        if value is cache:
            if len(cache) > 4096:
                cache.clear()
            value = cache[text] = compute(text)
        return value

    def bsd(self, text: str) -> float | None:
        """"Mmm dd hh:mm:ss" (RFC 3164, no year: the given one, else the current one, or last year's when that
        lands more than a day in the future). Cached by the minute: random seconds hit the cache too."""
        if len(text) >= 15 and text[12] == ":":
            base = self._cached(text[:12], self._bsd_minute)
            try:
                return None if base is None else base + float(text[13:])
            except ValueError:
                return None
        return self._cached(text, self._bsd)

    def _bsd_minute(self, text: str) -> float | None:
        return self._bsd(text + ":00")

    def _bsd(self, text: str) -> float | None:
        try:
            mon, day, clock = text.split()
            h, m, s = clock.split(":")
            month = _MONTHS[mon[:3].lower()]
            sec = float(s)
            parts = (int(day), int(h), int(m), int(sec), int(round((sec % 1) * 1e6)) % 1000000)
        except (ValueError, KeyError):
            return None
        if self.year is not None:
            return self._local((self.year, month) + parts)
        year = datetime.fromtimestamp(self.now).year
        value = self._local((year, month) + parts)
        if value is not None and value > self.now + 86400:
            value = self._local((year - 1, month) + parts)
        return value

    def iso(self, text: str) -> float | None:
        """ISO 8601 / RFC 3339 (also with a space, a comma before the fraction, or a trailing zone name)."""
        return self._cached(text, self._iso)

    def _iso(self, text: str) -> float | None:
        text = text.strip()
        if text[2:3] == "/" and text[5:6] == "/":  # log4j's yy/MM/dd
            text = "20" + text
        elif text[6:7] == " " and text[:6].isdigit():  # Hadoop's yyMMdd HHmmss
            text = f"20{text[:2]}-{text[2:4]}-{text[4:6]} {text[7:9]}:{text[9:11]}:{text[11:13]}"
        zone = None
        if text.endswith(("UTC", "GMT")):
            text, zone = text[:-3].rstrip(), _tz.utc
        elif " " in text[11:]:  # "2024-01-01 12:00:00.123 CET": a zone name postgres writes
            head, _, name = text.rpartition(" ")
            if name.isalpha():
                text = head
                try:
                    zone = ZoneInfo(name)
                except (ValueError, KeyError, OSError):
                    zone = None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        text = text.replace(",", ".").replace("/", "-")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone or self.zone) if (zone or self.zone) else dt
        try:
            return dt.timestamp()
        except (OverflowError, OSError, ValueError):
            return None

    def clf(self, text: str) -> float | None:
        """Common log format "10/Oct/2000:13:55:36 -0700"."""
        return self._cached(text, self._clf)

    def _clf(self, text: str) -> float | None:
        try:
            dt = datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
        except ValueError:
            try:
                dt = datetime.strptime(text, "%d/%b/%Y:%H:%M:%S")
            except ValueError:
                return None
            return self._local(dt.timetuple()[:6])
        return dt.timestamp()

    def ctime(self, text: str) -> float | None:
        """Apache error log "Sun Dec 04 04:47:44 2005" (also with microseconds)."""
        return self._cached(text, self._ctime)

    def _ctime(self, text: str) -> float | None:
        try:
            _, mon, day, clock, year = text.split()
            h, m, s = clock.split(":")
            sec = float(s)
            return self._local((int(year), _MONTHS[mon[:3].lower()], int(day), int(h), int(m), int(sec),
                                int(round((sec % 1) * 1e6)) % 1000000))
        except (ValueError, KeyError):
            return None

    def epoch(self, value) -> float | None:
        """A number: epoch seconds, or milliseconds/microseconds/nanoseconds when it is that large."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if number != number or number in (float("inf"), float("-inf")):
            return None
        while abs(number) > 1e11:  # beyond year 5138 in seconds: a finer unit
            number /= 1000.0
        return number

    def any(self, value) -> float | None:
        """A JSON time value of any common shape."""
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return self.epoch(value)
        if isinstance(value, str):
            text = value.strip()
            if text.replace(".", "", 1).isdigit():
                return self.epoch(text)
            if text[:1].isdigit():
                return self.iso(text) if "/" not in text[:10] or ":" not in text[10:11] else self.clf(text)
            return self.bsd(text) if len(text.split()) == 3 else None
        return None


# ------------------------------------------------------------------------------------------------------- parsers

# RFC 3164: optional <PRI>, "Mmm dd hh:mm:ss" or an RFC 3339 time (rsyslog's high-precision template), host,
# tag[pid]: message. A tag may hold "(" ")" "/" "." "-" (sshd(pam_unix), postfix/smtpd, systemd-logind).
_SYSLOG = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?"
    r"(?:(?P<bsd>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?)|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?))"
    r" (?:(?P<host>[^\s:\[]+) )?(?P<tag>[^\s:\[]{1,64}?)(?:\[(?P<pid>[^\]\s]{0,20})\])?: ?(?P<msg>.*)\Z",
    re.S,
)
# A message without tag ("Jan  1 00:00:00 host kernel message..." with the colon missing): the host and the rest.
_SYSLOG_NOTAG = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<bsd>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) (?P<msg>.*)\Z", re.S)

_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?\Z",
    re.S,
)

_ACCESS = re.compile(
    r'(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-)(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?'
    r"(?P<rest>.*)\Z",
    re.S,
)
_REQUEST_TIME = re.compile(r"(?:^|\s)(?:rt=|request_time=|rt:)?(?P<v>\d+(?:\.\d+)?)\s*\Z")
# nginx error.log "2024/01/01 12:00:00 [error] 123#0: *4 message"
_NGINX_ERROR = re.compile(
    r"(?P<ts>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<conn>\d+) )?"
    r"(?P<msg>.*)\Z", re.S)
# Apache error log, 2.2 "[Sun Dec 04 04:47:44 2005] [error] message" and 2.4
# "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1:tid 2] [client 1.2.3.4:5] AH00124: message".
_APACHE_ERROR = re.compile(
    r"\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] "
    r"\[(?:(?P<module>[\w-]+):)?(?P<level>\w+)\] (?:\[pid (?P<pid>\d+)(?::tid \d+)?\] )?"
    r"(?:\[client (?P<client>[^\]]+)\] )?(?P<msg>.*)\Z", re.S)

# Python logging and Java (log4j/logback): a leading time, then somewhere in the next few words a level.
# ISO-like "2024-01-01 12:00:00,123", log4j's "17/06/09 20:10:40" (yy/MM/dd) and Hadoop's "081109 203615".
_TS_HEAD = re.compile(
    r"\[?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|\d\d/\d\d/\d\d \d\d:\d\d:\d\d"
    r"(?:[.,]\d+)?|\d{6} \d{6})\]?(?: (?:-|\|) | |\t)(?P<rest>.*)\Z", re.S)
_LEVEL_HEAD = re.compile(
    r"(?:(?P<pre>(?:\[[^\]]{0,80}\]|[\w.$-]{1,80}:?)[ \t]+(?:-[ \t]+)?){0,2}?)\[?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|"
    r"ERROR|SEVERE|CRITICAL|FATAL)\]?:?(?:[ \t]+|\Z)(?P<msg>.*)\Z", re.S | re.I)
# Python's basicConfig default "ERROR:root:message".
_PY_BASIC = re.compile(r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):(?P<logger>[^:\s]*):(?P<msg>.*)\Z", re.S)
# After the level: "[thread] logger - message", "logger: message", "logger - message".
_LOGGER_PREFIX = re.compile(r"(?:\[[^\]]{0,80}\] )?(?P<logger>[\w.$]{1,120}(?:\[[^\]]{0,40}\])?)(?: -|:) (?P<msg>.*)\Z",
                            re.S)
# log4j's "[thread:Class@line] - message" (the thread name may hold brackets: "QuorumPeer[myid=1]/0:0:0:0")
_LOG4J_PREFIX = re.compile(r"\[(?P<where>[^\n]{1,240}?)\] - (?P<msg>.*)\Z", re.S)
_PY_FRAME = re.compile(r'\s*File "(?P<file>[^"]*)", line (?P<lineno>\d+), in (?P<func>\S+)')
_JAVA_FRAME = re.compile(r"\s+at (?P<frame>[\w$.<>/]+)\((?P<where>[^)]*)\)")
_EXCEPTION = re.compile(r"(?:Caused by: )?(?P<type>[A-Za-z_][\w.$]*(?:Error|Exception|Exit|Interrupt|Warning|"
                        r"Throwable|Failure|Fault)|[A-Za-z_][\w.$]*\.[A-Z]\w*)(?::\s*(?P<text>.*))?\Z", re.S)

_POSTGRES = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z][\w+/-]{0,31}| [+-]\d\d(?::?\d\d)?)?)"
    r"(?P<prefix>.*?) ?(?P<level>LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|STATEMENT|DETAIL|HINT|"
    r"CONTEXT|LOCATION|QUERY):  (?P<msg>.*)\Z", re.S)
_PG_PID = re.compile(r"\[(?P<pid>\d+)\]")
_PG_KV = re.compile(r"(?P<k>user|db|app|client|host)=(?P<v>[^,\s]*)")
_PG_DURATION = re.compile(
    r"duration: (?P<ms>\d+(?:\.\d+)?) ms(?:  (?:(?P<kind>statement|execute|parse|bind)(?: (?P<name>[^:]*))?: "
    r"(?P<stmt>.*))?)?\Z", re.S)
_PG_LEVEL = {"STATEMENT": None, "DETAIL": None, "HINT": None, "CONTEXT": None, "LOCATION": None, "QUERY": None,
             "LOG": "info"}

_JSON_MESSAGE = ("message", "msg", "MESSAGE", "log", "text", "event", "@message", "short_message")
_JSON_LEVEL = ("level", "levelname", "severity", "lvl", "loglevel", "log.level", "PRIORITY", "@level")
_JSON_TIME = ("time", "timestamp", "ts", "@timestamp", "datetime", "date", "asctime", "__REALTIME_TIMESTAMP",
              "t", "created")
_JSON_HOST = ("host", "hostname", "_HOSTNAME", "host.name")
_JSON_PROGRAM = ("program", "SYSLOG_IDENTIFIER", "service", "app", "logger", "name", "logger_name", "_COMM",
                 "service.name", "application")


def _cut(text: str, fields: dict | None = None) -> str:
    if len(text) > MAX_LINE:
        if fields is not None:
            fields["truncated"] = len(text)
        return text[:MAX_LINE]
    return text


class _Parser:
    """One format's line parser. `head(text)` returns a Record for a line that starts a record, else None;
    `continues(text)` says whether a line that is not a head belongs to the record before it."""

    multiline = False

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock

    def head(self, number: int, text: str) -> Record | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def continues(self, text: str) -> bool:
        return False

    def finish(self, record: Record, extra: list[str]) -> None:
        """Called with the continuation lines of a multi-line record."""


class _Syslog(_Parser):
    def head(self, number: int, text: str) -> Record | None:
        m = _SYSLOG.match(text)
        if m is None:
            m = _SYSLOG_NOTAG.match(text)
            if m is None:
                return None
            tag = pid = None
        else:
            tag, pid = m.group("tag"), m.group("pid")
        g = m.group
        bsd = g("bsd")
        when = self.clock.bsd(bsd) if bsd else self.clock.iso(g("iso"))
        pri = g("pri")
        level = None
        fields = {}
        if pri is not None:
            level = _SYSLOG_SEVERITY[int(pri) & 7]
            fields["facility"] = int(pri) >> 3
        if pid:
            fields["pid"] = pid
        return Record(number, g("msg"), text, when, level, g("host"), tag, fields)


class _Rfc5424(_Parser):
    def head(self, number: int, text: str) -> Record | None:
        m = _RFC5424.match(text)
        if m is None:
            return None
        g = m.group
        pri = int(g("pri"))
        ts = g("ts")
        fields: dict = {"facility": pri >> 3}
        for key in ("procid", "msgid", "sd"):
            if g(key) != "-":
                fields[key] = g(key)
        if "procid" in fields:
            fields["pid"] = fields.pop("procid")
        msg = g("msg") or ""
        if msg.startswith("\ufeff"):
            msg = msg[1:]
        host, app = g("host"), g("app")
        return Record(number, msg, text, None if ts == "-" else self.clock.iso(ts), _SYSLOG_SEVERITY[pri & 7],
                      None if host == "-" else host, None if app == "-" else app, fields)


class _Access(_Parser):
    """nginx/apache combined (or common) access log, an optional request time as the last field; the error logs
    of both servers too, so one `nginx` source can read either file."""

    def __init__(self, clock: _Clock, integer_unit: float = 1e-6) -> None:
        super().__init__(clock)
        self.integer_unit = integer_unit

    def head(self, number: int, text: str) -> Record | None:
        m = _ACCESS.match(text)
        if m is None:
            return self._error_log(number, text)
        g = m.group
        request = g("request")
        parts = request.split(" ")
        fields: dict = {"ip": g("ip"), "status": int(g("status")), "bytes": 0 if g("bytes") == "-" else int(g("bytes"))}
        if g("user") != "-":
            fields["user"] = g("user")
        if len(parts) == 3:
            fields["method"], fields["path"], fields["protocol"] = parts
        elif len(parts) == 2:
            fields["method"], fields["path"] = parts
        else:
            fields["request"] = request
        if g("referer") is not None:
            fields["referer"] = g("referer")
            fields["agent"] = g("agent")
        rest = g("rest")
        if rest:
            rt = _REQUEST_TIME.search(rest)
            if rt is not None:
                value = rt.group("v")
                fields["request_time"] = float(value) if "." in value else int(value) * self.integer_unit
        status = fields["status"]
        level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        return Record(number, f"{request} {status}", text, self.clock.clf(g("ts")), level, None, None, fields)

    def _error_log(self, number: int, text: str) -> Record | None:
        m = _NGINX_ERROR.match(text)
        if m is not None:
            fields = {"pid": m.group("pid")}
            if m.group("conn"):
                fields["connection"] = m.group("conn")
            return Record(number, m.group("msg"), text, self.clock.iso(m.group("ts")),
                          normalize_level(m.group("level")), None, "nginx", fields)
        m = _APACHE_ERROR.match(text)
        if m is not None:
            fields = {}
            if m.group("pid"):
                fields["pid"] = m.group("pid")
            if m.group("client"):
                client = m.group("client")
                fields["client"] = client
                fields["ip"] = client.rsplit(":", 1)[0] if client.count(":") == 1 or "]:" in client else client
                fields["ip"] = fields["ip"].strip("[]")
            if m.group("module"):
                fields["module"] = m.group("module")
            return Record(number, m.group("msg"), text, self.clock.ctime(m.group("ts")),
                          normalize_level(m.group("level")), None, "apache", fields)
        return None


class _Json(_Parser):
    def head(self, number: int, text: str) -> Record | None:
        stripped = text.lstrip()
        if not stripped.startswith("{"):
            return None
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        message = _pick(obj, _JSON_MESSAGE)
        if message is None:
            message = ""
        elif not isinstance(message, str):
            message = json.dumps(message, sort_keys=True, default=str)
        level = _pick(obj, _JSON_LEVEL)
        if isinstance(level, int) and not isinstance(level, bool):
            # journald PRIORITY 0..7, or bunyan/pino 10..60
            level = (_SYSLOG_SEVERITY[level] if 0 <= level <= 7 else
                     {10: "debug", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical"}.get(level))
        elif isinstance(level, str):
            level = (_SYSLOG_SEVERITY[int(level)] if level.isdigit() and int(level) <= 7 else normalize_level(level))
        else:
            level = None
        when = _pick(obj, _JSON_TIME)
        host = _pick(obj, _JSON_HOST)
        program = _pick(obj, _JSON_PROGRAM)
        return Record(number, message, text, self.clock.any(when), level,
                      host if isinstance(host, str) else None, program if isinstance(program, str) else None, obj)


def _pick(obj: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in obj:
            return obj[key]
        if "." in key:
            head, _, tail = key.partition(".")
            inner = obj.get(head)
            if isinstance(inner, dict) and tail in inner:
                return inner[tail]
    return None


class _Python(_Parser):
    """Python logging and Java (log4j, logback) records: a time first, a level within the next words, and the
    traceback or stack trace on the lines after, until the next line that starts with a time."""

    multiline = True

    def head(self, number: int, text: str) -> Record | None:
        m = _TS_HEAD.match(text)
        if m is None:
            b = _PY_BASIC.match(text)
            if b is None:
                return None
            return Record(number, b.group("msg"), text, None, normalize_level(b.group("level")), None,
                          b.group("logger") or None, {})
        when = self.clock.iso(m.group("ts"))
        rest = m.group("rest")
        lm = _LEVEL_HEAD.match(rest)
        fields: dict = {}
        program = None
        if lm is None:
            return Record(number, rest, text, when, None, None, None, fields)
        level = normalize_level(lm.group("level"))
        msg = lm.group("msg")
        if msg[:2] in ("- ", "| ", ": "):
            msg = msg[2:]
        pre = [word.strip("[]:") for word in (lm.group("pre") or "").split() if word != "-"]
        if pre:
            # "asctime logger LEVEL msg" / "asctime [thread] LEVEL msg"
            name = pre[-1]
            if name and not name.isdigit():
                program = name
        if program is None:  # "LEVEL logger: msg", "LEVEL [thread] logger - msg", "LEVEL [thread:Class@1] - msg"
            pm = _LOGGER_PREFIX.match(msg)
            if pm is not None:
                program, msg = pm.group("logger"), pm.group("msg")
            elif msg[:1] == "[":
                pm = _LOG4J_PREFIX.match(msg)
                if pm is not None:
                    where = pm.group("where")
                    program = where.rpartition(":")[2].partition("@")[0] or None
                    msg = pm.group("msg")
        return Record(number, msg, text, when, level, None, program, fields)

    def continues(self, text: str) -> bool:
        return True  # everything up to the next record belongs to the one before (a traceback, a dump)

    def finish(self, record: Record, extra: list[str]) -> None:
        tb = traceback_summary(extra)
        if tb is not None:
            record.fields["traceback"] = tb


def traceback_summary(lines: list[str]) -> dict | None:
    """The exception type and innermost frame of a Python traceback or a Java stack trace, else None.

    Python prints the innermost frame last; Java prints it first (the root cause's, after the last "Caused by").
    """
    py_frame = exc = None
    java_frame = None
    in_cause = False
    for text in lines:
        fm = _PY_FRAME.match(text)
        if fm is not None:
            py_frame = f"{fm.group('file')}:{fm.group('func')}"
            continue
        jm = _JAVA_FRAME.match(text)
        if jm is not None:
            if java_frame is None or in_cause:
                java_frame = jm.group("frame")
                in_cause = False
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith(("Traceback", "...", "^", "~")) or text[:1] in " \t":
            continue
        em = _EXCEPTION.match(stripped)
        if em is not None:
            exc = em.group("type")
            if stripped.startswith("Caused by: "):
                in_cause = True
    if exc is None and py_frame is None and java_frame is None:
        return None
    return {"type": exc, "frame": py_frame or java_frame}


class _Postgres(_Parser):
    multiline = True

    def head(self, number: int, text: str) -> Record | None:
        m = _POSTGRES.match(text)
        if m is None:
            return None
        g = m.group
        raw_level = g("level")
        level = _PG_LEVEL[raw_level] if raw_level in _PG_LEVEL else normalize_level(raw_level)
        fields: dict = {"pg_level": raw_level}
        prefix = g("prefix")
        if prefix:
            pm = _PG_PID.search(prefix)
            if pm is not None:
                fields["pid"] = pm.group("pid")
            for kv in _PG_KV.finditer(prefix):
                if kv.group("v") and kv.group("v") != "[unknown]":
                    fields[kv.group("k")] = kv.group("v")
        msg = g("msg")
        if msg.startswith("duration: "):
            dm = _PG_DURATION.match(msg)
            if dm is not None:
                fields["duration_ms"] = float(dm.group("ms"))
                if dm.group("stmt") is not None:
                    fields["statement"] = dm.group("stmt")
                    if dm.group("kind") != "statement":
                        fields["phase"] = dm.group("kind")
        elif raw_level == "STATEMENT":
            fields["statement"] = msg
        return Record(number, msg, text, self.clock.iso(g("ts")), level, None, "postgres", fields)

    def continues(self, text: str) -> bool:
        return text[:1] == "\t" or (text[:1] == " " and bool(text.strip()))

    def finish(self, record: Record, extra: list[str]) -> None:
        if "statement" in record.fields:
            record.fields["statement"] = "\n".join([record.fields["statement"], *(t.strip() for t in extra)])


class _Regex(_Parser):
    def __init__(self, clock: _Clock, pattern: str | None) -> None:
        super().__init__(clock)
        if not pattern:
            raise FormatError("format regex needs a pattern (with a named group 'message')")
        try:
            self.regex = re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise FormatError(f"bad regex pattern {pattern!r}: {exc}") from exc
        self.groups = set(self.regex.groupindex)

    def head(self, number: int, text: str) -> Record | None:
        m = self.regex.search(text)
        if m is None:
            return None
        found = {k: v for k, v in m.groupdict().items() if v is not None}
        message = found.pop("message", text if "message" not in self.groups else "")
        when = found.pop("time", None)
        level = normalize_level(found.pop("level", None))
        host = found.pop("host", None)
        program = found.pop("program", None)
        if "status" in found and found["status"].isdigit():
            found["status"] = int(found["status"])
        for key in ("request_time", "duration_ms"):
            if key in found:
                try:
                    found[key] = float(found[key])
                except ValueError:
                    del found[key]
        return Record(number, message, text, self.clock.any(when) if when else None, level, host, program, found)


class _Plain(_Parser):
    """No known format: the whole line is the message, with a leading time and level taken off when there is one."""

    _HEAD = re.compile(
        r"(?:\[?(?:\d{2,4}[-/.]\d\d[-/.]\d{2,4}[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|"
        r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\]?[ \t]+)?(?:\[?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|"
        r"SEVERE|CRITICAL|FATAL)\]?:?[ \t]+)?(?P<msg>.*)\Z", re.S)

    def head(self, number: int, text: str) -> Record:
        m = self._HEAD.match(text)
        return Record(number, m.group("msg"), text, None, normalize_level(m.group("level")), None, None,
                      {"unparsed": True})


_DETECT_ORDER = ("json", "rfc5424", "nginx", "postgres", "syslog", "python")


def _make(fmt: str, clock: _Clock, pattern: str | None) -> _Parser:
    if fmt == "syslog":
        return _Syslog(clock)
    if fmt == "rfc5424":
        return _Rfc5424(clock)
    if fmt == "nginx":
        return _Access(clock, integer_unit=1.0)  # nginx writes $request_time with a decimal point
    if fmt == "apache":
        return _Access(clock, integer_unit=1e-6)  # Apache's integer %D is microseconds
    if fmt == "json":
        return _Json(clock)
    if fmt == "python":
        return _Python(clock)
    if fmt == "postgres":
        return _Postgres(clock)
    if fmt == "regex":
        return _Regex(clock, pattern)
    raise FormatError(f"unknown log format {fmt!r} (one of: {', '.join(FORMATS)})")


def detect(lines: list[str]) -> str | None:
    """The format most of these (first) lines match, None when no format matches any of them."""
    clock = _Clock(None, None)
    best, best_count = None, 0
    sample = [t[:4096] for t in lines if t.strip()][:DETECT_LINES]
    for fmt in _DETECT_ORDER:
        parser = _make("apache" if fmt == "nginx" else fmt, clock, None)
        count = 0
        for text in sample:
            if fmt == "python":  # a python record head must carry a level; a bare time is not enough
                rec = parser.head(0, text)
                count += rec is not None and rec.level is not None
            else:
                count += parser.head(0, text) is not None
        if count > best_count:
            best, best_count = fmt, count
    return best


def parse_lines(lines: Iterable[tuple[int, str]], fmt: str, *, pattern: str | None = None,
                timezone: str | None = None, year: int | None = None) -> Iterator[Record]:
    """Records from (1-based line number, text without newline) pairs; see the module doc.

    fmt "auto" picks the format from the first lines (DETECT_LINES of them); "apache" and "nginx" differ only in
    how an integer request time is read (microseconds for Apache's %D, seconds for nginx). Raises FormatError
    only for a bad `fmt`, `pattern` or `timezone`, before the first record.
    """
    clock = _Clock(timezone, year)
    source = iter(lines)
    buffered: list[tuple[int, str]] = []
    if fmt == "auto":
        for item in source:
            buffered.append(item)
            if len(buffered) >= DETECT_LINES * 4 or sum(1 for _, t in buffered if t.strip()) >= DETECT_LINES:
                break
        found = detect([t for _, t in buffered])
        parser: _Parser = _make("apache" if found == "nginx" else found, clock, None) if found else _Plain(clock)
    else:
        parser = _make(fmt, clock, pattern)
    plain = _Plain(clock)

    def stream() -> Iterator[tuple[int, str]]:
        yield from buffered
        yield from source

    pending: Record | None = None
    extra: list[str] = []
    chars = 0
    dropped = 0
    multiline = parser.multiline
    head = parser.head
    for number, text in stream():
        if len(text) > MAX_LINE:
            long_fields: dict = {}
            text = _cut(text, long_fields)
        else:
            long_fields = None
        rec = head(number, text) if text else None
        if rec is None and multiline and pending is not None and parser.continues(text):
            if len(extra) < MAX_RECORD_LINES and chars + len(text) <= MAX_RECORD_CHARS:
                extra.append(text)
                chars += len(text) + 1
            else:
                dropped += 1
            continue
        if pending is not None:
            yield _close(parser, pending, extra, dropped)
            pending, extra, chars, dropped = None, [], 0, 0
        if rec is None:
            if not text.strip():
                continue  # an empty line is no record
            rec = plain.head(number, text)
        if long_fields:
            rec.fields.update(long_fields)
        if multiline and not rec.fields.get("unparsed"):
            pending, chars = rec, len(text)
        else:
            yield rec
    if pending is not None:
        yield _close(parser, pending, extra, dropped)


def _close(parser: _Parser, record: Record, extra: list[str], dropped: int) -> Record:
    if extra:
        record.raw = "\n".join([record.raw, *extra])
        parser.finish(record, extra)
    if dropped:
        record.fields["dropped_lines"] = dropped
    return record

