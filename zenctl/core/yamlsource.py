"""YAML loading that remembers where every key stands, so errors can say `file:line`.

PyYAML's safe loader builds the values; a walk over the composed node tree records the line of each key path
(`("agents", "system_health", "cpu_threshold")` -> 7). Duplicate keys are an error, not a silent overwrite.

Reading is bounded, because anyone who can point zenctl at a file (or plant one where it looks) can make it read
that: only a regular file (a FIFO would hang the open or the read, /dev/zero would never end), at most MAX_BYTES,
and at most MAX_VALUES values once aliases are expanded (an alias is a reference, so a "billion laughs" document
of a few hundred bytes stands for 10^9 values to anything that walks it); an alias to a value that contains it is
refused. Each is one ConfigError line.
"""

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenctl.core import untrusted
from zenctl.errors import ConfigError

if TYPE_CHECKING:
    import yaml

KeyPath = tuple[str | int, ...]
MAX_BYTES = 1 << 20  # the example listing every key is 20 KB
MAX_VALUES = 100_000  # keys, values and items, aliases expanded


def load_yaml(path: Path, trusted: bool = False) -> tuple[Any, dict[KeyPath, int]]:
    """Read `path` and return its data and the line (1-based) of every key path in it. `trusted`: the file will
    be acted on (its commands run), so only another account's file, or one others could change, is refused."""
    return parse_yaml(read_config(path, trusted), path)


def read_config(path: Path, trusted: bool = False) -> str:
    """The text of the config file at `path` (bounded, a regular file, and with `trusted` one only root or this
    account could have written); ConfigError naming the file otherwise. Reading is separate from parsing so
    that a config unchanged since it was validated is never parsed (core.configcache)."""
    shown = untrusted.name(str(path))  # whoever named it may have put a terminal escape in the name
    try:
        return _read(path, shown, trusted).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{shown}: permission denied reading the config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read config file: {exc.strerror}") from None


def _read(path: Path, shown: str, trusted: bool = False) -> bytes:
    """The bytes of a regular file of at most MAX_BYTES. Checked before opening (opening a device can act on it)
    and again on the descriptor (the name may point elsewhere by then); O_NONBLOCK: a FIFO's open never waits."""
    _regular(shown, os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        _regular(shown, info)
        if trusted:
            _only_mine(shown, path, info)
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:  # it grew since the check
        raise ConfigError(f"{shown}: larger than {MAX_BYTES >> 20} MiB, not a config file")
    return data


def _only_mine(shown: str, path: Path, info: os.stat_result) -> None:
    """The config names commands that run with this process's privileges (checks, restarts, postrotate), so, as
    cron and sshd's StrictModes do, it must be this account's or root's and writable by nobody else, and so must
    every directory on its way (a sticky one like /tmp excepted: others cannot replace what they do not own)."""
    mine = {0, os.geteuid()}
    why = _unsafe(info, mine, sticky_ok=False)
    if why:
        raise ConfigError(f"{shown}: {why}; zenctl runs the commands a config names, so it reads only a file "
                          "owned by root or itself that nobody else can write (chown, chmod go-w)")
    directory = os.path.dirname(os.path.realpath(path))
    while True:
        why = _unsafe(os.stat(directory), mine, sticky_ok=True)
        if why:
            raise ConfigError(f"{shown}: its directory {untrusted.name(directory)} {why}, so anyone there could "
                              "replace it; keep the config in a directory only root (or zenctl's account) writes")
        if directory == "/":
            return
        directory = os.path.dirname(directory)


def _unsafe(info: os.stat_result, mine: set[int], sticky_ok: bool) -> str | None:
    if info.st_uid not in mine:
        return f"is owned by uid {info.st_uid}"
    if info.st_mode & 0o022 and not (sticky_ok and info.st_mode & stat.S_ISVTX):
        who = "others" if info.st_mode & 0o002 else "its group"
        return f"is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _regular(shown: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{shown}: is a directory, not a config file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{shown}: not a regular file (a FIFO, device or socket), not a config file")
    if info.st_size > MAX_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_BYTES >> 20} MiB ({info.st_size} bytes), not a config file")


def parse_yaml(text: str, path: Path | str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML text; `path` names it in error messages. PyYAML is imported here, on the first parse."""
    import yaml

    name = untrusted.name(str(path))
    # the C loader is several times faster; fall back when libyaml is missing
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[KeyPath, int] = {}
        _walk(loader, node, (), lines, name, [MAX_VALUES], set())
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _walk(loader, node: "yaml.Node", path: KeyPath, lines: dict[KeyPath, int], name: str, budget: list[int],
          inside: set[int]) -> None:
    """Record the line of every key path under `node`. `budget` ([values left]) stops a billion laughs here, before
    anything builds or validates it; `inside` (the nodes above) catches an alias inside its own anchor."""
    import yaml

    budget[0] -= 1
    line = node.start_mark.line + 1
    if budget[0] < 0:
        raise ConfigError(f"{name}:{line}: more than {MAX_VALUES} values once aliases are expanded, not a config")
    if id(node) in inside:
        raise ConfigError(f"{name}:{line}: an alias refers to a value that contains it (a loop)")
    inside.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):  # building it could be a billion laughs of its own
                raise ConfigError(f"{name}:{line}: a key must be a plain value, not a list or mapping")
            key = loader.construct_object(key_node, deep=True)  # as YAML reads it: `no` is False
            key = key if isinstance(key, (str, int, bool, float)) else str(key)
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                raise ConfigError(f"{name}:{line}: {dotted}: duplicate key")
            seen.add(key)
            lines[(*path, key)] = line
            _walk(loader, value_node, (*path, key), lines, name, budget, inside)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(loader, item, (*path, index), lines, name, budget, inside)
    inside.discard(id(node))
