"""Values found by their characters, before any clustering: one regex pass (C speed) per new message.

A span is a value when it is any run of word characters (and . + -) that holds a digit (numbers, ids, block
names, versions, times, hex hashes, IPv4 with its port as two values; a size unit after a number and a sign
before it belong to it), an IPv6 address, a date written with names, a URL, a file path of two components or
more (or a Windows path), a dotted name of three parts or more (hosts, Java classes), a host name under a common top-level domain, a
boolean, a hex string of 8 letters a-f or more, or an empty "()". The same rules for every log: no per-system
list to tune. `split(message)` returns the constant pieces and the values between them, so the masked text is
`"<*>".join(pieces[0::2])` and the values are `pieces[1::2]`.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
# Each starts where a run of word characters (and . + -) starts: \b first (one cheap test a character), then a
# look-behind only there (at every character it cost ten times the scan); inside a run no rule starts again, so
# a 8 KiB run is scanned once, not once per word in it. Possessive loops: no backtracking inside a run.
_WORDS = (
    # a date written with names: "Sun Jul 10 03:55:15 2005", "Jul 10", "10 Jul 2005" (names alone stay words)
    rf"(?:{_DAY},?\s+)?{_MONTH}\s+\d{{1,2}}(?:,?\s+\d\d:\d\d:\d\d(?:\.\d+)?)?(?:,?\s+\d{{4}})?\b",
    rf"\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\b",
    # URLs, and Windows paths ("C:\Windows\System32\drivers\x.sys")
    r"[a-z][a-z0-9+.\-]*://[^\s\"'<>]+",
    r"[A-Za-z]:\\[^\s\"'<>|]*",
    # dotted names of three parts or more (host names, Java classes and packages: which one is the value), and
    # host names of two parts under a common top-level domain (file names "job.jar" stay words)
    r"(?:[\w\-$]++\.){2,}[\w\-$]++",
    r"[a-z0-9][a-z0-9\-]*+\.(?:com|net|org|edu|gov|mil|int|info|biz|io|co|uk|de|jp|cn|ru|fr|br|it|nl|pl"
    r"|au|in|kr|tw|ca|es|se|ch|us|eu|local|lan|internal|localdomain)(?![\w.\-])",
    # booleans, and hex strings without a digit (8 letters a-f or more: no English word)
    r"(?:[Tt]rue|[Ff]alse|TRUE|FALSE)\b",
    r"[a-fA-F]{8,}\b",
    # IPv6 (at least two colons between hex groups, or :: forms), before the digit rule eats its pieces
    r"(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])",
    r"(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?(?![\w:])",
    # any run of word characters (and . - +) that holds a digit: numbers, ids, versions, times, sizes, hashes;
    # a size unit after a number is part of it ("12 KB", "3.5 MiB"); dot leaders ("state.....0") end a run
    r"(?:[^\W\d]|[+\-]|\.(?!\.))*+\d(?:[\w+\-]|\.(?!\.))*+(?:\s(?:[KMGTPE]i?B|kB|B)\b)?",
)
MASK = re.compile(
    r"(\b(?<![\w.+\-])(?:" + "|".join(_WORDS) + r")"
    # file paths of two components or more ("/user/root/rand/part-0"): names in them vary without digits
    r"|(?:~|\.{1,2})?(?:/[\w.\-+@%~:,]+){2,}/?"
    # a signed number ("-1", "+5"): the sign, when no word is glued before it, is part of the value
    r"|[\-+](?<![\w.+\-][\-+])\d[\w.+\-]*"
    # a value after dot leaders ("illegal instruction......0")
    r"|\d(?<=\.\.\d)(?:[\w+\-]|\.(?!\.))*+"
    # a dotted name right after "/" or "." ("cmp=com.app/.ui.MainActivity")
    r"|\.(?<![\w.+\-]\.)(?:[\w\-$]++\.){1,}[\w\-$]++"
    # "()" where a value is missing is that value, empty ("from 1.2.3.4 () at" is "from 1.2.3.4 (host) at")
    r"|(?=\))(?:(?<=\s\()|(?<=^\()))"
)


def split(message: str) -> list[str]:
    """re.split with the one capturing group: constants at even, values at odd indexes."""
    return MASK.split(message)
