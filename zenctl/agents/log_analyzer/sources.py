"""Reading logs incrementally across runs, through rotation, without reading a line twice or losing one.

cron leaves no process behind, so where each file was left is kept in the agent's state: per live path (what a
source's glob matches) a list of cursors, each naming a file by its identity, not its name:
`(device, inode, offset, line, fp, tail, gz)`, where `fp` hashes the file's first bytes (up to FP_BYTES, those
read) and `tail` the bytes just before `offset`. Each run finds each cursor's file again among the live file and
its rotated generations in the same directory (`.1`, `.2.gz`, `-20250101`, ...):

- the same inode, same first bytes, at least `offset` long, the bytes before `offset` unchanged: the same file
  (still live, or renamed by a rotation: the old file is read to its end before the new one);
- else a file whose first bytes are the cursor's and whose bytes before `offset` match: a gzip-compressed
  generation (decompressed: its content is the old file's), or the copy copytruncate left; read on from `offset`;
- copytruncate that cut whole blocks off the front (zenctl's own `logs.rotate` collapses them): the copy holds the
  first S bytes, the live file (same inode) continues at `offset - S` (checked by `tail`);
- not found: the rest of that file is lost (said, counted).

A file no cursor claims is new: the live file is read from its start (a first run reads the backlog); a
generation is read whole only when it changed since the last run (mtime after the newest one seen then) and its
first bytes are neither a cursor's nor a file's read to its end before (`done`), so a generation compressed after
it was read is not read again. A plain generation stays followed while a writer may still append to it (until
its rotation's HUP), and is retired to `done` once read to its end and left alone for RETIRE_AFTER seconds.

Logs are attacker-written, and so may be their directories: every directory is reached through
`core.dirwalk.open_dir` (a symlink only where root alone could have placed it), files are opened relative to its
descriptor with O_NOFOLLOW and O_NONBLOCK, must be regular files and, in a directory others can write, have one
name (a hard link to root's file is refused). Lines are cut at `max_line_bytes` (counted), undecodable bytes are
escaped (counted), a line with NUL bytes is counted as binary; a partial last line is left for the next run.
"""

import bisect
import errno
import glob
import gzip
import hashlib
import os
import re
import stat
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

FP_BYTES = 256
TAIL_BYTES = 64
MAX_CURSORS = 32  # per live path
MAX_DONE = 256  # fingerprints of files read to their end, per live path
MAX_PATHS = 1000  # live paths per source
RETIRE_AFTER = 600  # seconds a fully read plain generation is still followed
MAX_GENERATIONS = 64  # generations of one live log considered per run
MAX_REWIND = 512  # lines of the current file a reader can put back (a record still being written)
_BLOCK = 1 << 20
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_GENERATION = re.compile(r"[.-][0-9][0-9._-]*(\.gz)?|\.gz")


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=10).hexdigest()


@dataclass
class Stats:
    """What one source's reading met: counted, never fatal."""

    files: int = 0
    lines: int = 0
    bytes: int = 0
    truncated: int = 0
    invalid_utf8: int = 0
    binary: int = 0
    backlog_bytes: int = 0  # left unread because of max_lines_per_run
    refused: list = field(default_factory=list)  # (path, why)
    lost: list = field(default_factory=list)  # (path, why): a cursor's file that was gone
    limited: bool = False

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class _File:
    """An opened candidate: a plain file or a gzip generation (read decompressed)."""

    def __init__(self, fd: int, st: os.stat_result, name: str, path: str):
        self.fd, self.st, self.name, self.path = fd, st, name, path
        self.gz = name.endswith(".gz")

    def close(self) -> None:
        os.close(self.fd)

    def stream(self, offset: int):
        """A binary file object positioned at `offset` (of the decompressed content for gzip); closing it closes
        everything it opened."""
        raw = open(os.dup(self.fd), "rb", buffering=_BLOCK)
        try:
            if not self.gz:
                raw.seek(offset)
                return raw
            raw.seek(0)  # a dup shares the file offset: another stream may have moved it
            return _Gzip(raw, offset)
        except BaseException:
            raw.close()
            raise

    def read_at(self, offset: int, count: int) -> bytes:
        if count <= 0:
            return b""
        if not self.gz:
            return os.pread(self.fd, count, offset)
        try:
            with self.stream(offset) as handle:
                return handle.read(count)
        except (OSError, EOFError, zlib.error):
            return b""

    def matches(self, cursor: dict) -> bool:
        """The cursor's first bytes and the bytes before its offset are here."""
        if cursor["fp_len"] and _hash(self.read_at(0, cursor["fp_len"])) != cursor["fp"]:
            return False
        return self.tail_matches(cursor, cursor["offset"])

    def tail_matches(self, cursor: dict, at: int) -> bool:
        length = cursor["tail_len"]
        if not length:
            return True
        if at < length:
            return False
        return _hash(self.read_at(at - length, length)) == cursor["tail"]

    def content_size(self) -> int:
        """The size of the content (decompressed for gzip; -1 when it cannot be read)."""
        if not self.gz:
            return self.st.st_size
        try:
            with self.stream(0) as handle:
                size = 0
                while chunk := handle.read(_BLOCK):
                    size += len(chunk)
            return size
        except (OSError, EOFError, zlib.error):
            return -1


class _Gzip(gzip.GzipFile):
    """A gzip stream over `raw`, positioned at `offset` of the content, closing `raw` with itself."""

    def __init__(self, raw, offset: int):
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw
        try:
            self.seek(offset)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _open_dir(directory: str) -> int:
    from zenctl.core.dirwalk import open_dir

    return open_dir(directory)


def _others_can_write(dfd: int) -> bool:
    from zenctl.core.dirwalk import others_can_change

    return others_can_change(os.fstat(dfd)) is not None


def _open_in(dfd: int, name: str, path: str, shared_dir: bool) -> _File:
    """`name` in the directory `dfd`, opened safely (see the module doc); OSError naming the refusal."""
    fd = os.open(name, _OPEN, dir_fd=dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if shared_dir and st.st_nlink > 1:
            raise OSError(errno.EPERM, "has more than one name in a directory others can write (a hard link to "
                                       "another file?); refused")
    except BaseException:
        os.close(fd)
        raise
    return _File(fd, st, name, path)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP and "symlink" not in str(exc.strerror):
        return "is a symlink in a directory others can change; refused"
    if exc.errno == errno.EACCES:
        return "permission denied (reading logs needs root or the adm group)"
    return str(exc.strerror or exc)


def expand(pattern: str) -> list[str]:
    """The live files a source's glob matches: sorted, without the rotated generations of another match."""
    if not glob.has_magic(pattern):
        return [pattern]  # opened (or found missing, or refused) by the reader itself
    matches = sorted(set(glob.glob(pattern)))
    names = set(matches)
    live = []
    for path in matches:
        # a generation is a match plus a suffix that starts with "." or "-": try each such split
        if any(path[:i] in names and _GENERATION.fullmatch(path[i:]) for i in range(len(path) - 1, 0, -1)
               if path[i] in ".-" and path[i - 1] != "/"):
            continue
        live.append(path)
    return live[:MAX_PATHS]


def _generation_of(name: str, base: str) -> bool:
    return name.startswith(base) and len(name) > len(base) and _GENERATION.fullmatch(name[len(base):]) is not None


_CURSOR_KEYS = {"dev": int, "ino": int, "offset": int, "line": int, "fp": str, "fp_len": int, "tail": str,
                "tail_len": int}


def _resolve(path: str) -> str:
    """A live log that is a symlink where only root could have placed it (`/var/log/app.log ->
    /srv/app/log/app.log`), followed to its target (whose directory holds its generations); anything else as it
    is (a symlink others could have placed is refused when opened)."""
    for _ in range(8):
        directory, base = os.path.split(path)
        try:
            dfd = _open_dir(directory)
        except OSError:
            return path
        try:
            st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode) or _others_can_write(dfd):
                return path
            path = os.path.normpath(os.path.join(directory, os.readlink(base, dir_fd=dfd)))
        except OSError:
            return path
        finally:
            os.close(dfd)
    return path


def final_file(opened: "_File", cursor: dict) -> bool:
    """Never written again: a gzip generation or a copytruncate copy."""
    return opened.gz or cursor.get("copy", False)


def _valid_paths(state) -> dict:
    """The stored cursors, keeping only well-formed entries (the state is ours, but may be old or edited: a bad
    entry means that file is read as new, never a failed run)."""
    paths = state.get("paths") if isinstance(state, dict) else None
    if not isinstance(paths, dict):
        return {}
    out = {}
    for path, entry in list(paths.items())[:MAX_PATHS]:
        if not isinstance(path, str) or not isinstance(entry, dict):
            continue
        cursors = [c for c in entry.get("cursors") or [] if isinstance(c, dict) and all(
            isinstance(c.get(k), t) and not isinstance(c.get(k), bool) for k, t in _CURSOR_KEYS.items())
            and c["offset"] >= 0 and 0 <= c["fp_len"] <= FP_BYTES and 0 <= c["tail_len"] <= TAIL_BYTES]
        since = entry.get("since")
        done = [tuple(d) for d in entry.get("done") or [] if isinstance(d, list) and len(d) == 2
                and isinstance(d[0], str) and isinstance(d[1], int)]
        out[path] = {"cursors": cursors[:MAX_CURSORS], "since": since if isinstance(since, int) else None,
                     "done": [list(d) for d in done[-MAX_DONE:]]}
    return out


@dataclass
class Chunk:
    """The lines read from one file in this run. `live`: the file is the live log (others are rotated
    generations); `mtime`: when it was last written, as listed."""

    path: str
    lines: Iterator[tuple[int, str]]
    live: bool = False
    mtime: float = 0.0
    rewind: Callable[[int], bool] | None = None  # (line number) -> whether that line and those after it are
    #                                              read again next run, instead of counting as read


class Reader:
    """Reads one source's new lines and keeps its cursors (see the module doc). `state` is the source's stored
    cursor state (or None on its first run); `state()` is what to store after the chunks were consumed."""

    def __init__(self, pattern: str, state: dict | None, max_lines: int, max_line_bytes: int = 65536,
                 now: float | None = None, progress: Callable[[int, int], None] | None = None):
        self.pattern = pattern
        self.paths: dict = _valid_paths(state)
        self.budget = max_lines
        self.max_line = max_line_bytes
        self.now = now if now is not None else time.time()
        self.progress = progress
        self.stats = Stats()
        self._done_bytes = 0
        self._total_bytes = 0
        self._carry = b""
        self._starts: deque = deque(maxlen=MAX_REWIND)
        self._listed: dict[tuple[int, int], tuple] = {}  # directory -> (its mtime and ctime, sorted names)

    def state(self) -> dict:
        return {"paths": self.paths}

    # ------------------------------------------------------------------------------------------------- planning
    def chunks(self) -> Iterator[Chunk]:
        """Each file's new lines, oldest file first; consume each chunk's lines before asking for the next. One
        live path at a time is planned and read, so the descriptors held stay few however many logs match."""
        live = expand(self.pattern)
        for path in [p for p in self.paths if p not in live]:
            live.append(path)  # a live name gone (between rename and create): its cursors are still followed
        self._total_bytes = self._estimate(live)
        for path in live:
            try:
                plan = self._plan(path)
            except OSError as exc:
                self.stats.refused.append((path, _why(exc)))
                continue
            if plan is None:
                continue
            reads, entry = plan
            current = None
            try:
                self._carry = b""
                for index, (opened, cursor, _) in enumerate(reads):
                    if self._carry and not cursor["offset"]:
                        cursor["carry"] = self._carry.hex()
                    self._carry = b""
                    if self.budget <= 0:
                        self.stats.limited = True
                        self.stats.backlog_bytes += max(0, opened.st.st_size - cursor["offset"]) if not opened.gz \
                            else opened.st.st_size
                        continue
                    self.stats.files += 1
                    then_fresh = index + 1 < len(reads) and not reads[index + 1][1]["offset"]
                    self._starts = deque(maxlen=MAX_REWIND)
                    lines = current = self._lines(opened, cursor, then_fresh)
                    yield Chunk(opened.path, lines,
                                opened.name == entry["base"] and not final_file(opened, cursor),
                                opened.st.st_mtime, lambda line, o=opened, c=cursor: self._rewind(o, c, line))
                self._finish(path, reads, entry)
            finally:
                if current is not None:
                    current.close()  # a consumer that stopped early: its cursor settles while the file is open
                for opened, _, _ in reads:
                    opened.close()

    def _estimate(self, live: list[str]) -> int:
        """Bytes left to read in the live files (for progress; generations not counted)."""
        total = 0
        for path in live:
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
            cursors = (self.paths.get(path) or {}).get("cursors") or []
            total += max(0, size - max((c["offset"] for c in cursors), default=0))
        return total

    def _plan(self, path: str):
        """([(file, cursor, bytes to read)], entry) for one live path; None when nothing is there. Opens the live
        file and at most MAX_GENERATIONS of its generations (the newest, and those of known cursors)."""
        directory, base = os.path.split(_resolve(path))
        entry = self.paths.get(path)
        try:
            dfd = _open_dir(directory)
        except FileNotFoundError:
            if entry is not None:
                self.stats.lost.append((path, "its directory is gone"))
                del self.paths[path]
            return None
        shared = _others_can_write(dfd)
        files: dict[str, _File] = {}
        try:
            for name in self._candidates(dfd, base, entry):
                try:
                    files[name] = _open_in(dfd, name, os.path.join(directory, name), shared)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if name == base or exc.errno not in (errno.ELOOP, errno.EINVAL):
                        self.stats.refused.append((os.path.join(directory, name), _why(exc)))
            if entry is None and base not in files:
                for opened in files.values():
                    opened.close()
                return None
            entry = entry or {"cursors": [], "since": None, "done": []}
            reads = self._match(path, base, files, entry)
            entry["base"] = base  # the live file's name (the target's, for a symlinked log)
        except BaseException:
            for opened in files.values():
                opened.close()
            raise
        finally:
            os.close(dfd)
        for name, opened in files.items():
            if all(opened is not chosen for chosen, _, _ in reads):
                opened.close()
        return reads, entry

    def _candidates(self, dfd: int, base: str, entry: dict | None) -> list[str]:
        """The live name and its generations worth opening: those holding a known cursor's inode and the
        MAX_GENERATIONS most recently changed (a directory full of planted names costs no more)."""
        st = os.fstat(dfd)
        stamp = (st.st_mtime_ns, st.st_ctime_ns)
        listed = self._listed.get((st.st_dev, st.st_ino))
        if listed is None or listed[0] != stamp:  # listed again whenever the directory changed since
            listed = self._listed[(st.st_dev, st.st_ino)] = (stamp, sorted(os.listdir(dfd)))
        ordered = listed[1]
        names = []
        for name in ordered[bisect.bisect_left(ordered, base):]:  # names starting with base are adjacent
            if not name.startswith(base):
                break
            if name == base or _generation_of(name, base):
                names.append(name)
        if len(names) <= MAX_GENERATIONS + 1:
            return names
        inodes = {c["ino"] for c in (entry or {}).get("cursors", [])}
        stamped = []
        for name in names:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                continue
            stamped.append((name == base or st.st_ino in inodes, st.st_mtime_ns, name))
        stamped.sort(reverse=True)
        keep = [name for wanted, _, name in stamped if wanted]
        return keep + [name for wanted, _, name in stamped if not wanted][:MAX_GENERATIONS]

    def _match(self, path: str, base: str, files: dict[str, _File], entry: dict) -> list:
        claimed: dict[str, dict] = {}  # file name -> cursor that reads it
        seen_fps = set()
        cursors = []
        done = dict.fromkeys(tuple(d) for d in entry.get("done", []))
        live = files.get(base)
        # the live file kept a followed inode: rotation is by copytruncate, so generations found new are copies
        # (never written again; a line the cut split continues in the next file)
        copies = live is not None and any((c["dev"], c["ino"]) == (live.st.st_dev, live.st.st_ino)
                                          for c in entry["cursors"])
        for cursor in entry["cursors"]:
            seen_fps.add((cursor["fp"], cursor["fp_len"]))
            found = self._find(cursor, base, files, claimed, done)
            if found is None:
                if cursor["offset"] and cursor["offset"] < cursor.get("size", cursor["offset"] + 1):
                    self.stats.lost.append((cursor.get("name", path), "gone (rotated away or deleted) before "
                                                                       "its last lines were read"))
                continue  # gone after it was read to its end: nothing known to be lost
            seen_fps.add((cursor["fp"], cursor["fp_len"]))
            claimed[found] = cursor
            cursors.append(cursor)
        known = len(claimed)
        since = entry.get("since")
        entry["done"] = [list(d) for d in done]
        for name, opened in sorted(files.items(), key=lambda item: item[1].st.st_mtime_ns):
            if name in claimed:
                continue
            if name != base or opened.gz:
                if name != base and (since is None or opened.st.st_mtime_ns <= since):
                    continue  # older than what was read before, or history before the first run
                head = opened.read_at(0, FP_BYTES)
                if any(_hash(head[:n]) == fp for fp, n in seen_fps | done.keys() if 0 < n <= len(head)):
                    continue  # the same content as a file already followed or read to its end
            cursor = {"dev": opened.st.st_dev, "ino": opened.st.st_ino, "offset": 0, "line": 0, "fp": _hash(b""),
                      "fp_len": 0, "tail": _hash(b""), "tail_len": 0}
            if name != base and copies:
                cursor["copy"] = True
            claimed[name] = cursor
            cursors.append(cursor)
        stamps = [opened.st.st_mtime_ns for opened in files.values()]
        entry["since"] = max(stamps + [since or 0]) if stamps else since
        entry["cursors"] = cursors
        self.paths[path] = entry
        # the files of known cursors hold older lines than those found new; then by age; the live file last
        rank = {name: i for i, name in enumerate(claimed)}
        order = sorted(claimed.items(), key=lambda item: (
            item[0] == base, rank[item[0]] >= known, files[item[0]].st.st_mtime_ns))
        reads = []
        for name, cursor in order:
            opened = files[name]
            cursor["name"] = opened.path
            todo = opened.st.st_size if opened.gz else max(0, opened.st.st_size - cursor["offset"])
            reads.append((opened, cursor, todo))
        return reads

    def _find(self, cursor: dict, base: str, files: dict[str, _File], claimed: dict, done: dict) -> str | None:
        """The name of the cursor's file now (see the module doc), adjusting its offset for a collapse."""
        same = [n for n, f in files.items() if (f.st.st_dev, f.st.st_ino) == (cursor["dev"], cursor["ino"])
                and n not in claimed]
        for name in same:
            opened = files[name]
            if (opened.gz or opened.st.st_size >= cursor["offset"]) and opened.matches(cursor):
                return name
        if cursor["offset"] == 0:
            return same[0] if same else None
        copy = None
        for name, opened in sorted(files.items(), key=lambda item: -item[1].st.st_mtime_ns):
            if name in claimed or name in same:
                continue
            if cursor["fp_len"] and _hash(opened.read_at(0, cursor["fp_len"])) != cursor["fp"]:
                continue
            if (opened.gz or opened.st.st_size >= cursor["offset"]) and opened.tail_matches(cursor, cursor["offset"]):
                # a copy (copytruncate) when the old inode lives on: never written again, its partial last line
                # continues at the start of the live file
                cursor.update(dev=opened.st.st_dev, ino=opened.st.st_ino, copy=bool(same))
                return name
            if copy is None:
                size = opened.content_size()
                if 0 < size < cursor["offset"]:
                    copy = size
        if copy is not None and same and not files[same[0]].gz:
            # copytruncate by collapse: the first `copy` bytes went to the copy; the live file goes on
            opened = files[same[0]]
            at = cursor["offset"] - copy
            if opened.st.st_size >= at and opened.tail_matches(cursor, at):
                done[(cursor["fp"], cursor["fp_len"])] = None  # the copy holds only lines read already
                cursor["offset"] = at
                cursor["fp_len"] = min(FP_BYTES, at)
                cursor["fp"] = _hash(opened.read_at(0, cursor["fp_len"]))
                return same[0]
        return None

    # -------------------------------------------------------------------------------------------------- reading
    def _lines(self, opened: _File, cursor: dict, then_fresh: bool = False) -> Iterator[tuple[int, str]]:
        """The file's complete lines from the cursor on, read in blocks; the cursor follows what was yielded.
        The partial last line of a file never written again (gzip, a copytruncate copy) is carried to the start
        of the next file when that one is read from its start (`then_fresh`): a copy cut at a block boundary
        ends mid-line."""
        final = opened.gz or cursor.get("copy", False)
        cursor["eof"] = False
        start, number = cursor["offset"], cursor["line"]
        offset = start
        carry = bytes.fromhex(cursor.pop("carry", "")) if not start else b""
        limit = self.max_line
        stats = self.stats
        try:
            handle = opened.stream(start)
        except (OSError, EOFError, zlib.error):
            return
        pending = b""  # bytes after the last complete line
        long_head, long_size = None, 0  # an overlong line being skipped: its first `limit` bytes, its size so far
        try:
            while self.budget > 0:
                try:
                    block = handle.read(_BLOCK)
                except (OSError, EOFError, zlib.error):
                    break  # a gzip generation being written (or damaged): tried again next run
                if not block:
                    if pending or long_head is not None:
                        if not final:
                            break  # a partial last line: its writer is not done
                        raw = long_head if long_head is not None else pending
                        size = long_size + len(pending) if long_head is not None else len(pending)
                        if then_fresh and long_head is None:
                            self._carry = raw[:limit]  # continued at the start of the next file
                            offset += size
                            pending = b""
                            cursor["eof"] = True
                            break
                        if long_head is not None:
                            stats.truncated += 1
                        pending, long_head = b"", None
                        number += 1
                        offset += size
                        line = self._text(raw[:limit], stats)
                        self._count(size)
                        self._starts.append((number, offset - size, size))
                        yield number, line
                    cursor["eof"] = True
                    break
                if long_head is not None:
                    cut = block.find(b"\n")
                    if cut < 0:
                        long_size += len(block)
                        continue
                    long_size += cut + 1
                    stats.truncated += 1
                    number += 1
                    offset += long_size
                    line = self._text(long_head, stats)
                    self._count(long_size)
                    self._starts.append((number, offset - long_size, long_size))
                    long_head = None
                    block = block[cut + 1:]
                    yield number, line
                    if self.budget <= 0:
                        break
                data = pending + block if pending else block
                lines = data.split(b"\n")
                pending = lines.pop()
                for raw in lines:
                    size = len(raw) + 1
                    if carry:  # the start of this line was at the end of the copy read before
                        raw, carry = carry + raw, b""
                    if len(raw) > limit:
                        stats.truncated += 1
                        raw = raw[:limit]
                    number += 1
                    offset += size
                    line = self._text(raw, stats)
                    self._count(size)
                    self._starts.append((number, offset - size, size))
                    yield number, line
                    if self.budget <= 0:
                        break
                if len(pending) > limit and self.budget > 0:
                    long_head, long_size, pending = pending[:limit], len(pending), b""
        finally:
            cursor["offset"], cursor["line"] = offset, number
            if carry:
                cursor["carry"] = carry.hex()
            if self.budget <= 0 and not cursor["eof"]:
                stats.limited = True
                stats.backlog_bytes += opened.st.st_size if opened.gz else max(0, opened.st.st_size - offset)
            handle.close()
            self._mark(opened, cursor)

    def _rewind(self, opened: _File, cursor: dict, line: int) -> bool:
        """Put the cursor back to the start of `line` (one of the last MAX_REWIND lines read from this file)."""
        starts = [entry for entry in self._starts if entry[0] >= line]
        if not starts or starts[0][0] != line:
            return False
        _, offset, _ = starts[0]
        cursor["offset"], cursor["line"], cursor["eof"] = offset, line - 1, False
        given_back = sum(size for _, _, size in starts)
        self.stats.lines -= len(starts)
        self.stats.bytes -= given_back
        self._mark(opened, cursor)
        return True

    def _count(self, size: int) -> None:
        self.budget -= 1
        stats = self.stats
        stats.lines += 1
        stats.bytes += size
        self._done_bytes += size
        if self.progress and not stats.lines % 50_000:
            self.progress(self._done_bytes, self._total_bytes)

    @staticmethod
    def _text(raw: bytes, stats: Stats) -> str:
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        if b"\x00" in raw:
            stats.binary += 1
        try:
            return raw.decode()
        except UnicodeDecodeError:
            stats.invalid_utf8 += 1
            return raw.decode("utf-8", "backslashreplace")

    def _mark(self, opened: _File, cursor: dict) -> None:
        """Fingerprints of what was read so far (first bytes, bytes before the offset)."""
        offset = cursor["offset"]
        if cursor["fp_len"] < FP_BYTES and offset > cursor["fp_len"]:
            cursor["fp_len"] = min(FP_BYTES, offset)
            cursor["fp"] = _hash(opened.read_at(0, cursor["fp_len"]))
        cursor["tail_len"] = min(TAIL_BYTES, offset)
        cursor["tail"] = _hash(opened.read_at(offset - cursor["tail_len"], cursor["tail_len"]))
        cursor["gz"] = opened.gz
        cursor["size"] = opened.st.st_size
        cursor["mtime"] = opened.st.st_mtime

    def _finish(self, path: str, reads: list, entry: dict) -> None:
        """Retire the cursors of generations read to their end (compressed ones at once, plain ones once left
        alone), keep the rest; bound the lists."""
        base = entry.pop("base", os.path.basename(path))
        keep, done = [], [tuple(d) for d in entry.get("done", [])]
        for opened, cursor, _ in reads:
            at_end = cursor.pop("eof", False) and (opened.gz or cursor["offset"] >= opened.st.st_size)
            if opened.name != base and at_end and (opened.gz or self.now - opened.st.st_mtime > RETIRE_AFTER):
                if cursor["fp_len"]:
                    done.append((cursor["fp"], cursor["fp_len"]))
                continue
            keep.append(cursor)
        if len(keep) > MAX_CURSORS:
            self.stats.lost += [(c.get("name", path), "too many generations followed at once; the oldest was "
                                                      "dropped") for c in keep[:-MAX_CURSORS]]
            keep = keep[-MAX_CURSORS:]
        entry["cursors"] = keep
        entry["done"] = [list(d) for d in dict.fromkeys(done)][-MAX_DONE:]
        if not keep and not any(opened.name == base for opened, _, _ in reads):
            self.paths.pop(path, None)
        else:
            self.paths[path] = entry
