"""Text that others wrote (file names, log lines, alert summaries, webhook answers) made safe to store and print.

File names are bytes; Python hands the undecodable ones over as lone surrogates (surrogateescape), which cannot
be encoded as UTF-8, so SQLite, hashing and JSON for other tools fail on them. Control characters in such text
would be interpreted by the terminal that prints it (OSC 52 writes the clipboard, a title change hides a line)
and by cron (a newline starts a new entry). Two escapes, each one pass:

- `name(path)`: a file name in a message, lossless and reversible: `\\` doubled, undecodable bytes `\\xNN`,
  control characters `\\xNN`. The exact name is kept in the action's parameters (JSON keeps surrogates).
- `line(text)`: any other untrusted text on one line: control characters and undecodable bytes escaped,
  everything else (backslashes included) untouched.
- `storable(text)`: only the undecodable bytes escaped, so SQLite and hashes can take any message.
"""

import re

# C0 controls, DEL, C1 controls, lone surrogates (undecodable bytes), and the bidi overrides that reorder a line.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSAFE_NAME = re.compile("[\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def name(path: str) -> str:
    """A file name as it can be printed, stored in a TEXT column and hashed; lossless (see the module doc)."""
    return _UNSAFE_NAME.sub(_escape, path)


def line(text: str) -> str:
    """Untrusted text as one printable line: control characters and undecodable bytes escaped."""
    return _UNSAFE.sub(_escape, text)


def storable(text: str) -> str:
    """Text that SQLite and UTF-8 can hold: lone surrogates (undecodable bytes) escaped as `name` does, nothing
    else touched. A net under every message; names meant to be read back exactly are escaped by `name` before."""
    return _SURROGATE.sub(_escape, text)


def has_control(text: str) -> bool:
    """True when `text` holds a character `line` would escape (refuse it where escaping is not an option)."""
    return _UNSAFE.search(text) is not None
