"""Matching an OSV advisory directory against 100 pinned packages: the time zenctl's matcher takes (load + match)
and whether every expected advisory is found.

The expectation is computed here independently, with OSV's evaluation written out plainly (below: each ECOSYSTEM
range's events sorted by version, a version affected between `introduced` and `fixed` / through `last_affected`,
or listed in `versions`; withdrawn records ignored), reading the files with PyYAML's pure-Python loader. The 100
pins are chosen from the versions the advisories themselves name (so most are affected) plus versions past every
fix, spread evenly over each package, 10 per package, deterministically.

    uv run python bench/advisories_match.py [DIR]     (default /work/shared/bench/advisories)
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_all(root: Path) -> list[dict]:
    records = []
    for path in sorted(root.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            records.append(yaml.load(path.read_text(), Loader=yaml.SafeLoader))  # noqa: S506 (safe)
        elif path.suffix == ".json":
            records.append(json.loads(path.read_text()))
    return records


def plain_affected(version: Version, affected: dict) -> bool:
    for listed in affected.get("versions") or []:
        try:
            if Version(str(listed)) == version:
                return True
        except InvalidVersion:
            pass
    for rng in affected.get("ranges") or []:
        if rng.get("type") != "ECOSYSTEM":
            continue
        events = []
        for event in rng.get("events") or []:
            [(kind, value)] = event.items()
            if kind == "introduced" and str(value) == "0":
                events.append((Version("0.dev0"), 0, kind))
                continue
            try:
                events.append((Version(str(value)), 0 if kind == "introduced" else 1, kind))
            except InvalidVersion:
                continue
        state = False
        for at, _, kind in sorted(events):
            if kind == "introduced" and version >= at:
                state = True
            elif kind == "fixed" and version >= at:
                state = False
            elif kind == "last_affected" and version > at:
                state = False
        if state:
            return True
    return False


def expected(records: list[dict], pins: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {p: set() for p in pins}
    for record in records:
        if record.get("withdrawn"):
            continue
        for affected in record.get("affected") or []:
            package = norm(affected["package"]["name"])
            if affected["package"].get("ecosystem") == "PyPI" and package in pins:
                if plain_affected(Version(pins[package]), affected):
                    out[package].add(record["id"])
    return out


def choose_pins(records: list[dict], per_package: int = 10) -> list[tuple[str, str]]:
    named: dict[str, set[Version]] = {}
    for record in records:
        for affected in record.get("affected") or []:
            package = norm(affected["package"]["name"])
            bag = named.setdefault(package, set())
            values = [str(v) for v in affected.get("versions") or []]
            for rng in affected.get("ranges") or []:
                values += [str(v) for e in rng.get("events") or [] for v in e.values()]
            for value in values:
                try:
                    v = Version(value)
                except InvalidVersion:
                    continue
                if not v.is_prerelease and value != "0":
                    bag.add(v)
    pins = []
    for package in sorted(named):
        versions = sorted(named[package])
        beyond = Version(f"{versions[-1].major + 1}.0.0")  # past every fix: expected clean
        versions.append(beyond)
        step = max(1, len(versions) // per_package)
        picked = versions[::step][: per_package - 1] + [beyond]
        pins += [(package, str(v)) for v in picked]
    return pins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default="/work/shared/bench/advisories")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(args.dir)
    records = read_all(root)
    all_pins = choose_pins(records)
    # 100 pins: one environment can hold one version of a package, so the 100 are 10 "hosts" of 10 packages;
    # matching runs per host
    hosts: list[dict[str, str]] = []
    for package, version in all_pins[:100]:
        host = next((h for h in hosts if package not in h), None)
        if host is None:
            host = {}
            hosts.append(host)
        host[package] = version

    from zenctl.agents.dependency_manager import advisories as adv

    load_times, match_times = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        db, errors = adv.load_dir(str(root))
        t1 = time.perf_counter()
        found = [{p: adv.match(v, db.get(p, [])) for p, v in host.items()} for host in hosts]
        t2 = time.perf_counter()
        load_times.append(t1 - t0)
        match_times.append(t2 - t1)

    missing, extra, total_expected, folded = [], [], 0, 0
    for host, result in zip(hosts, found):
        want = expected(records, host)
        for package, version in host.items():
            got_ids = set()
            for v in result[package]:
                got_ids |= {v.id, *v.aliases}
                folded += 1
            total_expected += len(want[package])
            missing += [(package, version, i) for i in sorted(want[package] - got_ids)]
            primary = {v.id for v in result[package]}
            extra += [(package, version, i) for i in sorted(primary - want[package])]
    files = sum(1 for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    med = statistics.median
    print(f"advisories: {files} files in {root} ({len(errors)} unusable); pins: {len(all_pins[:100])} "
          f"(10 packages x 10 versions, {len(hosts)} environments)")
    print(f"load (parse + index): median {med(load_times) * 1000:.1f} ms; match 100 pins: median "
          f"{med(match_times) * 1000:.2f} ms  (repeats: {args.repeat}, load {os.getloadavg()[0]:.1f})")
    print(f"expected advisories (plain OSV evaluation, independent): {total_expected}; zenctl's findings "
          f"(aliases folded): {folded}")
    print(f"every expected advisory found: {not missing} (missing {len(missing)}); "
          f"findings not expected: {len(extra)}")
    for item in missing[:10]:
        print("  missing:", item)
    for item in extra[:10]:
        print("  extra:", item)


if __name__ == "__main__":
    main()
