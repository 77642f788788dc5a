"""The Log Analysis agent: each run reads what its sources wrote since the last run, mines the messages into
templates, and judges error patterns, bottlenecks, security incidents and what other agents can act on.

Everything it learns lives in its private state between runs (`ctx.remember`): per source the read cursors
(`source:NAME`), the miner's templates (`miner:NAME`) and the spike baselines; the jails' per-IP windows
(`jails`); and one digest per run (`digest:RUN`) that `zenctl logs report` sums up.

Spikes: for each template at `spike.min_level` or above, the rate of a run is its count divided by the hours
since the source's previous run. The baseline is an exponentially weighted mean and variance of those rates
(weight `spike.alpha` per run; a run without the template counts as rate 0). A run's rate is a spike when the
baseline has `spike.min_runs` runs, the template occurred `spike.min_count` times, and the rate exceeds both
`spike.factor` x the mean and the mean + `spike.sigma` standard deviations; it is judged before the run's rate
joins the baseline. Runs that read a backlog (a first run, one cut by max_lines_per_run) neither judge nor
feed the baseline, since their counts span more time than the interval.
"""

import os
import re
import sys
from collections import Counter

from zenctl.agents.log_analyzer import bottlenecks
from zenctl.agents.log_analyzer.sources import Reader
from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, BaseAgent, Finding, RunContext

RANK = {None: -1, "debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5}
MAX_FINDINGS_PER_KIND = 20  # new templates, spikes, tracebacks per source and run; the rest summed up
MAX_BASELINES = 2000
PROGRESS_BYTES = 50 * 1024 * 1024  # a backlog this large shows progress on a terminal
HOLD_SECONDS = 5  # the last record of a live log written this recently waits for the next run if it may continue
EXAMPLE_CHARS = 400
_GUESS = (
    ("critical", re.compile(r"\b(?:emerg(?:ency)?|panic|fatal|crit(?:ical)?|kernel BUG|segfault|oom-kill|"
                            r"Out of memory)\b", re.I)),
    ("error", re.compile(r"\b(?:error|err|fail(?:ed|ure|s)?|exception|traceback|denied|refused|timed? ?out|"
                         r"unable|cannot|can't|couldn't|No space left|invalid)\b", re.I)),
    ("warning", re.compile(r"\bwarn(?:ing)?\b", re.I)),
)
# Log errors another agent acts on: (pattern, target maker); the finding names the target, never acts on it.
_DISK = re.compile(r"No space left on device|ENOSPC|Disk quota exceeded|Read-only file system|EROFS", re.I)
_MEMORY = re.compile(r"Out of memory: Kill|oom-kill|invoked oom-killer|Cannot allocate memory|MemoryError")
_PATH = re.compile(r"(?<![\w/])(/(?:[\w.@%+=,-]+/?)+)")


def may_continue(fmt: str, record) -> bool:
    """Whether lines written after a record can still belong to it: every record of the multi-line formats, and
    for `auto` one that has continuation lines already or is an error (a traceback follows its error line)."""
    if fmt in ("python", "postgres"):
        return True
    return fmt == "auto" and ("\n" in record.raw or RANK.get(record.level, -1) >= 4)


def guess_level(message: str) -> str | None:
    """A level for a record whose format has none (syslog): from words such as error, failed, fatal."""
    for level, pattern in _GUESS:
        if pattern.search(message):
            return level
    return None


class LogAnalyzerAgent(BaseAgent):
    name = "log_analyzer"
    title = "Log Analysis"

    def __init__(self, only: str | None = None, progress: bool | None = None):
        self.only = only  # `logs scan --source NAME`
        self.progress = progress

    def assess(self, ctx: RunContext) -> Assessment:
        cfg = ctx.config
        out = Assessment()
        jails = _jails(cfg, ctx.recall("jails"))
        digest = {"t": ctx.now, "run": ctx.run_id, "sources": {}, "security": []}
        for source in cfg.sources:
            if self.only and source.name != self.only:
                continue
            scan = SourceScan(ctx, cfg, source, jails, self._progress(source.name))
            try:
                found = scan.run()
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:  # one must not stop the others
                found = [Finding(f"logs:{source.name}", "unknown", f"{source.name}: could not be scanned: "
                                                                 f"{type(exc).__name__}: {exc}",
                                 evidence={"path": source.path})]
            for finding in found:
                out.add(finding)
            digest["sources"][source.name] = scan.digest
        if jails is not None:
            for finding, proposals in security_findings(jails, ctx.now):
                out.add(finding, proposals)
                digest["security"].append({"check": finding.check, "message": finding.message,
                                           **{k: finding.evidence.get(k) for k in ("jail", "ip", "count")}})
            ctx.remember("jails", jails.state())
        keep_digest(ctx, digest, cfg.report_keep)
        return out

    def _progress(self, name: str):
        """A progress line on stderr for a large backlog, when stderr is a terminal."""
        wanted = self.progress if self.progress is not None else sys.stderr.isatty()
        if not wanted:
            return None

        def show(done: int, total: int) -> None:
            if total >= PROGRESS_BYTES:
                sys.stderr.write(f"\rzenctl: logs {name}: {done / 1048576:.0f} of {total / 1048576:.0f} MiB read "
                                 f"({100 * done / total:.0f}%)\x1b[K")
                sys.stderr.flush()
                show.shown = True
        show.shown = False
        return show


def _jails(cfg, state):
    """logs-security's jails over the configured jails and their stored windows."""
    from zenctl.agents.log_analyzer.jails import Jails

    return Jails(cfg.jails, state)


class SourceScan:
    """One source's run: read, parse, mine, collect; then judge into findings and keep the state."""

    def __init__(self, ctx: RunContext, cfg, source, jails, progress):
        self.ctx, self.cfg, self.source, self.jails, self.progress = ctx, cfg, source, jails, progress
        self.prefix = f"logs:{source.name}"
        self.digest: dict = {}

    def run(self) -> list[Finding]:
        from zenctl.agents.log_analyzer.formats import FormatError, parse_lines
        from zenctl.agents.log_analyzer.miner import Miner

        ctx, source = self.ctx, self.source
        stored = _sane(ctx.recall(f"source:{source.name}"))
        first = not (stored["cursors"] or {}).get("paths")
        reader = Reader(source.path, stored.get("cursors"), source.max_lines_per_run, self.cfg.max_line_bytes,
                        ctx.now, self.progress)
        miner = Miner(ctx.recall(f"miner:{source.name}"))
        known = {t["id"] for t in miner.templates()}
        classifier = _classifier(self.cfg, stored.get("classifier")) if self.jails is not None else None
        counts: Counter = Counter()
        examples: dict[str, str] = {}
        tracebacks: dict[tuple, dict] = {}
        coop: dict[str, dict] = {}
        collector = bottlenecks.Collector()
        records = unparsed = 0
        samples: list[str] = []
        guessed: dict[str, str | None] = {}  # template text -> level guessed from its words
        levels: dict[str, str] = dict(stored.get("levels") or {})  # template id -> guessed level
        findings: list[Finding] = []

        def take(record, path: str) -> None:
            """Mine, count and classify one record."""
            nonlocal records, unparsed
            records += 1
            if record.fields.get("unparsed"):
                unparsed += 1
                if len(samples) < 3:
                    samples.append(f"{path}:{record.line}: {record.raw[:EXAMPLE_CHARS]}")
            tid, template, _ = miner.add(record.message, time=record.time, level=record.level)
            level = record.level
            if level is None:  # guessed from the template's words, once per template
                level = guessed.get(template, "")
                if level == "":
                    if len(guessed) >= 50_000:
                        guessed.clear()
                    level = guessed[template] = guess_level(template)
                if level is not None and RANK[level] > RANK.get(levels.get(tid), -1):
                    levels[tid] = level
            counts[tid] += 1
            rank = RANK.get(level, -1)
            if rank >= 3:
                if tid not in examples:
                    examples[tid] = f"{path}:{record.line}: {record.raw[:EXAMPLE_CHARS]}"
                _cooperation(record, path, coop)
            if "\n" in record.raw:
                _traceback(record, path, tracebacks)
            collector.add(record, path)
            if classifier is not None:
                hit = classifier.classify(record)
                if hit is not None:
                    self.jails.feed(hit, record, ctx.now)

        try:
            for chunk in reader.chunks():
                held = None
                for record in parse_lines(chunk.lines, source.format, pattern=source.pattern,
                                          timezone=source.timezone):
                    if held is not None:
                        take(held, chunk.path)
                    held = record
                if held is not None and not (chunk.live and ctx.now - chunk.mtime < HOLD_SECONDS
                                             and may_continue(source.format, held) and chunk.rewind(held.line)):
                    take(held, chunk.path)  # else: its writer may still add lines to it (a traceback)
        except FormatError as exc:
            findings.append(Finding(self.prefix, "unknown", f"{source.name}: {exc}",
                                    evidence={"path": source.path, "format": source.format}))
        if getattr(self.progress, "shown", False):
            sys.stderr.write("\n")
        counts = _resolve(miner, counts)
        examples = {miner.resolve(t): e for t, e in examples.items()}
        known = {miner.resolve(t) for t in known}
        templates = {t["id"]: t for t in miner.templates()}
        levels = merge_levels(miner, templates, levels)
        elapsed = ctx.now - stored["last"] if isinstance(stored.get("last"), (int, float)) else None
        backlog = first or reader.stats.limited or elapsed is None or elapsed <= 0
        spikes, baseline = judge_spikes(stored.get("baseline") or {}, counts, templates, elapsed, self.cfg.spike,
                                        judge=not backlog and stored.get("runs", 0) >= self.cfg.spike.min_runs,
                                        learn=not backlog)
        findings += self._summary(reader, records, unparsed, samples, counts, templates, first)
        if not first and self.cfg.new_templates:
            findings += self._new_templates(counts, known, templates, examples)
        findings += self._spikes(spikes, templates, examples)
        findings += self._tracebacks(tracebacks, stored.get("tracebacks") or {}, first)
        findings += [Finding(**f) for f in bottlenecks.judge(source.name, collector, self.cfg.routes,
                                                              self.cfg.slow_sql)]
        findings += self._cooperation(coop)
        seen_tb = dict(stored.get("tracebacks") or {})
        for key, entry in tracebacks.items():
            seen_tb["|".join(str(k) for k in key)] = ctx.now
        if len(seen_tb) > 2000:
            seen_tb = dict(sorted(seen_tb.items(), key=lambda item: item[1])[-2000:])
        ctx.remember(f"miner:{source.name}", miner.state())
        ctx.remember(f"source:{source.name}", {
            "cursors": reader.state(), "last": ctx.now if not reader.stats.limited else stored.get("last", ctx.now),
            "baseline": baseline, "runs": stored.get("runs", 0) + (0 if backlog else 1), "tracebacks": seen_tb,
            "levels": levels,
            "classifier": classifier.state() if classifier is not None else None})
        self.digest = {
            "lines": reader.stats.lines, "records": records, "unparsed": unparsed,
            "errors": self._top_errors(counts, templates, examples),
            "new": [{"id": f.evidence["template_id"], "template": f.evidence["template"],
                     "level": templates.get(f.evidence["template_id"], {}).get("level"),
                     "example": f.evidence.get("example")} for f in findings if ":new:" in f.check],
            "spikes": [{"id": f.evidence["template_id"], "template": f.evidence["template"], "count": f.evidence[
                "count"], "rate_per_hour": f.value} for f in findings if ":spike:" in f.check],
            "tracebacks": [{"type": k[0], "frame": k[1], **v} for k, v in sorted(
                tracebacks.items(), key=lambda item: -item[1]["count"])[:MAX_FINDINGS_PER_KIND]],
            "bottlenecks": bottlenecks.digest(collector, self.cfg.routes.top, self.cfg.slow_sql.top),
        }
        return findings

    # ---------------------------------------------------------------------------------------------- judging
    def _top_errors(self, counts: Counter, templates: dict, examples: dict) -> list[dict]:
        rows = [(tid, n) for tid, n in counts.items() if RANK.get(templates.get(tid, {}).get("level"), -1) >= 4]
        rows.sort(key=lambda item: -item[1])
        return [{"id": tid, "template": templates[tid]["template"], "count": n, "level": templates[tid]["level"],
                 "example": examples.get(tid)} for tid, n in rows[:self.cfg.top_errors]]

    def _summary(self, reader, records, unparsed, samples, counts, templates, first) -> list[Finding]:
        stats = reader.stats
        source = self.source
        if not stats.lines and not stats.refused and not stats.lost and not stats.limited:
            what = "nothing new in" if reader.paths else "no log file at"
            return [Finding(self.prefix, "ok", f"{source.name}: {what} {source.path}",
                            evidence={"path": source.path})]
        errors = sum(n for tid, n in counts.items() if RANK.get(templates.get(tid, {}).get("level"), -1) >= 4)
        problems = []
        status = "ok"
        if stats.refused:
            status = "warning"
            problems.append("not read: " + "; ".join(f"{p}: {why}" for p, why in stats.refused[:3]))
        if stats.lost:
            status = "warning"
            problems.append("lost: " + "; ".join(f"{p}: {why}" for p, why in stats.lost[:3]))
        if stats.limited:
            status = "warning"
            problems.append(f"{stats.backlog_bytes} bytes left for the next run (max_lines_per_run "
                            f"{source.max_lines_per_run})")
        bad = {k: v for k, v in (("truncated", stats.truncated), ("invalid_utf8", stats.invalid_utf8),
                                 ("binary", stats.binary), ("unparsed", unparsed)) if v}
        message = (f"{source.name}: read {stats.lines} lines ({records} records, {errors} at error level or above, "
                   f"{len(counts)} templates) from {stats.files} file(s)"
                   + (" (first run: learning)" if first else "")
                   + ("; " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in bad.items()) if bad else "")
                   + ("; " + "; ".join(problems) if problems else ""))
        evidence = {"path": source.path, "lines": stats.lines, "bytes": stats.bytes, "records": records,
                    "files": stats.files, **bad, "top_errors": self._top_errors(counts, templates, {})[:5]}
        if samples:
            evidence["unparsed_samples"] = samples
        if stats.refused:
            evidence["refused"] = [{"path": p, "why": w} for p, w in stats.refused[:20]]
        if stats.lost:
            evidence["lost"] = [{"path": p, "why": w} for p, w in stats.lost[:20]]
        if stats.limited:
            evidence["backlog_bytes"] = stats.backlog_bytes
        return [Finding(self.prefix, status, message, stats.lines, None, "", evidence)]

    def _new_templates(self, counts, known, templates, examples) -> list[Finding]:
        new = [tid for tid in counts if tid not in known and RANK.get(templates.get(tid, {}).get("level"), -1) >= 4]
        new.sort(key=lambda tid: -counts[tid])
        findings = []
        for tid in new[:MAX_FINDINGS_PER_KIND]:
            t = templates[tid]
            status = "critical" if t["level"] == "critical" else "warning"
            findings.append(Finding(f"{self.prefix}:new:{tid}", status,
                                    f"new {t['level']} message in {self.source.name} ({counts[tid]}x): {t['template']}",
                                    counts[tid], None, "",
                                    {"template_id": tid, "template": t["template"], "count": counts[tid],
                                     "example": examples.get(tid) or t.get("example")}))
        if len(new) > MAX_FINDINGS_PER_KIND:
            rest = new[MAX_FINDINGS_PER_KIND:]
            findings.append(Finding(f"{self.prefix}:new:more", "warning",
                                    f"{len(rest)} more new error messages in {self.source.name}", len(rest),
                                    evidence={"templates": [templates[t]["template"] for t in rest[:50]]}))
        return findings

    def _spikes(self, spikes: list[dict], templates, examples) -> list[Finding]:
        findings = []
        for spike in sorted(spikes, key=lambda s: -s["rate"] / max(s["mean"], 1e-9))[:MAX_FINDINGS_PER_KIND]:
            t = templates[spike["id"]]
            status = "critical" if t["level"] == "critical" else "warning"
            findings.append(Finding(
                f"{self.prefix}:spike:{spike['id']}", status,
                f"{self.source.name}: {spike['count']}x in this run, {spike['rate']:.1f}/h against a baseline of "
                f"{spike['mean']:.1f}/h (threshold {spike['threshold']:.1f}/h): {t['template']}",
                round(spike["rate"], 3), round(spike["threshold"], 3), "/h",
                {"template_id": spike["id"], "template": t["template"], "count": spike["count"],
                 "baseline_mean": round(spike["mean"], 3), "baseline_std": round(spike["std"], 3),
                 "baseline_runs": spike["runs"], "example": examples.get(spike["id"]) or t.get("example")}))
        return findings

    def _tracebacks(self, groups: dict, seen: dict, first: bool) -> list[Finding]:
        findings = []
        for (kind, frame), entry in sorted(groups.items(), key=lambda item: -item[1]["count"]):
            key = f"{kind}|{frame}"
            new = key not in seen and not first
            status = "warning" if new else "ok"
            check = f"{self.prefix}:traceback:{kind}@{frame}"[:300]
            findings.append(Finding(check, status, f"{'new ' if new else ''}traceback in {self.source.name} "
                                                   f"({entry['count']}x): {kind} at {frame}", entry["count"],
                                    evidence={"type": kind, "frame": frame, "count": entry["count"],
                                              "example": entry["example"]}))
            if len(findings) >= MAX_FINDINGS_PER_KIND:
                break
        return findings

    def _cooperation(self, coop: dict) -> list[Finding]:
        findings = []
        for target, entry in sorted(coop.items()):
            findings.append(Finding(
                f"{self.prefix}:for:{target}", "warning",
                f"{self.source.name}: {entry['count']}x {entry['what']} (for {entry['agent']}'s {target})",
                entry["count"], evidence={"agent": entry["agent"], "target": target, "what": entry["what"],
                                          "count": entry["count"], "example": entry["example"]}))
        return findings


def _classifier(cfg, state):
    """logs-security's Classifier with the jails' filter modes, and the sshd connections open at the last run."""
    from zenctl.agents.log_analyzer.security import Classifier

    modes = {name: jail.mode for name, jail in (getattr(cfg, "jails", None) or {}).items()
             if getattr(jail, "mode", None)}
    return Classifier(modes, state if isinstance(state, dict) else None)


def _sane(stored) -> dict:
    """A source's stored state with the entries of the wrong shape dropped (old or edited state is never fatal)."""
    if not isinstance(stored, dict):
        stored = {}
    out = dict(stored)

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    baseline = stored.get("baseline")
    out["baseline"] = {k: v for k, v in baseline.items() if isinstance(v, list) and len(v) == 3 and all(
        number(x) for x in v)} if isinstance(baseline, dict) else {}
    for key in ("levels", "tracebacks"):
        value = stored.get(key)
        out[key] = {k: v for k, v in value.items() if isinstance(k, str) and (
            v in RANK if key == "levels" else number(v))} if isinstance(value, dict) else {}
    if not number(stored.get("last")):
        out.pop("last", None)
    if not isinstance(stored.get("runs"), int):
        out["runs"] = 0
    for key in ("classifier", "cursors"):
        if not isinstance(stored.get(key), dict):
            out[key] = None
    return out


def merge_levels(miner, templates: dict, levels: dict) -> dict:
    """Levels guessed for templates of formats without one, merged into the miner's `templates()` rows (the
    higher wins); returns the guesses of live templates, to keep."""
    kept = {}
    for tid, level in levels.items():
        tid = miner.resolve(tid)
        row = templates.get(tid)
        if row is None or level not in RANK:
            continue
        if RANK[level] > RANK.get(kept.get(tid), -1):
            kept[tid] = level
        if RANK[level] > RANK.get(row.get("level"), -1):
            row["level"] = level
    return kept


def _resolve(miner, counts: Counter) -> Counter:
    """Counts by the ids templates go by now (a template absorbed during the run counts for its absorber)."""
    resolved: Counter = Counter()
    for tid, n in counts.items():
        resolved[miner.resolve(tid)] += n
    return resolved


def _traceback(record, path: str, groups: dict) -> None:
    from zenctl.agents.log_analyzer.formats import traceback_summary

    summary = traceback_summary(record.raw.split("\n"))
    if not summary or not (summary.get("type") or summary.get("frame")):
        return
    key = (str(summary.get("type") or "?")[:200], str(summary.get("frame") or "?")[:300])
    if key not in groups and len(groups) >= MAX_BASELINES:
        return
    entry = groups.setdefault(key, {"count": 0, "example": f"{path}:{record.line}: "
                                                          f"{record.raw[:EXAMPLE_CHARS]}"})
    entry["count"] += 1


def _cooperation(record, path: str, found: dict) -> None:
    """Errors other agents act on: a full or read-only disk for System Health's `disk:<mount>`, the OOM killer
    for its `memory`."""
    message = record.message
    if _DISK.search(message):
        mount = mount_of(message)
        target, agent, what = f"disk:{mount}", "system_health", _DISK.search(message).group(0)
    elif _MEMORY.search(message):
        target, agent, what = "memory", "system_health", _MEMORY.search(message).group(0)
    else:
        return
    entry = found.setdefault(target, {"agent": agent, "what": what, "count": 0,
                                      "example": f"{path}:{record.line}: {record.raw[:EXAMPLE_CHARS]}"})
    entry["count"] += 1


def mount_of(message: str) -> str:
    """The mount point holding the first absolute path the message names (the longest mount prefix); `/` when
    it names none."""
    match = _PATH.search(message)
    if not match:
        return "/"
    path = os.path.normpath(match.group(1))
    mounts = _mounts()
    best = "/"
    for mount in mounts:
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best = mount
    return best


_MOUNTS: list[str] | None = None


def _mounts() -> list[str]:
    global _MOUNTS
    if _MOUNTS is None:
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
                _MOUNTS = [line.split()[1].replace("\\040", " ") for line in handle if len(line.split()) > 1]
        except OSError:
            _MOUNTS = ["/"]
    return _MOUNTS


def judge_spikes(baseline: dict, counts: Counter, templates: dict, elapsed: float | None, settings, judge: bool,
                 learn: bool) -> tuple[list[dict], dict]:
    """(spikes, the new baseline): see the module doc. baseline: {template id: [mean, variance, runs]}."""
    floor = RANK[settings.min_level]
    spikes = []
    if not learn or not elapsed:
        return spikes, baseline
    hours = max(elapsed, 60.0) / 3600
    updated = {}
    ids = set(baseline) | {tid for tid in counts if RANK.get(templates.get(tid, {}).get("level"), -1) >= floor}
    for tid in ids:
        if tid not in templates:
            continue  # merged away or dropped by the miner
        mean, var, runs = (baseline.get(tid) or [0.0, 0.0, 0])[:3]
        rate = counts.get(tid, 0) / hours
        std = var ** 0.5
        threshold = max(settings.factor * mean, mean + settings.sigma * std)
        if judge and tid in baseline and runs >= settings.min_runs and counts.get(tid, 0) >= settings.min_count \
                and rate > threshold:
            spikes.append({"id": tid, "rate": rate, "mean": mean, "std": std, "threshold": threshold,
                           "count": counts[tid], "runs": runs})
        if tid not in baseline:
            updated[tid] = [rate, 0.0, 1]
            continue
        diff = rate - mean
        increment = settings.alpha * diff
        mean += increment
        var = (1 - settings.alpha) * (var + diff * increment)
        updated[tid] = [mean, var, runs + 1]
    if len(updated) > MAX_BASELINES:
        updated = dict(sorted(updated.items(), key=lambda item: -item[1][0])[:MAX_BASELINES])
    return spikes, updated


def security_findings(jails, now: float) -> list[tuple[Finding, list[Proposal]]]:
    """logs-security's CRITICAL security finding per tripped jail (an address, a subnet or a local user), with
    its `security.block_ip` proposal (one per address, however many jails it tripped); ids under `logs:`."""
    from dataclasses import replace

    from zenctl.agents.log_analyzer import jails as jails_module

    trips = jails.tripped(now)
    proposals: dict[str, list[Proposal]] = {}
    for proposal in jails_module.proposals(trips, jails.config):
        proposals.setdefault(proposal.check, []).append(replace(proposal, check=f"logs:{proposal.check}"))
    out = []
    for trip in trips:
        finding = jails_module.finding(trip, jails.config[trip.jail])
        finding.check = f"logs:{finding.check}"
        out.append((finding, proposals.pop(trip.check, [])))
    return out


def keep_digest(ctx: RunContext, digest: dict, keep: float) -> None:
    """This run's digest for `logs report`; digests older than `keep` seconds dropped."""
    from zenctl.core.timeutil import iso

    ctx.remember(f"digest:{ctx.run_id}", digest)
    with ctx.state.write() as conn:
        conn.execute("DELETE FROM agent_state WHERE agent = ? AND key LIKE 'digest:%' AND updated < ?",
                     (ctx.agent, iso(ctx.now - keep)))


def digests(conn, since: float) -> list[dict]:
    """The digests kept since `since` (epoch), oldest first."""
    import json

    from zenctl.core.timeutil import iso

    rows = conn.execute("SELECT value FROM agent_state WHERE agent = 'log_analyzer' AND key LIKE 'digest:%' "
                        "AND updated >= ? ORDER BY updated", (iso(since),)).fetchall()
    out = []
    for (value,) in rows:
        try:
            out.append(json.loads(value))
        except ValueError:
            continue
    return out
