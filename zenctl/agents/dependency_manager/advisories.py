"""Known vulnerabilities of installed versions: an offline OSV directory (the pypa advisory-database layout,
`vulns/<package>/<ID>.yaml|json`, or any tree of OSV files), or pip-audit's online services.

OSV semantics (https://ossf.github.io/osv-schema/#evaluation): an ECOSYSTEM range's events, sorted by version, switch
a version in (`introduced`) and out (`fixed` at or below it, `last_affected` below it); an explicit `versions` list
adds exact versions; a `withdrawn` advisory is ignored. Advisories of one package that share an id or an alias are
one vulnerability (a CVE published as PYSEC and GHSA is one finding). A malformed file is named and skipped.
"""

import json
import math
import os
from dataclasses import dataclass, field

from zenctl.agents.dependency_manager.names import canonical as canonicalize_name
from packaging.version import InvalidVersion, Version

from zenctl.core import untrusted

MAX_FILE = 8 << 20
# YAML aliases can make a small file a huge structure (one list referenced a million times): bounds per record
MAX_AFFECTED = 1000
LIMITS = {"ranges": 1000, "events": 10_000, "versions": 200_000}
LEVELS = ("low", "medium", "high", "critical")


@dataclass
class Advisory:
    id: str
    aliases: list[str]
    package: str  # canonical name
    summary: str
    severity: str | None  # low | medium | high | critical, None when the advisory does not say
    ranges: list[list[tuple[str, Version | None]]]  # ECOSYSTEM events: (kind, version; None for introduced 0)
    versions: set[Version]
    source: str

    def affects(self, version: Version) -> bool:
        return version in self.versions or any(_in_range(version, events) for events in self.ranges)

    def fixes(self, version: Version) -> list[Version]:
        """The `fixed` versions above `version` of the ranges that contain it."""
        out = []
        for events in self.ranges:
            if _in_range(version, events):
                out += [v for kind, v in events if kind == "fixed" and v is not None and v > version]
        return sorted(out)


@dataclass
class Vulnerability:
    """One vulnerability of one installed package: advisories folded by alias."""

    id: str
    aliases: list[str]
    severity: str | None
    fixed: str | None  # smallest fixed version above the installed one (None: no fix known)
    summary: str
    fixes: list[str] = field(default_factory=list)

    def as_evidence(self) -> dict:
        return {"id": self.id, "aliases": self.aliases, "fixed": self.fixed, "severity": self.severity,
                "summary": self.summary}


def _sort_key(kind_version: tuple[str, Version | None]) -> tuple:
    kind, version = kind_version
    return (version is not None, version or Version("0"), kind != "introduced")


def _in_range(version: Version, events: list[tuple[str, Version | None]]) -> bool:
    affected = False
    for kind, at in events:
        if kind == "introduced":
            if at is None or version >= at:
                affected = True
        elif kind == "fixed":
            if at is not None and version >= at:
                affected = False
        elif kind == "last_affected":
            if at is not None and version > at:
                affected = False
    return affected


def parse_record(data: object, source: str) -> list[Advisory]:
    """The PyPI advisories of one OSV record (one per affected PyPI package). ValueError when it is not OSV."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError("not an OSV record (no `id`)")
    if data.get("withdrawn"):
        return []
    affected = data.get("affected")
    if not isinstance(affected, list):
        raise ValueError("`affected` is not a list")
    aliases = [str(a) for a in data.get("aliases") or [] if isinstance(a, str)]
    severity = _severity(data)
    summary = str(data.get("summary") or data.get("details") or "").strip().splitlines()[:1]
    if len(affected) > MAX_AFFECTED:
        raise ValueError(f"more than {MAX_AFFECTED} affected entries")
    out = []
    budget = dict(LIMITS)

    def spend(what: str, count: int) -> None:
        budget[what] -= count
        if budget[what] < 0:
            raise ValueError(f"too many {what} (more than {LIMITS[what]})")

    for item in affected:
        if not isinstance(item, dict):
            raise ValueError("an `affected` entry is not a mapping")
        package = item.get("package") or {}
        if not isinstance(package, dict) or str(package.get("ecosystem", "")).split(":")[0] != "PyPI":
            continue
        if not isinstance(package.get("name"), str):
            raise ValueError("an affected package has no name")
        ranges = []
        spend("ranges", len(item.get("ranges") or []))
        for r in item.get("ranges") or []:
            if not isinstance(r, dict) or r.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            events = []
            spend("events", len(r.get("events") or []))
            for event in r.get("events") or []:
                if not isinstance(event, dict) or len(event) != 1:
                    raise ValueError("a range event is not one key: value")
                (kind, value), = event.items()
                if kind not in ("introduced", "fixed", "last_affected", "limit"):
                    raise ValueError(f"unknown range event {kind!r}")
                if kind == "limit":
                    continue
                if not isinstance(value, (str, int, float)):
                    raise ValueError(f"a {kind} event that is not a version")
                if kind == "introduced" and str(value) == "0":
                    events.append((kind, None))
                    continue
                try:
                    events.append((kind, Version(str(value))))
                except InvalidVersion:
                    continue  # a legacy version string PEP 440 cannot order: that event cannot be evaluated
            ranges.append(sorted(events, key=_sort_key))
        versions = set()
        spend("versions", len(item.get("versions") or []))
        for v in item.get("versions") or []:
            if not isinstance(v, (str, int, float)):
                raise ValueError("a `versions` entry that is not a version")
            try:
                versions.add(Version(str(v)))
            except InvalidVersion:
                pass
        item_severity = _severity(item) or severity
        out.append(Advisory(data["id"], aliases, canonicalize_name(package["name"]), summary[0] if summary else "",
                            item_severity, ranges, versions, source))
    return out


def load_dir(root: str, packages: set[str] | None = None) -> tuple[dict[str, list[Advisory]], list[str]]:
    """Every advisory under `root` by package, and one line per file that could not be used. With `packages`
    (canonical names), the pypa layout's `vulns/<package>/` folders of other packages are not read at all (the
    whole database is thousands of files; a host has a few hundred packages)."""
    import yaml

    try:
        loader = yaml.CSafeLoader
    except AttributeError:  # PyYAML without libyaml
        loader = yaml.SafeLoader
    by_package: dict[str, list[Advisory]] = {}
    errors: list[str] = []
    if not os.path.isdir(root):
        return {}, [f"{untrusted.name(root)}: not a directory of advisories"]
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if packages is not None and os.path.basename(folder) == "vulns":
            dirs[:] = [d for d in dirs if canonicalize_name(d) in packages]
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml", ".json")):
                continue
            path = os.path.join(folder, name)
            shown = untrusted.name(path)
            try:
                if os.path.getsize(path) > MAX_FILE:
                    raise ValueError(f"larger than {MAX_FILE >> 20} MiB")
                with open(path, "rb") as handle:
                    raw = handle.read(MAX_FILE + 1)
                data = json.loads(raw) if name.endswith(".json") else yaml.load(raw, Loader=loader)  # noqa: S506
                for advisory in parse_record(data, path):
                    by_package.setdefault(advisory.package, []).append(advisory)
            except (OSError, ValueError, yaml.YAMLError, RecursionError, TypeError) as exc:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                errors.append(f"{shown}: {untrusted.line(why)[:200]}")
    return by_package, errors


def match(version: str, advisories: list[Advisory]) -> list[Vulnerability]:
    """The vulnerabilities of `version` among one package's advisories, folded by shared ids and aliases."""
    try:
        v = Version(version)
    except InvalidVersion:
        return []
    hits = []
    for a in advisories:
        if a.affects(v):
            fixes = a.fixes(v)  # the smallest fixed version above `version` of the ranges that contain it
            hits.append(Vulnerability(a.id, list(a.aliases), a.severity, str(fixes[0]) if fixes else None,
                                      a.summary, [str(f) for f in fixes]))
    return fold(hits)


def fold(vulns: list[Vulnerability]) -> list[Vulnerability]:
    """Vulnerabilities that share an id or an alias as one (pip-audit reports a GHSA and a PYSEC record of one CVE
    separately). Its fix leaves every member: the largest of their fixes, none if one has none."""
    groups: list[tuple[set[str], list[Vulnerability]]] = []
    for v in vulns:
        ids = {v.id, *v.aliases}
        joined = [g for g in groups if g[0] & ids]
        for g in joined:
            groups.remove(g)
            ids |= g[0]
        groups.append((ids, [v] + [m for g in joined for m in g[1]]))
    out = []
    for ids, members in groups:
        primary = sorted(ids, key=_id_rank)[0]
        fixes = [m.fixed for m in members]
        severities = [m.severity for m in members if m.severity]
        out.append(Vulnerability(
            id=primary, aliases=sorted(ids - {primary}, key=_id_rank),
            severity=max(severities, key=LEVELS.index) if severities else None,
            fixed=None if None in fixes else max(fixes, key=Version), summary=next((m.summary for m in members
                                                                                   if m.summary), ""),
            fixes=sorted({f for m in members for f in m.fixes}, key=Version)))
    return sorted(out, key=lambda x: _id_rank(x.id))


def _id_rank(osv_id: str) -> tuple:
    """PYSEC first (the pypa database's own ids), then GHSA, then CVE, then the rest: pip-audit's order."""
    order = ("PYSEC-", "GHSA-", "CVE-")
    return (next((i for i, p in enumerate(order) if osv_id.startswith(p)), len(order)), osv_id)


# --- severity ----------------------------------------------------------------------------------------------
def _severity(data: dict) -> str | None:
    """low/medium/high/critical from a CVSS v3 vector (computed) or a GHSA-style database_specific.severity."""
    best = None
    for entry in data.get("severity") or []:
        if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS_V3"):
            score = cvss3_score(str(entry.get("score", "")))
            if score is not None:
                level = level_of(score)
                best = level if best is None or LEVELS.index(level) > LEVELS.index(best) else best
    if best:
        return best
    specific = data.get("database_specific") or data.get("ecosystem_specific") or {}
    text = str(specific.get("severity", "")).lower() if isinstance(specific, dict) else ""
    return {"low": "low", "moderate": "medium", "medium": "medium", "high": "high", "critical": "critical"}.get(text)


def level_of(score: float) -> str:
    return "critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4 else "low"


_W = {"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}, "AC": {"L": 0.77, "H": 0.44},
      "UI": {"N": 0.85, "R": 0.62}, "C": {"H": 0.56, "L": 0.22, "N": 0}, "I": {"H": 0.56, "L": 0.22, "N": 0},
      "A": {"H": 0.56, "L": 0.22, "N": 0}}


def cvss3_score(vector: str) -> float | None:
    """The CVSS v3.x base score of a vector (FIRST's specification), None when it is not one."""
    parts = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    try:
        scope_changed = parts["S"] == "C"
        pr = {"N": 0.85, "L": 0.68 if scope_changed else 0.62, "H": 0.5 if scope_changed else 0.27}[parts["PR"]]
        iss = 1 - (1 - _W["C"][parts["C"]]) * (1 - _W["I"][parts["I"]]) * (1 - _W["A"][parts["A"]])
        exploit = 8.22 * _W["AV"][parts["AV"]] * _W["AC"][parts["AC"]] * pr * _W["UI"][parts["UI"]]
    except KeyError:
        return None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    raw = min(1.08 * (impact + exploit), 10) if scope_changed else min(impact + exploit, 10)
    return _roundup(raw)


def _roundup(value: float) -> float:
    integer = round(value * 100000)
    return integer / 100000.0 if integer % 10000 == 0 else (math.floor(integer / 10000) + 1) / 10.0


# --- pip-audit's services (online) -------------------------------------------------------------------------
def query_service(service: str, installed: dict[str, str], *, timeout: float, workers: int,
                  cache: dict, now: float, ttl: float,
                  osv_url: str | None = None) -> tuple[dict[str, list[Vulnerability]], str | None]:
    """Vulnerabilities of `installed` ({name: version}) from pip-audit's `osv` or `pypi` service, cached per
    (service, name, version) for `ttl`; (results, one error line or None)."""
    from concurrent.futures import ThreadPoolExecutor

    from pip_audit._service import OsvService, PyPIService, ResolvedDependency, ServiceError

    if service == "osv":
        svc = OsvService(timeout=max(1, int(timeout)), **({"osv_url": osv_url} if osv_url else {}))
    else:
        svc = PyPIService(timeout=max(1, int(timeout)))
    out: dict[str, list[Vulnerability]] = {}
    todo = []
    for name, version in installed.items():
        entry = cache.get(f"{service}|{name}|{version}")
        if entry and now - entry[0] < ttl:
            out[name] = [Vulnerability(**v) for v in entry[1]]
        else:
            todo.append((name, version))
    errors: list[str] = []

    def one(job):
        name, version = job
        try:
            _, results = svc.query(ResolvedDependency(name=name, version=Version(version)))
        except (ServiceError, InvalidVersion, OSError, ValueError, KeyError, TypeError) as exc:
            return job, None, str(exc) or type(exc).__name__
        return job, results, None

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo) or 1))) as pool:
        for (name, version), results, error in pool.map(one, todo):
            if error:
                errors.append(f"{name}: {untrusted.line(error)[:160]}")
                continue
            v = Version(version)
            vulns = []
            for r in results:
                fixes = sorted(f for f in r.fix_versions if f > v)
                vulns.append(Vulnerability(id=str(r.id), aliases=sorted(map(str, r.aliases), key=_id_rank),
                                           severity=None, fixed=str(fixes[0]) if fixes else None,
                                           summary=(r.description or "").strip().splitlines()[0][:200]
                                           if r.description else "", fixes=[str(f) for f in fixes]))
            vulns = fold(vulns)
            out[name] = vulns
            cache[f"{service}|{name}|{version}"] = [now, [vars(x) for x in vulns]]
    error = f"{len(errors)} of {len(todo)} lookups failed, first {errors[0]}" if errors else None
    return out, error
