"""Security incidents in log records: which record is a failure for which jail, and whose address it blames.

The cases are fail2ban's (its `sshd` filter in normal, ddos, extra and aggressive modes, `apache-auth`,
`nginx-http-auth`), written anew, plus sudo/su failures and web attacks in access logs. Everything here reads text
an attacker wrote: user names, request lines, identification strings. So the address is always taken from where
the daemon writes it, never from wherever a pattern first matches: anchored at the end of the line when the
attacker's text comes before it (`Invalid user U from HOST port N`), at the start when it comes after
(`Received disconnect from HOST port N:11: TEXT`), and when the line is ambiguous (a user name holding a fake
`from 1.2.3.4 port 22 ssh2`), by the address the same sshd process was already known by.

Several sshd cases need the lines before (fail2ban's multi-line "mlfid"): `Connection from HOST` followed by a
failure that names no address, failed public keys that only count once the connection ends without success, a
login that succeeds after failures for other users. A `Classifier` keeps that per connection (host and pid),
bounded; feed it every record of one file, in order. `classify(record)` is the same without that memory.

Speed: every sshd record is dispatched on the first word of its message (a dict lookup) before any regex runs, and
`Classifier.scan` classifies raw syslog lines without a Record at all, dropping other programs' lines in its read
loop (what bench/authlog.py measures against fail2ban-regex).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_plus

from zenctl.agents.log_analyzer.formats import Record

JAILS = ("sshd", "sudo", "apache-auth", "nginx-http-auth", "web-4xx", "web-scan", "web-attack")
# Each filter mode and the kinds of hits it accepts (a hit's own mode is the least mode that reports it).
JAIL_MODES = {
    "sshd": {"normal": {"normal"}, "ddos": {"normal", "ddos"}, "extra": {"normal", "extra"},
             "aggressive": {"normal", "ddos", "extra"}},
    "apache-auth": {"normal": {"normal"}, "aggressive": {"normal", "aggressive"}},
    "nginx-http-auth": {"normal": {"normal"}, "auth": {"normal"}, "fallback": {"fallback"},
                        "aggressive": {"normal", "fallback"}},
}
MAX_CONNECTIONS = 4096  # sshd processes remembered (least recently seen forgotten first)
MAX_USERS = 8  # user names remembered per connection
MAX_SSH_MESSAGE = 2048


@dataclass(slots=True)
class Hit:
    """One record that counts against an address (or, for `sudo`, a local user) in a jail.

    ip: the address as sshd/the web server wrote it, canonical (an IPv4-mapped IPv6 address as IPv4); a host name
    when sshd logged one (UseDNS): counted and reported, never banned. None for the `sudo` jail (local users).
    count: how many failures the record stands for ("Too many authentication failures" after two failed keys: 3).
    mode: the least filter mode that reports it (sshd: normal, ddos, extra; see JAIL_MODES)."""

    jail: str
    ip: str | None
    kind: str
    count: int = 1
    user: str | None = None
    mode: str = "normal"

    @property
    def key(self) -> str:
        """What the jail counts: the address, or `user:NAME` for local users."""
        return self.ip if self.ip is not None else f"user:{self.user}"


# ------------------------------------------------------------------------------------------------------ addresses

_ADDR = (r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
         r"|\d{1,3}(?:\.\d{1,3}){3}|[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*\Z")


@lru_cache(maxsize=8192)
def host(token: str) -> str | None:
    """A logged host token as the address to blame: canonical IP text (IPv4-mapped IPv6 as IPv4), a host name
    as written, or None for anything else (empty, `unknown`, garbage)."""
    token = token.strip("[]")
    if not token:
        return None
    try:
        addr = ipaddress.ip_address(token.split("%", 1)[0])
    except ValueError:
        if token.lower() in ("unknown", "unknown-host", "localhost.localdomain") or not _HOSTNAME.match(token):
            return None
        if not any(c.isalpha() for c in token) and not token.replace(".", "").isdigit():
            return None
        return token
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def is_ip(text: str | None) -> bool:
    """True when `text` is an IP address (a host name is not: it is never banned)."""
    if not text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------- sshd patterns

_PORT = r"(?: port \d+)?(?: on \S+(?: port \d+)?)?"
_END = r"(?: \[preauth\])?\s*\Z"
# "Failed METHOD for [invalid user ]USER from HOST port N sshN[: INFO]"; every " from HOST ..." followed by the
# end or ": " is a candidate, and the user name may hold fake ones (see _failed).
_FAILED = re.compile(r"Failed (\S+) for (invalid user )?")
_FROM_CAND = re.compile(rf" from ({_ADDR}){_PORT}(?: (ssh\d*))?(?=: |\s*\Z)")
_AFTER_FROM = re.compile(rf"{_PORT}(?: ssh\d*)?(?=: |\s*\Z)")  # what may follow the address
_KEY_INFO = re.compile(r": [A-Z][A-Z0-9-]*(?:@\S+)? (?:SHA256:|MD5:|[0-9a-f]{2}:)\S*"
                       r"(?:, client user \".*\", client host \".*\")?\s*\Z")
_HOST_TAIL = re.compile(rf"({_ADDR}){_PORT}{_END}")  # what follows the last " from " of "Invalid user U from ..."
_NOT_ALLOWED = re.compile(
    rf"User (.*) from ({_ADDR}) not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any "
    rf"group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups){_END}", re.S)
_LOCKED = re.compile(rf"User (\S+) not allowed because account is locked{_END}")
_NOT_KNOWN = re.compile(rf"User not known to the underlying authentication module for (.*) from ({_ADDR}){_END}",
                        re.S)
_PAM_MSG = re.compile(rf"[aA]uthentication (?:failure|error|failed) for (.*) from ({_ADDR})(?: via \S+)?{_END}",
                      re.S)
_ROOT_REFUSED = re.compile(rf"ROOT LOGIN REFUSED.* FROM ({_ADDR}){_PORT}{_END}")
_TCPWRAP = re.compile(rf"refused connect from \S+ \(({_ADDR})\)\s*\Z")
_RECEIVED = re.compile(rf"Received disconnect from ({_ADDR}){_PORT}:\s*(\d+): (.*)\Z", re.S)
_AUTH_FAIL = re.compile(r".*: Auth fail(?: \[preauth\])?\s*\Z", re.S)
_NO_METHODS = re.compile(r"No(?: supported)? authentication methods available")
_TOO_MANY = re.compile(rf"Disconnecting: Too many authentication failures(?: for (.*?))?{_END}", re.S)
_CHANGE_USER = re.compile(
    rf"Disconnecting (?:invalid|authenticating) user (.*?) ({_ADDR}){_PORT}: Change of username or service not "
    rf"allowed: \((.*)\[preauth\]\s*\Z", re.S)
_DISCONNECTING_USER = re.compile(rf"Disconnecting (?:invalid |authenticating )?user (.*) ({_ADDR}){_PORT}: ", re.S)
_MAX_ATTEMPTS = re.compile(
    rf"maximum authentication attempts exceeded for (?:invalid user )?(.*) from ({_ADDR}){_PORT}(?: ssh\d*)?{_END}",
    re.S)
# Connection closed/reset, Disconnected: "by|from [invalid |authenticating ]user USER HOST port N [preauth]"
_CLOSED = re.compile(rf"(?:Connection (?:closed|reset)|Disconnected) (?:by|from)(?: (?:invalid |authenticating )?"
                     rf"user (.*?))? ({_ADDR}){_PORT}( \[preauth\])?\s*\Z", re.S)
_CONNECTION_FROM = re.compile(rf"Connection from ({_ADDR}) port \d+")
_ACCEPTED = re.compile(rf"Accepted (\S+) for (\S+) from ({_ADDR})(?: |\Z)")
_PAM_UNIX = re.compile(
    rf"pam_[a-z]+\(sshd:auth\):\s+authentication failure;(?:\s+(?:logname|e?uid|tty)=\S*){{0,4}}\s+ruser=(\S*)\s+"
    rf"rhost=({_ADDR})(?:\s+user=(\S*))?{_END}")
_IDENT = re.compile(rf"Did not receive identification string from ({_ADDR}){_PORT}{_END}")
_BAD_VERSION = re.compile(rf"Bad protocol version identification '.*' from ({_ADDR}){_PORT}{_END}", re.S)
_KEX = re.compile(r"kex_exchange_identification: (?:read: )?(?:[Cc]lient sent invalid protocol identifier|"
                  r"[Cc]onnection (?:closed by remote host|reset by peer))")
_BANNER = re.compile(rf"banner exchange: Connection from ({_ADDR}){_PORT}: invalid format")
_DISPATCH = re.compile(rf"ssh_dispatch_run_fatal: Connection from ({_ADDR}){_PORT}: (?:message authentication code "
                       rf"incorrect|Connection corrupted)")
_TIMEOUT = re.compile(rf"Timeout before authentication for (?:connection from )?({_ADDR})")
_SOCKET_RESET = re.compile(r"Read from socket failed: Connection reset by peer")
_LTYPE = re.compile(rf"SSH: Server;Ltype: (?:Authname|Version|Kex);Remote: ({_ADDR})-\d+;")
_NEGOTIATE_WITH = re.compile(rf"Unable to negotiate with ({_ADDR}){_PORT}: no matching (?:\w+ ){{0,3}}found\b")
_NEGOTIATE_A = re.compile(r"Unable to negotiate a \w+")
_NO_MATCHING = re.compile(r"no matching (?:\w+ ){0,3}found:")


_PREFIX_CHARS = frozenset("efP[")
_NO_USERS: frozenset[str] = frozenset()


class _Conn:
    """What one sshd process (one connection) told so far."""

    __slots__ = ("ip", "users", "soft", "noip")

    def __init__(self) -> None:
        self.ip: str | None = None
        self.users: frozenset[str] | set[str] = _NO_USERS  # its own set once a user is seen
        self.soft = 0  # failures that count only if the connection ends without success (failed keys, PAM)
        self.noip = 0  # failures logged without an address, waiting for a line that names it

    def add_user(self, user: str | None) -> None:
        if user is None or user in self.users or len(self.users) >= MAX_USERS:
            return
        if self.users is _NO_USERS:
            self.users = {user[:100]}
        else:
            self.users.add(user[:100])


# ------------------------------------------------------------------------------------------------- web patterns

_APACHE = re.compile(
    r"(?:\[[^\]]{0,64}\] )?\[(?:(?P<module>[\w-]*):)?(?P<level>\w+)\](?: \[pid [^\]]{0,64}\])? "
    r"\[(?:client|remote) (?P<client>\[[0-9A-Fa-f:.]+\](?::\d+)?|[^\]\s]+)\] (?:AH\d+: )?(?P<msg>.*)\Z", re.S)
_APACHE_RULES = (
    ("denied", re.compile(r"client (?:denied by server configuration|used wrong authentication scheme)\b")),
    ("auth_failure", re.compile(r"user (?!`)\S*(?: .*?)? (?:authentication failure|authorization failure|not found"
                                r"|denied by provider)\b", re.S)),
    ("auth_failure", re.compile(r"Authorization of user .*? to access .*? failed\b", re.S)),
    ("password_mismatch", re.compile(r"(?:[A-Z]\w+: )?user .*?: password mismatch\b", re.S)),
    ("auth_failure", re.compile(r"(?:[A-Z]\w+: )?user `[^']*' in realm `.*' (?:authentication failure|"
                                r"authorization failure|not found|denied by provider)\b", re.S)),
    ("digest", re.compile(r"(?:[A-Z]\w+: )?(?:invalid nonce \S+ received - (?:length is not|user attempted time "
                          r"travel)|realm mismatch - got `.*' but expected|unknown algorithm `.*' received|"
                          r"invalid qop `.*' received)\b", re.S)),
    ("sni", re.compile(r"(?:No h|H)ostname \S+ provided via SNI(?:, but no hostname provided| and hostname \S+ "
                       r"provided| for a name based virtual host)\b")),
)
_NGINX_LINE = re.compile(r"\[(?P<level>\w+)\] \d+#\d+: (?:\*\d+ )?(?P<msg>.*)\Z", re.S)
_NGINX_AUTH_HEAD = re.compile(r"(?:user \"|PAM: user ')")
_NGINX_AUTH_TAIL = re.compile(
    rf"(?:\":? (?:password mismatch|was not found in \"[^\"]*\")|' - not authenticated: [^,]*), client: ({_ADDR}), "
    r"server: \S*, request: \"[^\"]*\", host: \"[^\"]*\"(?:, referrer: \"[^\"]*\")?\s*\Z")
_NGINX_SSL = re.compile(
    rf"SSL_(?:do_handshake|read)\(\) failed \(SSL: error:[0-9A-Fa-f]+:SSL routines:.{{0,200}}?(?:too (?:long|short)|"
    rf"bad key share|bad record type|SSL alert number \d+).{{0,300}}?, client: ({_ADDR}), server: \S*\s*\Z")

_SUSPICIOUS = re.compile(r"[%<>'\"();$\\{}`|]|\.\.")
_TRAVERSAL = re.compile(r"(?:^|[/\\=])\.\.+(?:[/\\;]|$)|/etc/(?:passwd|shadow|group|hosts)\b|\bwin\.ini\b|"
                        r"\bboot\.ini\b|[a-z]:\\+windows\\|/proc/self/(?:environ|cmdline|fd)")
_SQLI = re.compile(
    r"\bunion(?:\s|\+|/\*.{0,100}?\*/|%20){1,20}(?:all(?:\s|\+|/\*.{0,100}?\*/){1,20})?select\b|"
    r"['\"`)]\s*(?:or|and|\|\||&&)\s*['\"(]?\w*['\"]?\s*(?:=|<|>|like\b)|"
    r"\b(?:or|and)\s+\d+\s*=\s*\d+|"
    r"\b(?:sleep|benchmark|pg_sleep|extractvalue|updatexml|load_file|xp_cmdshell|dbms_pipe\.receive_message)\s*\(|"
    r"\bwaitfor\s+delay\s+'|\binformation_schema\b|\binto\s+(?:out|dump)file\b|"
    r"['\"`)]\s*;\s*(?:drop|delete|insert|update|shutdown|exec)\b|['\"]\s*(?:--|#)|"
    r"\bselect\s+(?:@@\w+|\w+\s*\([^)]{0,200}\)\s*from|\*\s*from|null\s*,|concat\s*\()|"
    r"\bconcat(?:_ws)?\s*\(\s*0x", re.S)
_XSS = re.compile(r"<\s*/?\s*(?:script|iframe|svg|img|body|object|embed|details|math|marquee|input|video|audio)\b|"
                  r"javascript\s*:|vbscript\s*:|\bon(?:error|load|mouseover|focus|click|submit|toggle|begin|"
                  r"animationstart)\s*=|\bdocument\.(?:cookie|domain|location)\b|\balert\s*\(|\bprompt\s*\(|"
                  r"string\.fromcharcode\s*\(", re.S)
_INJECTION = re.compile(r"\$\{\s*(?:jndi|\$\{|lower:|upper:|env:|sys:|::-)|\(\)\s*\{\s*:?\s*;\s*\}|"
                        r"(?:php|data|expect|phar|zip|glob|file)://|[;|`]\s*(?:cat|id|uname|wget|curl|nc|bash|sh|"
                        r"whoami|ping|echo)\b|\$\((?:cat|id|uname|wget|curl|whoami|echo)\b|/bin/(?:ba)?sh\b|"
                        r"\bcmd\.exe\b|\bpowershell\b", re.S)
_SCANNERS = re.compile(r"sqlmap|nikto|nmap|masscan|zgrab|gobuster|dirbuster|\bdirb\b|wpscan|nuclei|acunetix|nessus|"
                       r"openvas|w3af|arachni|whatweb|wfuzz|ffuf|feroxbuster|jaeles|hydra|netsparker|appscan|zmeu|"
                       r"morfeus|censysinspect|l9explore|l9tcpid|fuzz faster|nmap scripting engine|"
                       r"internet-measurement|\bbrutus\b|havij|commix|xsser|skipfish|vega/|paros|webinspect")
# First path segments only scanners ask for (when the site answers 4xx: a site that has them is not probed).
_PROBE_SEGMENTS = frozenset((
    "wp-login.php", "wp-admin", "xmlrpc.php", "wp-includes", "wp-content", "phpmyadmin", "pma", "myadmin",
    "phpmyadmin2", "mysqladmin", "adminer", "adminer.php", "cgi-bin", "hnap1", "boaform", "gponform",
    "eval-stdin.php", "solr", "actuator", "manager", "jmx-console", "web-console", "owa", "autodiscover", "ecp",
    "remote", "+cscoe+", "_ignition", "telescope", "console", "setup.cgi", "shell", "shell.php", "cmd.php",
    "login.action", "struts2-showcase", "druid", "nacos", "geoserver", "wls-wsat", "_profiler", "hudson", "jenkins",
    "mgmt", "sdk", "phpinfo.php", "info.php", "test.php", "server-status", "server-info", "config.php", "admin.php",
    "wp-config.php", "setup.php", "install.php", "vendor", "api/jsonws", "debug", "elmah.axd", "trace.axd",
    "owa-auth", "cf_scripts", "invoker", "axis2", "lib", "dana-na", "global-protect", "sslvpn", "ssl-vpn", "vpn",
))
# Files nobody but a scanner asks for, at any depth, whatever the answer (a 200 here is a leak, not a pass).
_DOTFILES = re.compile(r"/\.(?:env|git|svn|hg|bzr|aws|ssh|htpasswd|htaccess|ds_store|vscode|idea|docker|npmrc|"
                       r"pypirc|bash_history|kube|boto)\b|/(?:id_[rd]sa|id_ecdsa|id_ed25519)\b|"
                       r"/(?:backup|dump|database|db|site|wwwroot|www)\.(?:sql|tar|tar\.gz|tgz|zip|rar|7z|bak)\b|"
                       r"\.(?:php|inc|conf|config|ini|yml|yaml)\.(?:bak|old|orig|save|swp|tmp|~)\b")
_HEX_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")

# ---------------------------------------------------------------------------------------------- sudo patterns

_SUDO = re.compile(r"\s*(\S+) : (?:(\d+) incorrect password attempts?|(user NOT in sudoers|user NOT authorized on "
                   r"host|command not allowed|a password is required)) ;")
_SU = re.compile(r"FAILED SU \(to (\S+)\) (\S+) on |FAILED su for (\S+) by (\S+)")

_SSH_PROGRAMS = ("sshd", "sshd-session", "sshd-auth")
# RFC 5424 with structured data formats' parser does not take (an unescaped "]" inside a quoted value).
_RFC5424_TAG = re.compile(r'<\d{1,3}>1 \S+ \S+ (?P<prog>\S+) (?P<pid>\S+) \S+ '
                          r'(?:-|(?:\[[^\s\]]+(?: [^=\s\]]+="(?:[^"\\]|\\.)*")*\])+)(?: (?P<msg>.*))?\Z', re.S)
_TAG_STARTS = frozenset(("ss", "su", "ng", "ap", "ht"))  # sshd*, sudo, su, nginx, apache*, httpd*
# A line the raw path cannot split (no "tag: ", a bracketed or empty tag) that may still be one of ours.
_ODD_LINE = re.compile(r"sshd|sudo|\bsu\b|nginx|apache|httpd")
_PREFIX_TAG = re.compile(r"(?:<\d{1,3}>)?(?:\S+ +){0,5}?\[?(?P<prog>sshd(?:-session|-auth)?|sudo|su|httpd(?:/\w+)?|"
                         r"apache2?|nginx)(?:\[(?P<pid>\d+)\])?\]?:? +(?P<msg>.*)\Z", re.S)


class Classifier:
    """Failures per record with memory of each sshd connection; one instance per file, records in order.

    modes: a filter mode per jail with modes (`sshd`: normal, ddos, extra, aggressive; `apache-auth`: normal,
    aggressive; `nginx-http-auth`: normal, fallback, aggressive). state: what `state()` returned for the same
    file at the end of the last run (connections still open then)."""

    def __init__(self, modes: dict[str, str] | None = None, state: dict | None = None) -> None:
        modes = modes or {}
        self.accept: dict[str, set[str]] = {}
        for jail, choices in JAIL_MODES.items():
            mode = modes.get(jail) or "normal"
            if mode not in choices:
                raise ValueError(f"unknown mode {mode!r} for jail {jail} (one of: {', '.join(choices)})")
            self.accept[jail] = choices[mode]
        self.ssh = self.accept["sshd"]
        self.conns: OrderedDict[tuple, _Conn] = OrderedDict()
        for item in (state or {}).get("conns", [])[:MAX_CONNECTIONS]:
            try:
                key, ip, users, soft, noip = item
                conn = _Conn()
                conn.ip, conn.soft, conn.noip = ip, int(soft), int(noip)
                for user in users[:MAX_USERS]:
                    conn.add_user(str(user))
                self.conns[tuple(key)] = conn
            except (TypeError, ValueError):
                continue

    def state(self) -> dict:
        """The open connections, JSON-able and bounded (MAX_CONNECTIONS)."""
        return {"conns": [[list(k), c.ip, sorted(c.users), c.soft, c.noip] for k, c in self.conns.items()
                          if c.ip or c.soft or c.noip]}

    # --------------------------------------------------------------------------------------------- dispatch

    def classify(self, record) -> Hit | None:
        """The failure this record stands for, or None. `record` is a formats.Record."""
        fields = record.fields
        if "status" in fields:
            return self._access(fields)
        program = record.program
        message = record.message
        pid = fields.get("pid") or fields.get("_PID") or fields.get("SYSLOG_PID")  # syslog, journald's JSON
        if program is None or fields.get("unparsed"):
            found = _RFC5424_TAG.match(record.raw) or _PREFIX_TAG.match(record.raw)
            if found is None:
                return self._nginx(record.raw) if "#" in record.raw else None
            program, pid, message = found.group("prog"), found.group("pid"), found.group("msg") or ""
        if program in _SSH_PROGRAMS or program.startswith("sshd"):
            return self._ssh((record.host, pid) if pid else None, message)
        if program == "sudo" or program == "su":
            return _sudo(program, message)
        if program == "nginx":
            return self._nginx(message)
        if program.startswith(("apache", "httpd")):
            return self._apache(message, record.raw)
        return None

    def classify_line(self, number: int, text: str) -> Hit | None:
        """The failure a raw syslog line (RFC 3164, or its RFC 3339-timed variant) stands for, without building a
        Record: the tag is found with three string searches and every other program's line is dropped at once.
        Lines of any other shape go through `classify` as an unparsed record. Same answers as `classify` on the
        record formats' syslog parser makes of the line."""
        colon = text.find(": ", 15)
        if colon > 0:
            if text[colon - 1] == "]":
                end = text.rfind("[", 0, colon)
                pid = text[end + 1:colon - 1]
            else:
                end, pid = colon, None
            space = text.rfind(" ", 0, end)
            tag = text[space + 1:end]
            if tag[:4] == "sshd":
                found = _ssh_handler(text[colon + 2:])
                if found is None:
                    return None
                if pid:
                    before = text.rfind(" ", 0, space)
                    name = text[before + 1:space]
                    key = (None if name[2:3] == ":" else name, pid)  # no host: the token is the time
                else:
                    key = None
                return found[0](self, key, found[1])
            if tag == "sudo" or tag == "su":
                return _sudo(tag, text[colon + 2:])
            if tag[:1].isalnum() and tag != "nginx" and tag[:6] != "apache" and tag[:5] != "httpd":
                return None  # another program's line
        if _ODD_LINE.search(text):
            return self.classify(Record(number, text, text, fields={"unparsed": True}))
        return None

    def scan(self, lines: Iterable[tuple[int, str]] | Iterable[str]) -> Iterator[tuple[int, str, Hit]]:
        """(line number, text, hit) for each raw syslog line that is a failure; see classify_line. `lines`: (number,
        text) pairs, or the lines of a file (numbered from 1, their newline dropped). For a file, a line whose
        syslog tag does not start as one of ours ("ss", "su", "ng", "ap", "ht") is dropped in the loop itself."""
        classify = self.classify_line
        lines = iter(lines)
        first = next(lines, None)
        if first is None:
            return
        if not isinstance(first, str):
            for number, text in itertools.chain((first,), lines):
                hit = classify(number, text)
                if hit is not None:
                    yield number, text, hit
            return
        ours = _TAG_STARTS
        for number, text in enumerate(itertools.chain((first,), lines), 1):
            colon = text.find(": ", 15)
            if colon > 0:
                space = text.rfind(" ", 15, colon)
                if space >= 15 and text[space + 1:space + 3] not in ours and text[space + 1:space + 2].isalnum():
                    continue  # another program's line (a tag "CRON[12]", "systemd-logind[3]", ...)
            text = text.rstrip("\n")
            hit = classify(number, text)
            if hit is not None:
                yield number, text, hit

    # ------------------------------------------------------------------------------------------------- sshd

    def _ssh(self, key: tuple | None, msg: str) -> Hit | None:
        found = _ssh_handler(msg)
        return None if found is None else found[0](self, key, found[1])

    def _conn(self, key: tuple | None, create: bool = True) -> _Conn | None:
        if key is None:
            return None
        conn = self.conns.get(key)
        if conn is not None:
            self.conns.move_to_end(key)
        elif create:
            conn = self.conns[key] = _Conn()
            if len(self.conns) > MAX_CONNECTIONS:
                self.conns.popitem(last=False)
        return conn

    def _fail(self, key, ip: str | None, kind: str, user: str | None = None, mode: str = "normal",
              summary: bool = False, forget: bool = False) -> Hit | None:
        """A failure. Without an address it waits in its connection for a line that names one. It absorbs the
        connection's soft failures (they were this same attempt), or counts them too when it `summary`-izes the
        connection (Too many authentication failures)."""
        if mode not in self.ssh:
            return None
        if key is not None and ip is not None and key not in self.conns:  # the usual case: a new connection
            if not forget:
                conn = self.conns[key] = _Conn()
                conn.ip = ip
                if user is not None:
                    conn.users = {user[:100]}
                if len(self.conns) > MAX_CONNECTIONS:
                    self.conns.popitem(last=False)
            return Hit("sshd", ip, kind, 1, user, mode)
        conn = self._conn(key)
        count = 1
        if conn is not None:
            if ip is None:
                ip = conn.ip
            else:
                conn.ip = ip
            conn.add_user(user)
            if summary:
                count += conn.soft
            conn.soft = 0
            if ip is not None:
                count += conn.noip
                conn.noip = 0
            else:
                conn.noip += 1
            if forget:
                self.conns.pop(key, None)
        if ip is None:
            return None
        return Hit("sshd", ip, kind, count, user, mode)

    def _close(self, key, ip: str | None, user: str | None, preauth: bool, kind: str = "preauth_disconnect",
               extra: bool = False) -> Hit | None:
        """The connection ends: failures that waited in it count now (with the address it names); in ddos mode a
        close before authentication is itself a failure."""
        conn = self.conns.pop(key, None) if key is not None else None
        count = 0
        if conn is not None:
            count = conn.soft + conn.noip
            ip = ip or conn.ip
        mode = "normal"
        if preauth and ("ddos" in self.ssh or (extra and "extra" in self.ssh)):
            count += 1
            mode = "ddos" if "ddos" in self.ssh else "extra"
        if not count or ip is None:
            return None
        return Hit("sshd", ip, kind if mode != "normal" else "failed_then_closed", count, user, mode)

    def _soft(self, key, ip: str, user: str | None, kind: str) -> Hit | None:
        """A failure that may be a legitimate user's (a key the server does not know, PAM before another method):
        it counts when the connection ends without success, or at once when the connection tries a second user."""
        conn = self._conn(key)
        if conn is None:
            return None
        conn.ip = ip
        conn.add_user(user)
        conn.soft += 1
        if len(conn.users) > 1:
            count, conn.soft = conn.soft, 0
            return Hit("sshd", ip, kind, count, user)
        return None

    def _failed(self, key, msg: str) -> Hit | None:
        head = _FAILED.match(msg)
        if head is None:
            return None
        method, invalid = head.group(1), head.group(2) is not None
        rest = msg[head.end():]
        ip = user = None
        if rest.count(" from ") == 1:  # the usual line: the address and what may follow it, without a search
            at = rest.find(" from ")
            space = rest.find(" ", at + 6)
            if space < 0:
                space = len(rest)
            if _AFTER_FROM.match(rest, space):
                ip, user = host(rest[at + 6:space]), rest[:at]
        if ip is None:
            cands = [(m, host(m.group(1))) for m in _FROM_CAND.finditer(rest)]
            cands = [(m, ip) for m, ip in cands if ip is not None]
            if not cands:
                return None
            chosen = None
            if len(cands) > 1:
                conn = self._conn(key, create=False)
                if conn is not None and conn.ip:
                    chosen = next(((m, ip) for m, ip in cands if ip == conn.ip), None)
                if chosen is None:
                    chosen = _pick_failed(cands, rest)
            else:
                chosen = cands[0]
            match, ip = chosen
            user = rest[:match.start()]
        if method == "publickey" and not invalid:
            return self._soft(key, ip, user, "failed_publickey")
        return self._fail(key, ip, "invalid_user" if invalid else "failed_" + method.split("/")[0].replace("-", "_"),
                          user)

    def _invalid(self, key, msg: str) -> Hit | None:
        """`Invalid user U from HOST port N`: U is the attacker's, so HOST is after the last " from "."""
        at = msg.rfind(" from ")
        if at < 12 or msg[8:13] != "user ":
            return None
        m = _HOST_TAIL.match(msg, at + 6)
        ip = m and host(m.group(1))
        return self._fail(key, ip, "invalid_user", msg[13:at]) if ip else None

    def _user(self, key, msg: str) -> Hit | None:
        m = _NOT_ALLOWED.match(msg)
        if m:
            ip = host(m.group(2))
            return self._fail(key, ip, "user_not_allowed", m.group(1)) if ip else None
        m = _LOCKED.match(msg)
        if m:
            return self._fail(key, None, "account_locked", m.group(1))
        m = _NOT_KNOWN.match(msg)
        if m:
            ip = host(m.group(2))
            return self._fail(key, ip, "unknown_user", m.group(1)) if ip else None
        return None

    def _authentication(self, key, msg: str) -> Hit | None:
        m = _PAM_MSG.match(msg)
        ip = m and host(m.group(2))
        return self._fail(key, ip, "auth_failure", m.group(1)) if ip else None

    def _root(self, key, msg: str) -> Hit | None:
        m = _ROOT_REFUSED.match(msg)
        ip = m and host(m.group(1))
        return self._fail(key, ip, "root_refused", "root") if ip else None

    def _refused(self, key, msg: str) -> Hit | None:
        m = _TCPWRAP.match(msg)
        ip = m and host(m.group(1))
        return self._fail(key, ip, "tcp_wrappers") if ip else None

    def _received(self, key, msg: str) -> Hit | None:
        if (key not in self.conns and "Auth fail" not in msg
                and ("extra" not in self.ssh or "authentication methods" not in msg)):
            return None  # a plain disconnect of a connection with nothing pending: nothing to count
        m = _RECEIVED.match(msg)
        ip = m and host(m.group(1))
        if not ip:
            return None
        code, text = m.group(2), m.group(3)
        if code == "3" and _AUTH_FAIL.match(text):
            return self._fail(key, ip, "auth_fail_disconnect", forget=True)
        if code == "14" and _NO_METHODS.match(text):
            if "extra" in self.ssh:
                return self._fail(key, ip, "no_auth_methods", mode="extra", forget=True)
        return self._close(key, ip, None, False)

    def _disconnecting(self, key, msg: str) -> Hit | None:
        m = _TOO_MANY.match(msg)
        if m:
            return self._fail(key, None, "too_many_failures", m.group(1), summary=True)
        m = _CHANGE_USER.match(msg)
        if m:
            ip = host(m.group(2))
            conn = self._conn(key, create=False)
            if conn is not None and conn.ip and ip != conn.ip:
                if f" {conn.ip} " not in msg:
                    return None
                ip = conn.ip
            return self._fail(key, ip, "change_of_user", m.group(1)) if ip else None
        m = _DISCONNECTING_USER.match(msg)
        if m:  # "Too many authentication failures" after "maximum authentication attempts": counted already
            return self._close(key, host(m.group(2)), m.group(1), False)
        return None

    def _maximum(self, key, msg: str) -> Hit | None:
        m = _MAX_ATTEMPTS.match(msg)
        ip = m and host(m.group(2))
        return self._fail(key, ip, "max_attempts", m.group(1), summary=True) if ip else None

    def _closed(self, key, msg: str) -> Hit | None:
        if key not in self.conns and ("[preauth]" not in msg or len(self.ssh) == 1):
            return None  # nothing pending, and no mode in which a close is a failure by itself
        m = _CLOSED.match(msg)
        if m is None:
            return None
        ip = host(m.group(2))
        if ip is None:
            return None
        user = m.group(1)
        extra = msg.startswith("Disconnected") and user is not None
        return self._close(key, ip, user, m.group(3) is not None, extra=extra)

    def _connection(self, key, msg: str) -> Hit | None:
        if msg.startswith("Connection from "):
            m = _CONNECTION_FROM.match(msg)
            ip = m and host(m.group(1))
            return self._known(key, ip) if ip else None
        if msg.startswith(("Connection closed", "Connection reset")):
            return self._closed(key, msg)
        return None

    def _known(self, key, ip: str) -> Hit | None:
        """A line that names the connection's address: failures waiting for it count now."""
        conn = self._conn(key)
        if conn is None:
            return None
        conn.ip = ip
        if conn.noip:
            count, conn.noip = conn.noip, 0
            return Hit("sshd", ip, "failure_without_address", count)
        return None

    def _accepted(self, key, msg: str) -> Hit | None:
        """A success forgets the connection's soft failures, unless they were for other users (someone guessing
        accounts until one works)."""
        conn = self.conns.pop(key, None) if key is not None else None
        if conn is None:
            return None
        m = _ACCEPTED.match(msg)
        if m is None:
            return None
        user = m.group(2)
        users = conn.users | {user}
        ip = host(m.group(3)) or conn.ip
        if conn.users and len(users) > 1 and ip:
            return Hit("sshd", ip, "success_after_other_users", conn.soft + 1, user)
        return None

    def _pam_unix(self, key, msg: str) -> Hit | None:
        m = _PAM_UNIX.match(msg)
        ip = m and host(m.group(2))
        if not ip:
            return None
        user = m.group(3) or m.group(1) or None
        return self._soft(key, ip, user, "pam_failure")

    def _ddos(self, key, msg: str) -> Hit | None:
        if "ddos" not in self.ssh:
            return None
        for pattern, kind in ((_IDENT, "no_identification"), (_BAD_VERSION, "bad_protocol"), (_BANNER, "banner"),
                              (_DISPATCH, "corrupted"), (_TIMEOUT, "timeout")):
            m = pattern.match(msg)
            if m:
                ip = host(m.group(1))
                return self._fail(key, ip, kind, mode="ddos") if ip else None
        if _KEX.match(msg):
            return self._fail(key, None, "kex_identification", mode="ddos")
        if _SOCKET_RESET.match(msg):
            return self._fail(key, None, "socket_reset", mode="ddos")
        return None

    def _ltype(self, key, msg: str) -> Hit | None:
        m = _LTYPE.match(msg)
        ip = m and host(m.group(1))
        return self._known(key, ip) if ip else None

    def _negotiate(self, key, msg: str) -> Hit | None:
        if "extra" not in self.ssh:
            return None
        m = _NEGOTIATE_WITH.match(msg)
        if m:
            ip = host(m.group(1))
            return self._fail(key, ip, "negotiation", mode="extra") if ip else None
        if _NEGOTIATE_A.match(msg) or _NO_MATCHING.match(msg):
            return self._fail(key, None, "negotiation", mode="extra")
        return None

    # -------------------------------------------------------------------------------------------------- web

    def _apache(self, message: str, raw: str) -> Hit | None:
        m = _APACHE.match(message) or _APACHE.match(raw)
        if m is None:
            return None
        module, level = m.group("module"), m.group("level")
        evasive = bool(module and module.startswith("evasive"))
        if module is None and level != "error":
            return None
        if evasive and "aggressive" not in self.accept["apache-auth"]:
            return None
        msg = m.group("msg")
        for kind, pattern in _APACHE_RULES:
            if pattern.match(msg):
                ip = _client(m.group("client"))
                if ip is None:
                    return None
                return Hit("apache-auth", ip, kind, mode="aggressive" if evasive else "normal")
        return None

    def _nginx(self, text: str) -> Hit | None:
        m = _NGINX_LINE.search(text)
        if m is not None:
            text = m.group("msg")
        if text.startswith(("user \"", "PAM: user '")):
            if "normal" not in self.accept["nginx-http-auth"]:
                return None
            tail = _NGINX_AUTH_TAIL.search(text)
            ip = tail and host(tail.group(1))
            return Hit("nginx-http-auth", ip, "auth_failure") if ip else None
        if text.startswith("SSL_") and "fallback" in self.accept["nginx-http-auth"]:
            tail = _NGINX_SSL.match(text)
            ip = tail and host(tail.group(1))
            return Hit("nginx-http-auth", ip, "ssl_probe", mode="fallback") if ip else None
        return None

    def _access(self, fields: dict) -> Hit | None:
        return access_hit(fields)


def _ssh_handler(msg: str):
    """(handler, message without its prefixes) for an sshd message whose first word one of the rules starts with,
    else None: the dispatch that keeps regexes away from the lines no rule is about. sshd writes at most 1 KiB a
    message (OpenSSH's MSGBUFSIZ), so a longer one is not sshd's: it never reaches a regex."""
    if len(msg) > MAX_SSH_MESSAGE:
        return None
    while msg[:1] in _PREFIX_CHARS:  # "error: ", "fatal: ", "error: PAM: ", Solaris' "[ID 800047 auth.info] "
        if msg.startswith(("error: ", "fatal: ")):
            msg = msg[7:]
        elif msg.startswith("PAM: "):
            msg = msg[5:]
        elif msg.startswith("[ID "):
            end = msg.find("] ")
            if end < 0:
                return None
            msg = msg[end + 2:]
        else:
            break
    space = msg.find(" ")
    handler = _SSH_WORDS.get(msg[:space] if space > 0 else msg)
    if handler is None:
        if msg.startswith("pam_") and "(sshd:auth):" in msg[:40]:
            return Classifier._pam_unix, msg
        return None
    return handler, msg


def _pick_failed(cands: list, rest: str):
    """Which of several `from HOST` a Failed line means, with no earlier line of its connection to tell: sshd
    writes its auth info (a key's fingerprint) after the address, nothing after it for passwords, and the user
    name before it. So: the last candidate followed by a key's info or the end, except in SSH1's `: ruser NAME`
    form (the first one followed by it)."""
    for m, ip in cands:
        if m.group(2) == "ssh1" and rest.startswith(": ruser ", m.end()):
            return m, ip
    for m, ip in reversed(cands):
        tail = rest[m.end():]
        if not tail.strip() or _KEY_INFO.match(tail):
            return m, ip
    return cands[-1]


def _client(text: str) -> str | None:
    """Apache's `[client ADDR:PORT]`: IPv4 with port, `[v6]:port`, or a bare address (2.2, no port)."""
    if text.startswith("["):
        return host(text[1:text.find("]")])
    if text.count(":") == 1:
        return host(text.split(":", 1)[0])
    return host(text) or host(text.rsplit(":", 1)[0])


def _sudo(program: str, message: str) -> Hit | None:
    if program == "sudo":
        m = _SUDO.match(message)
        if m is None:
            return None
        if m.group(2):
            return Hit("sudo", None, "sudo_password", min(int(m.group(2)), 100), m.group(1))
        return Hit("sudo", None, "not_in_sudoers" if "sudoers" in m.group(3) else "sudo_denied", 1, m.group(1))
    m = _SU.match(message)
    if m is None:
        return None
    return Hit("sudo", None, "su_failure", 1, m.group(2) or m.group(4))


def decode(text: str) -> str:
    """A request path as the application sees it: percent-decoded up to 3 times (double encoding), nginx's
    `\\xHH` escapes undone, lower case."""
    if "\\x" in text:
        text = _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    for _ in range(3):
        if "%" not in text and "+" not in text:
            break
        decoded = unquote_plus(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return text.lower()


def access_hit(fields: dict) -> Hit | None:
    """An access-log record (fields of formats' nginx/apache parser): an attack in the request line, a scanner
    (its user agent or a path only scanners ask for), else a 401/403/404."""
    ip = fields.get("ip")
    ip = host(ip) if isinstance(ip, str) else None
    if ip is None:
        return None
    path = fields.get("path") or fields.get("request") or ""
    status = fields.get("status") or 0
    if path and _SUSPICIOUS.search(path):
        text = decode(path[:8192])
        for kind, pattern in (("traversal", _TRAVERSAL), ("sqli", _SQLI), ("xss", _XSS), ("injection", _INJECTION)):
            if pattern.search(text):
                return Hit("web-attack", ip, kind)
    agent = fields.get("agent") or ""
    if agent:
        low = agent[:1024].lower()
        if _SCANNERS.search(low):
            return Hit("web-scan", ip, "scanner_agent")
        if "${" in low or "() {" in low:
            if _INJECTION.search(decode(low)):
                return Hit("web-attack", ip, "injection")
    if path:
        low = path[:2048].lower()
        if "/." in low or "." in low[-12:]:
            if _DOTFILES.search(low.split("?", 1)[0]):
                return Hit("web-scan", ip, "sensitive_file")
        if status >= 400:
            segment = low.lstrip("/").split("/", 1)[0].split("?", 1)[0]
            if segment in _PROBE_SEGMENTS:
                return Hit("web-scan", ip, "probe_path")
    if status in (401, 403, 404):
        return Hit("web-4xx", ip, f"http_{status}")
    return None


_SSH_WORDS = {
    "Failed": Classifier._failed,
    "Invalid": Classifier._invalid,
    "invalid": Classifier._invalid,
    "Illegal": Classifier._invalid,
    "illegal": Classifier._invalid,
    "User": Classifier._user,
    "Authentication": Classifier._authentication,
    "authentication": Classifier._authentication,
    "ROOT": Classifier._root,
    "refused": Classifier._refused,
    "Received": Classifier._received,
    "Disconnecting": Classifier._disconnecting,
    "Disconnecting:": Classifier._disconnecting,
    "maximum": Classifier._maximum,
    "Connection": Classifier._connection,
    "Disconnected": Classifier._closed,
    "Accepted": Classifier._accepted,
    "Did": Classifier._ddos,
    "Bad": Classifier._ddos,
    "kex_exchange_identification:": Classifier._ddos,
    "banner": Classifier._ddos,
    "ssh_dispatch_run_fatal:": Classifier._ddos,
    "Timeout": Classifier._ddos,
    "Read": Classifier._ddos,
    "SSH:": Classifier._ltype,
    "Unable": Classifier._negotiate,
    "no": Classifier._negotiate,
}


def classify(record, modes: dict[str, str] | None = None) -> Hit | None:
    """The failure one record stands for, without the memory of earlier lines (see Classifier)."""
    return Classifier(modes).classify(record)
