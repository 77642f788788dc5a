"""Online log template mining, persisted across runs.

How a message becomes a template (the cheapest way that applies):
0. Shape cache: a message whose text but for its digits (bytes.translate, memcpy speed) was matched by the
   regex fast path before takes that template, its parameters sliced at the same places. Masking and matching
   see a digit only as a digit, so the shape decides both.
1. Regex fast path: the templates of the message's first word (or, for a first word that is a value, those
   that start with `<*>`), most frequent first, each compiled once into a regex; the first that matches whole.
2. Masking (masking.py): spans that are values by their characters become `<*>`; a masked text seen before
   gives its cluster.
3. Placement: the masked tokens are compared with the clusters of the same token count and first token (a
   prefix tree of depth 2, as Drain's), and with those of the same count and second token. An exact match (a
   template's `<*>` matches any token) takes it. Otherwise the message starts its own cluster, and when VARIANTS
   clusters differ from one template at the same few positions (free words, at most SIMILARITY_SLACK of the
   tokens), those positions become `<*>` and the clusters merge into it (their ids resolve to it: `resolve`).

Template ids are assigned when a cluster is made (a hash of its first template) and kept in the state, so they
are stable across runs even as the template generalizes. Bounded: MAX_TEMPLATES in the state (the least recently
seen dropped first), MAX_LIVE while mining (the least frequent quarter dropped), caches of MAX_CACHE entries.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from operator import itemgetter

from zenctl.agents.log_analyzer import masking

W = masking.WILDCARD
MAX_TEMPLATES = 5000  # kept in the state
MAX_LIVE = 20000  # held while mining: beyond, the least frequent quarter is dropped
MAX_BUCKET = 200  # clusters per (length, first token): beyond it a message joins the nearest one
MAX_CACHE = 50000  # entries of each cache (masked texts, shapes, compiled templates, pending merges)
MAX_TOKENS = 200  # a longer message is mined on its first MAX_TOKENS tokens
MAX_MESSAGE = 8192  # characters mined of one message
EXAMPLE_CHARS = 512
MAX_PARAMS_MESSAGE = 4096  # longer messages keep the parameters found when they were mined
SETTLE = 16  # messages of a first word that go through masking after its templates changed, before its
# fast-path list is built again (rebuilding on every change cost more than it saved while a log is new)
MAX_FAST = 64  # templates tried on the fast path for one first word (the most frequent)
_NO_FAST = object()
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LEVEL_RANK = {None: -1, "debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5}


SIMILARITY_SLACK = 0.3  # the share of a template's positions that may differ and still be variables
VARIANTS = 4  # distinct words seen at the same positions of one template before they count as variables
# (2 or 3 alternatives at one place are different messages: "stored as bytes|values", "LOOKING|LEADING")


class Cluster:
    __slots__ = ("id", "tokens", "text", "count", "base", "first_seen", "last_seen", "level", "example",
                 "into", "bucket")

    def __init__(self, cid: str, tokens: list[str], bucket: tuple) -> None:
        self.id = cid
        self.tokens = tokens
        self.text = " ".join(tokens)
        self.count = 0
        self.base = 0  # the count loaded from the state: count - base is this run's
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.level: str | None = None
        self.example: str | None = None
        self.into: Cluster | None = None  # set when merged into another cluster
        self.bucket = bucket

    def live(self) -> Cluster:
        c = self
        while c.into is not None:
            c = c.into
        return c

    def as_dict(self) -> dict:
        return {"id": self.id, "template": self.text, "count": self.count, "run_count": self.count - self.base,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "level": self.level,
                "example": self.example}


def template_id(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


class Miner:
    """See the module doc. `add` is the hot path; `templates`, `state` and `resolve` are for reports."""

    def __init__(self, state: dict | None = None) -> None:
        self._buckets: dict[tuple, list[Cluster]] = {}
        self._by_id: dict[str, Cluster] = {}
        self._aliases: dict[str, str] = {}
        self._cache: dict[str, Cluster] = {}
        self._pending: dict[tuple, set[str]] = {}
        self._fast: dict[str, object] = {}
        self._by_first: dict[str, list[Cluster]] = {}
        self._by_second: dict[tuple, list[Cluster]] = {}
        self._param_rx: dict[str, re.Pattern | None] = {}
        self._shapes: dict[bytes, tuple] = {}
        self._template_rx: dict[str, re.Pattern] = {}
        if state:
            self._load(state)

    # ------------------------------------------------------------------------------------------------- mining

    def add(self, message: str, *, time: float | None = None, level: str | None = None) -> tuple[str, str, list[str]]:
        """(template id, template, parameters) of one message; updates the counts."""
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE]
        # 0. a message of the same shape (the same text but for its digits) was matched by the fast path: the
        # same template, its parameters at the same places. Masking and matching see a digit only as a digit,
        # so the shape decides both; bytes.translate makes the shape at memcpy speed.
        shape = message.encode("utf-8", "surrogatepass").translate(_DIGITS)
        hit = self._shapes.get(shape)
        if hit is not None:
            cluster, params, text = hit
            if cluster.text is text and cluster.into is None:
                cluster.count += 1
                if time is not None or level is not None:
                    self._seen(cluster, message, time, level)
                return cluster.id, text, params(message)
        # 1. a known template, found by the message's first word and matched by one regex: no masking at all
        space = message.find(" ")
        entry = self._fast.get(message[:space] if space > 0 else message)
        if entry.__class__ is tuple:
            for fullmatch, cluster in entry:
                match = fullmatch(message)
                if match is not None:
                    return self._matched(cluster, match, message, shape, time, level)
        return self._add(message, space, shape, time, level)

    def _matched(self, cluster: Cluster, match: re.Match, message: str, shape: bytes, time: float | None,
                 level: str | None) -> tuple[str, str, list[str]]:
        cluster.count += 1
        self._seen(cluster, message, time, level)
        if len(self._shapes) >= MAX_CACHE:
            self._shapes.clear()
        self._shapes[shape] = (cluster, _slicer(match.regs[1:]), cluster.text)
        return cluster.id, cluster.text, list(match.groups())

    def _add(self, message: str, space: int, shape: bytes, time: float | None,
             level: str | None) -> tuple[str, str, list[str]]:
        # 1b. the same where the fast path is still to be built, or under W for a first word that is a value
        fast = self._fast
        for key in (message[:space] if space > 0 else message, W):
            entry = fast.get(key)
            if entry is None:
                if key not in self._by_first:
                    continue
                entry = self._compile(key)
            if entry.__class__ is int:  # templates changed lately: masking, until they settle
                fast[key] = entry - 1 if entry > 1 else None
                continue
            if entry is not _NO_FAST:
                for fullmatch, cluster in entry:
                    match = fullmatch(message)
                    if match is not None:
                        return self._matched(cluster, match, message, shape, time, level)
        # 2. masked, then a masked text seen before; 3. placed among the clusters
        parts = masking.split(message)
        masked = W.join(parts[0::2]) if len(parts) > 1 else message
        cluster = self._cache.get(masked)
        if cluster is None or cluster.into is not None:
            cluster = self._place(masked)
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[masked] = cluster
        cluster.count += 1
        if cluster.count == 2:  # seen again: worth a place on the fast path (built without it while it was new)
            first = cluster.tokens[0] if cluster.tokens else ""
            key = W if W in first else first
            if self._fast.get(key).__class__ is not int:
                self._fast[key] = SETTLE
        self._seen(cluster, message, time, level)
        if cluster.text == masked:
            return cluster.id, cluster.text, parts[1::2]
        return cluster.id, cluster.text, self.params(cluster.id, message, self._params(cluster, masked, parts[1::2]))

    @staticmethod
    def _seen(cluster: Cluster, message: str, time: float | None, level: str | None) -> None:
        if time is not None:
            if cluster.first_seen is None or time < cluster.first_seen:
                cluster.first_seen = time
            if cluster.last_seen is None or time > cluster.last_seen:
                cluster.last_seen = time
        if level is not None and _LEVEL_RANK.get(level, -1) > _LEVEL_RANK.get(cluster.level, -1):
            cluster.level = level
        if cluster.example is None:
            cluster.example = message[:EXAMPLE_CHARS]

    def _compile(self, first: str):
        """The templates whose first word is `first`, most frequent first, each with its own regex (compiled once
        per template text and kept: a first word's list changes often while a log is new), or _NO_FAST."""
        # a template seen once is left to masking (compiling is what a new log's lines cost most)
        clusters = [c for c in self._by_first.get(first, ())
                    if c.into is None and c.count > 1 and len(c.tokens) < MAX_TOKENS]
        clusters.sort(key=lambda c: -c.count)
        entry = []
        compiled = self._template_rx
        for cluster in clusters[:MAX_FAST]:
            regex = compiled.get(cluster.text)
            if regex is None:
                if len(compiled) >= MAX_CACHE:
                    compiled.clear()
                try:
                    regex = re.compile(r"\s*" + _template_regex(cluster.tokens) + r"\s*")
                except (re.error, RecursionError, OverflowError):
                    continue
                compiled[cluster.text] = regex
            entry.append((regex.fullmatch, cluster))
        entry = tuple(entry) if entry else _NO_FAST
        self._fast[first] = entry
        return entry

    def _params(self, cluster: Cluster, masked: str, values: list[str]) -> list[str]:
        """The values at the template's `<*>`: masked spans, and whole tokens the template generalized."""
        params: list[str] = []
        it = iter(values)
        template = cluster.tokens
        for i, token in enumerate(masked.split()[:MAX_TOKENS]):
            k = token.count(W)
            mine = [next(it, "") for _ in range(k)]
            if i < len(template) and template[i] == W and token != W:
                if k:
                    pieces = token.split(W)
                    token = "".join(p + (mine[j] if j < k else "") for j, p in enumerate(pieces))
                params.append(token)
            else:
                params.extend(mine)
        return params

    def _place(self, masked: str) -> Cluster:
        tokens = _tokens(masked)
        key = (len(tokens), tokens[0] if tokens else "")
        bucket = self._buckets.get(key, ())
        for cluster in bucket:
            if _diff(cluster.tokens, tokens, 0) == 0:
                return cluster
        if key[1] != W:  # a template whose first token became <*>
            for cluster in self._buckets.get((key[0], W), ()):
                if _diff(cluster.tokens, tokens, 0) == 0:
                    return cluster
        if len(bucket) >= MAX_BUCKET:  # a flood of distinct messages: the nearest one takes it
            best = min(bucket, key=lambda c: _diff(c.tokens, tokens, None))
            self._generalize(best, [i for i, (t, s) in enumerate(zip(best.tokens, tokens)) if t != s])
            return best
        new = self._new(tokens, key, bucket)
        if W in tokens:
            self._absorb(new)
        if new.into is None:
            self._consider(new)
        return new.live()

    def _consider(self, new: Cluster) -> None:
        """Note which template `new` differs from only at free words (few positions); once VARIANTS clusters
        differ from one template at the same positions, those positions are variables: merge them."""
        tokens = new.tokens
        n = len(tokens)
        slack = max(1, int(n * SIMILARITY_SLACK)) if n >= 3 else 0  # "a b" vs "a c": too little in common
        if not slack:
            return
        best, best_pos = None, None
        candidates = self._buckets.get(new.bucket, ())
        if tokens[0] != W:  # the same message but for its first word (a program, a user)?
            candidates = [*candidates, *self._by_second.get((n, tokens[1]), ())[-MAX_BUCKET:]]
        for cluster in candidates:
            if cluster is new:
                continue
            pos = _free_diff(cluster.tokens, tokens, slack)
            if pos and (best_pos is None or len(pos) < len(best_pos)):
                best, best_pos = cluster, pos
                if len(pos) == 1:
                    break
        if best is None:
            return
        if len(self._pending) > MAX_CACHE:
            self._pending.clear()
        group = self._pending.setdefault((best.id, best_pos), {best.id})
        group.add(new.id)
        if len(group) >= VARIANTS:
            del self._pending[(best.id, best_pos)]
            self._generalize(best, list(best_pos))
            for cid in group:
                other = self._by_id.get(cid)
                if other is not None and other is not best and other.into is None:
                    self._merge(other, best)

    def _new(self, tokens: list[str], key: tuple, bucket: list[Cluster]) -> Cluster:
        text = " ".join(tokens)
        cid = template_id(text)
        while cid in self._by_id or cid in self._aliases:
            cid = template_id(cid + text)
        if len(self._by_id) >= MAX_LIVE:
            self._evict()
        cluster = Cluster(cid, tokens, key)
        self._by_id[cid] = cluster
        self._index(cluster)
        return cluster

    def _evict(self) -> None:
        """A flood of distinct messages (random words, an attack): drop the least frequent quarter of the
        templates (the oldest first among equals) so memory stays bounded; the caches start over."""
        clusters = sorted(self._by_id.values(), key=lambda c: (c.count, c.last_seen or 0.0))
        for cluster in clusters[:len(clusters) // 4]:
            self._unindex(cluster)
            del self._by_id[cluster.id]
        self._cache.clear()
        self._shapes.clear()
        self._fast.clear()
        self._pending.clear()
        self._aliases = {a: t for a, t in self._aliases.items() if t in self._by_id}
        if len(self._aliases) > MAX_LIVE:
            self._aliases = dict(list(self._aliases.items())[-MAX_LIVE:])

    def _index(self, cluster: Cluster) -> None:
        """File a cluster under its bucket (token count, first token), its first word for the fast path (W for a
        first word with a value) and its second token (to find templates that differ in the first one)."""
        tokens = cluster.tokens
        first = tokens[0] if tokens else ""
        cluster.bucket = (len(tokens), first)
        self._buckets.setdefault(cluster.bucket, []).append(cluster)
        fast = W if W in first else first
        self._by_first.setdefault(fast, []).append(cluster)
        self._fast[fast] = SETTLE
        if len(tokens) >= 3:
            self._by_second.setdefault((len(tokens), tokens[1]), []).append(cluster)

    def _unindex(self, cluster: Cluster) -> None:
        tokens = cluster.tokens
        first = tokens[0] if tokens else ""
        for index, key in ((self._buckets, cluster.bucket), (self._by_first, W if W in first else first),
                           (self._by_second, (len(tokens), tokens[1]) if len(tokens) >= 3 else None)):
            members = index.get(key)
            if members is not None and cluster in members:
                members.remove(cluster)
                if not members:
                    del index[key]
        fast = W if W in first else first
        if fast in self._by_first:
            self._fast[fast] = SETTLE
        else:
            self._fast.pop(fast, None)

    def _generalize(self, cluster: Cluster, positions: list[int]) -> None:
        if not positions:
            return
        self._unindex(cluster)
        for p in positions:
            cluster.tokens[p] = W
        cluster.text = " ".join(cluster.tokens)
        self._index(cluster)
        self._absorb(cluster)

    def _absorb(self, cluster: Cluster) -> None:
        """Merge into `cluster` the clusters its template now covers: of its bucket, and when its first token is
        `<*>`, those of the same length and second token."""
        tokens = cluster.tokens
        others = list(self._buckets.get(cluster.bucket, ()))
        if tokens and tokens[0] == W and len(tokens) >= 3:
            others += self._by_second.get((len(tokens), tokens[1]), ())[-MAX_BUCKET:]
        for other in others:
            if other is not cluster and other.into is None and _diff(tokens, other.tokens, 0) == 0:
                self._merge(other, cluster)

    def _merge(self, other: Cluster, into: Cluster) -> None:
        self._unindex(other)
        other.into = into
        into.count += other.count
        into.base += other.base
        for attr, pick in (("first_seen", min), ("last_seen", max)):
            a, b = getattr(into, attr), getattr(other, attr)
            setattr(into, attr, b if a is None else a if b is None else pick(a, b))
        if _LEVEL_RANK.get(other.level, -1) > _LEVEL_RANK.get(into.level, -1):
            into.level = other.level
        self._aliases[other.id] = into.id
        del self._by_id[other.id]

    # ------------------------------------------------------------------------------------------------ reports

    def resolve(self, template_id: str) -> str:
        """The id a template id now goes by (a merged cluster's id leads to the one that absorbed it)."""
        seen = 0
        while template_id in self._aliases and seen < 64:
            template_id = self._aliases[template_id]
            seen += 1
        return template_id

    def template(self, template_id: str) -> str | None:
        """The current template text of an id (followed through merges), None when unknown."""
        cluster = self._by_id.get(self.resolve(template_id))
        return cluster.text if cluster is not None else None

    def params(self, template_id: str, message: str, default: list[str] | None = None) -> list[str]:
        """The values at the `<*>` of the template `template_id` has now, read from `message` (a message that was
        mined into it); `default` when the message does not fit (or is too long to try)."""
        cluster = self._by_id.get(self.resolve(template_id))
        fallback = list(default or [])
        if cluster is None or len(message) > MAX_PARAMS_MESSAGE:
            return fallback
        regex = self._param_rx.get(cluster.text)
        if regex is None:
            if len(self._param_rx) >= MAX_CACHE:
                self._param_rx.clear()
            regex = self._param_rx[cluster.text] = _param_regex(cluster.tokens)
        match = regex.fullmatch(message) if regex is not None else None
        return list(match.groups()) if match is not None else fallback

    def templates(self) -> list[dict]:
        """Every live template with its counts, most frequent first."""
        return sorted((c.as_dict() for c in self._by_id.values()), key=lambda d: -d["count"])

    def state(self) -> dict:
        """JSON-able and bounded: the MAX_TEMPLATES most recently seen (then most frequent) templates."""
        clusters = sorted(self._by_id.values(), key=lambda c: (c.last_seen or 0.0, c.count), reverse=True)
        kept = clusters[:MAX_TEMPLATES]
        ids = {c.id for c in kept}
        aliases = {a: self.resolve(a) for a in self._aliases}
        aliases = {a: t for a, t in aliases.items() if t in ids}
        if len(aliases) > MAX_TEMPLATES:
            aliases = dict(list(aliases.items())[-MAX_TEMPLATES:])
        return {"version": 1, "templates": [
            {"id": c.id, "tokens": c.tokens, "count": c.count, "first_seen": c.first_seen, "last_seen": c.last_seen,
             "level": c.level, "example": c.example} for c in kept], "aliases": aliases}

    def _load(self, state: dict) -> None:
        """Rebuild from `state()`; entries of the wrong shape are skipped (the state is ours, but may be old)."""
        if not isinstance(state, dict) or state.get("version") != 1:
            return
        for entry in state.get("templates") or []:
            try:
                tokens = entry["tokens"]
                if not isinstance(tokens, list):
                    continue
                tokens = [str(t) for t in tokens][:MAX_TOKENS]
                cid = str(entry["id"])
                count = int(entry.get("count") or 0)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if not tokens or cid in self._by_id:
                continue
            cluster = Cluster(cid, tokens, (len(tokens), tokens[0]))
            cluster.count = cluster.base = count
            cluster.first_seen = _num(entry.get("first_seen"))
            cluster.last_seen = _num(entry.get("last_seen"))
            level = entry.get("level")
            cluster.level = level if level in _LEVEL_RANK else None
            example = entry.get("example")
            cluster.example = example if isinstance(example, str) else None
            self._by_id[cid] = cluster
            self._index(cluster)
        aliases = state.get("aliases")
        if isinstance(aliases, dict):
            self._aliases = {str(k): str(v) for k, v in aliases.items() if str(v) in self._by_id}


def _num(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _diff(template: list[str], tokens: Iterable[str], limit: int | None) -> int | None:
    """Positions where `tokens` differs from `template` (a `<*>` of the template matches anything); None once
    past `limit`."""
    diff = 0
    for t, s in zip(template, tokens):
        if t != s and t != W:
            diff += 1
            if limit is not None and diff > limit:
                return None
    return diff


def _tokens(masked: str) -> list[str]:
    """Whitespace tokens, a run of `<*>` tokens as one (a list of values is one variable), at most MAX_TOKENS."""
    tokens: list[str] = []
    last = None
    for token in masked.split():
        if token == W and last == W:
            continue
        tokens.append(token)
        last = token
        if len(tokens) >= MAX_TOKENS:
            break
    return tokens


def _free_diff(template: list[str], tokens: list[str], slack: int) -> tuple[int, ...] | None:
    """The positions where `tokens` differs from `template` (whose `<*>` matches anything), when there are
    some and at most `slack` of them; else None."""
    pos = []
    for i, (t, s) in enumerate(zip(template, tokens)):
        if t != s and t != W:
            if len(pos) >= slack:
                return None
            pos.append(i)
    return tuple(pos) or None


# A template's `<*>` in the fast path: a whole token is any word, then any words that are values with a digit
# (masked values collapse into one `<*>`); a first word, or a value inside a token, is a value with a digit (or a
# boolean), as masking finds them. Anything else falls back to masking, which is slower but exact.
# No digit before the first one (the class excludes them), so a long run of digits is tried once, not at every
# split: "[\w]*\d[\w]*" took seconds on one 8,000-digit word that failed to match.
_VALUE = r"[A-Za-z_.+\-]*\d[\w.+\-]*(?:\s(?:[KMGTPE]i?B|kB|B)\b)?"  # with a size unit, as masking takes it
_WHOLE = rf"(\S+(?:\s+{_VALUE})*)"
_LEAD = rf"({_VALUE}(?:\s+{_VALUE})*)"
_PART = rf"({_VALUE}|[Tt]rue|[Ff]alse|TRUE|FALSE)"


def _template_regex(tokens: list[str]) -> str:
    """The regex of a template for the fast path: one group per `<*>`."""
    out = []
    for i, token in enumerate(tokens):
        if token == W:
            out.append(_WHOLE if i else _LEAD)
        elif W in token:
            pieces = token.split(W)
            out.append(_PART.join(re.escape(p) for p in pieces))
        else:
            out.append(re.escape(token))
    return r"\s+".join(out)


def _param_regex(tokens: list[str]) -> re.Pattern | None:
    """A lenient regex of a template for reading its parameters back: a whole `<*>` takes one word or more,
    one inside a word any characters. None for templates with too many `<*>` to match in bounded time."""
    if sum(t.count(W) for t in tokens) > 32:
        return None
    out = []
    for token in tokens:
        if token == W:
            out.append(r"(\S+(?:\s+\S+)*?)")
        elif W in token:
            out.append(r"(\S*?)".join(re.escape(p) for p in token.split(W)))
        else:
            out.append(re.escape(token))
    try:
        return re.compile(r"\s*" + r"\s+".join(out) + r"\s*", re.S)
    except (re.error, RecursionError, OverflowError):
        return None


def _slicer(spans: tuple):
    """A function from a message to the list of its text at `spans` (C-level slicing for the shape cache)."""
    if not spans:
        return lambda message: []
    if len(spans) == 1:
        (a, b), = spans
        return lambda message: [message[a:b]]
    getter = itemgetter(*(slice(a, b) for a, b in spans))
    return lambda message: list(getter(message))
