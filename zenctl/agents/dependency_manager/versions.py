"""Version decisions, pure functions of facts: the update type, the cool-down, the smallest fix that keeps every
installed requirement satisfied (or the parent that must move first), and groups."""

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from zenctl.agents.dependency_manager.names import canonical as canonicalize_name
from packaging.version import InvalidVersion, Version

from zenctl.agents.dependency_manager.index import Release


def update_type(old: str, new: str) -> str:
    """major, minor or patch (Cargo's and Renovate's rule: in 0.x a minor bump is major; an epoch change is)."""
    a, b = Version(old), Version(new)
    ra, rb = (a.release + (0, 0, 0))[:3], (b.release + (0, 0, 0))[:3]
    if a.epoch != b.epoch or rb[0] != ra[0]:
        return "major"
    if rb[1] != ra[1]:
        return "major" if ra[0] == 0 else "minor"
    return "patch"


@dataclass
class Requirer:
    """An installed distribution's requirement on another."""

    parent: str  # who requires (canonical name, or a file:line of a requirements/constraints file)
    parent_version: str
    specifier: SpecifierSet
    text: str


def requirers(dists: dict, markers: dict[str, str]) -> dict[str, list[Requirer]]:
    """Every installed requirement, by required project: {child: [Requirer]} (markers evaluated for the target,
    requirements that only extras pull in left out)."""
    out: dict[str, list[Requirer]] = {}
    for dist in dists.values():
        for text in dist.requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None:
                try:
                    if not req.marker.evaluate({**markers, "extra": ""}):
                        continue
                except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                    continue
            out.setdefault(canonicalize_name(req.name), []).append(
                Requirer(dist.name, dist.version, req.specifier, text))
    return out


def broken(dists: dict, needs: dict[str, list[Requirer]]) -> dict[str, list[str]]:
    """`pip check` from the facts: {parent: ["requires child<2, installed 2.1" | "requires x, not installed"]}."""
    out: dict[str, list[str]] = {}
    for child, reqs in needs.items():
        installed = dists.get(child)
        for r in reqs:
            if installed is None:
                out.setdefault(r.parent, []).append(f"requires {r.text.split(';')[0].strip()}, which is not installed")
            else:
                try:
                    ok = r.specifier.contains(Version(installed.version), prereleases=True)
                except InvalidVersion:
                    ok = True
                if not ok:
                    out.setdefault(r.parent, []).append(
                        f"requires {r.text.split(';')[0].strip()}, but {installed.display} {installed.version} "
                        "is installed")
    return out


@dataclass
class Plan:
    """What to propose for one package."""

    latest: str | None  # newest usable release (regardless of the cool-down)
    update: str | None  # newest release allowed now (cool-down, requirements, constraints), if newer
    update_type: str | None
    major: str | None  # newest allowed release of a newer major line, if any (a separate proposal)
    non_major: str | None  # newest allowed release within the installed major line, if newer
    fix: str | None  # smallest allowed release that no vulnerability affects
    fix_type: str | None
    blocked_by: list[str] = field(default_factory=list)  # requirements that exclude every fixing release
    cooling: list[str] = field(default_factory=list)  # newer releases held back by the cool-down


def plan(installed: str, releases: list[Release], keep: list[Requirer], *, now: float, min_age: float,
         affected=None) -> Plan:
    """The upgrade choices for a package at `installed` among `releases` (oldest first), keeping every
    requirement in `keep` satisfied. `affected(version) -> bool` says whether a known vulnerability affects a
    release (the fix is the smallest release above the installed one that none affects, exempt from the
    cool-down)."""
    current = Version(installed)
    newer = [r for r in releases if Version(r.version) > current]
    latest = newer[-1].version if newer else None

    def allowed(version: str) -> bool:
        v = Version(version)
        return all(k.specifier.contains(v, prereleases=True) for k in keep)

    def cooled(r: Release) -> bool:
        return min_age <= 0 or r.uploaded is None or now - r.uploaded >= min_age

    ok = [r for r in newer if allowed(r.version)]
    ready = [r for r in ok if cooled(r)]
    cooling = [r.version for r in ok if not cooled(r)]
    best = ready[-1].version if ready else None
    same_line = [r.version for r in ready if update_type(installed, r.version) != "major"]
    other_line = [r.version for r in ready if update_type(installed, r.version) == "major"]
    fix = fix_type = None
    blocked: list[str] = []
    if affected is not None and affected(installed):
        fixing = [r for r in newer if not affected(r.version)]
        fixing_ok = [r for r in fixing if allowed(r.version)]
        if fixing_ok:
            fix = fixing_ok[0].version
            fix_type = update_type(installed, fix)
        elif fixing:
            v = Version(fixing[0].version)
            blocked = [f"{k.parent} {k.parent_version} requires {k.text.split(';')[0].strip()}".strip()
                       for k in keep if not k.specifier.contains(v, prereleases=True)]
    return Plan(latest=latest, update=best, update_type=update_type(installed, best) if best else None,
                major=other_line[-1] if other_line else None, non_major=same_line[-1] if same_line else None,
                fix=fix, fix_type=fix_type, blocked_by=blocked, cooling=cooling)


def group_of(name: str, groups: dict[str, list[str]]) -> str | None:
    """The first group (config order) one of whose globs matches the package name (canonical or as written)."""
    for group, globs in groups.items():
        if any(fnmatchcase(name, g) or fnmatchcase(name, canonicalize_name(g)) for g in globs):
            return group
    return None
