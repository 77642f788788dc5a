"""`zenctl deps scan` beside `pip list --outdated` on the same 100-package venv and the same local index, in one run.

Builds 100 tiny projects (bench-pkg-000..099) with several releases each (1.0.0, 1.0.1, 1.1.0, 2.0.0, plus a
pre-release and a yanked one for a quarter of them), serves them as a PEP 691/503 index on 127.0.0.1 (the tests'
pyindex), installs every project at 1.0.0 into a real venv (with pip, for the peer), then times:
  pip list --outdated --index-url URL        (the peer: the venv's own pip; pip.conf and PIP_* ignored)
  zenctl deps scan --dry-run (cold: nothing of these projects cached; the state file itself exists)
  zenctl deps scan --dry-run (warm: the index answers cached in the state, TTL 1 h)
  zenctl deps scan --dry-run of an empty venv (zenctl's fixed cost on this machine, for scale)
and checks both name the same outdated packages with the same latest versions. Scratch files: bench/.peers/deps_scan.

    uv run python bench/deps_scan.py [--packages 100] [--repeat 3]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agents.dependency_manager.pyindex import Dist, PyIndex, make_venv  # noqa: E402

WORK = ROOT / "bench" / ".peers" / "deps_scan"
ZENCTL = str(Path(sys.executable).with_name("zenctl"))


def dists(count: int) -> list[Dist]:
    out = []
    for i in range(count):
        name = f"bench-pkg-{i:03d}"
        versions = ["1.0.0", "1.0.1", "1.1.0"] + (["2.0.0"] if i % 2 else [])
        out += [Dist(name, v, body=f"__version__ = {v!r}\n") for v in versions]
        if i % 4 == 0:
            out += [Dist(name, "3.0.0rc1"), Dist(name, "1.1.1", yanked="bad upload")]
    return out


def clean_env() -> dict:
    # PYTHONDONTWRITEBYTECODE (set on this build machine) would make zenctl compile its sources on every start,
    # which no installed zenctl does; pip's venv copy came with its bytecode compiled
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "ZENCTL_", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"))}
    env.update(PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


CPU: dict[int, float] = {}  # id(list of wall times) -> CPU seconds of the children, summed


def timed(argv: list[str], env: dict, into: list | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one run (appended to `into`, whose children's CPU seconds add up in CPU)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if into is not None:
        into.append(seconds)
        CPU[id(into)] = CPU.get(id(into), 0.0) + (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = clean_env()
    with PyIndex(WORK / "index", dists(args.packages)) as index:
        t = time.perf_counter()
        python = make_venv(WORK / "venv", [f"bench-pkg-{i:03d}==1.0.0" for i in range(args.packages)], index.url)
        print(f"setup: {args.packages} projects, {len(index.dists)} wheels, venv in {time.perf_counter() - t:.1f} s")
        config = WORK / "zenctl.yaml"
        config.write_text(f"agents:\n  dependency_manager:\n    advisory_service: off\n    cache_ttl: 1h\n"
                          f"    targets:\n      bench:\n        python: {python}\n        index_url: {index.url}\n")
        config.chmod(0o600)

        warmup = [ZENCTL, "deps", "scan", "--dry-run", "-q", "--config", str(config), "--db",
                  str(WORK / "warmup" / "zenctl.db")]
        subprocess.run(warmup, capture_output=True, env=env, timeout=600)  # bytecode written once, as installed
        pip_times, pip_out = [], None
        for _ in range(args.repeat):
            _, done = timed([str(python), "-m", "pip", "list", "--outdated", "--format", "json",
                             "--index-url", index.url], env, pip_times)
            assert done.returncode == 0, done.stderr
            pip_out = json.loads(done.stdout)

        # zenctl's fixed cost (start-up, config, state, runtime) on this machine: the same scan of an empty venv
        empty = make_venv(WORK / "empty", [], None, with_pip=False)
        base_config = WORK / "empty.yaml"
        base_config.write_text(config.read_text().replace(str(python), str(empty)))
        base_config.chmod(0o600)

        cold, warm, run = [], [], None
        for n in range(args.repeat):
            db = WORK / f"state-{n}" / "zenctl.db"
            # the state file exists (as on any host after its first run); nothing of these projects is cached
            subprocess.run([ZENCTL, "deps", "scan", "--dry-run", "-q", "--config", str(base_config), "--db", str(db)],
                           capture_output=True, env=env, timeout=600)
            scan = [ZENCTL, "deps", "scan", "--dry-run", "--json", "--config", str(config), "--db", str(db)]
            _, done = timed(scan, env, cold)
            assert done.returncode in (0, 1, 2), done.stderr
            run = json.loads(done.stdout)
            for _ in range(2):
                timed(scan, env, warm)
        baseline: list[float] = []
        base = [ZENCTL, "deps", "scan", "--dry-run", "-q", "--config", str(base_config), "--db",
                str(WORK / "empty-state" / "zenctl.db")]
        for _ in range(args.repeat + 1):
            timed(base, env, baseline)
        hits_before = len(index.hits)
        timed(scan, env)
        assert len(index.hits) == hits_before, "the warm scan asked the index"

    pip_latest = {p["name"]: p["latest_version"] for p in pip_out if p["name"].startswith("bench-pkg")}
    ours = {f["check"].split(":")[2]: f["evidence"]["latest"] for f in run["findings"]
            if f["check"].count(":") == 2 and f["evidence"].get("latest") and f["check"].split(":")[2]
            .startswith("bench-pkg")}
    same = pip_latest == ours
    med = statistics.median

    def show(label: str, times: list[float]) -> None:
        cpu = CPU[id(times)] / len(times)
        print(f"{label:24}: wall median {med(times):.3f} s ({', '.join(f'{x:.2f}' for x in times)}); "
              f"CPU {cpu:.3f} s a run")

    show("pip list --outdated", pip_times)
    show("zenctl deps scan (cold)", cold)
    show("zenctl deps scan (warm)", warm)
    show("baseline: an empty venv", baseline)
    print(f"speed-up cold: {med(pip_times) / med(cold):.1f}x wall, "
          f"{CPU[id(pip_times)] / len(pip_times) / (CPU[id(cold)] / len(cold)):.1f}x CPU (target >= 5x); "
          f"warm: {med(warm):.3f} s wall (target < 0.5 s); machine load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"the 100 packages' own share of a warm scan: {med(warm) - med(baseline):.3f} s wall, "
          f"{CPU[id(warm)] / len(warm) - CPU[id(baseline)] / len(baseline):.3f} s CPU (the rest is zenctl's fixed "
          "start-up and run cost, the same for an empty target)")
    print(f"same outdated packages and latest versions as pip: {same} ({len(ours)} outdated)")
    if not same:
        print("  only pip :", sorted(set(pip_latest.items()) - set(ours.items()))[:10])
        print("  only ours:", sorted(set(ours.items()) - set(pip_latest.items()))[:10])
    print(f"zenctl's run also proposed {len(run['actions'])} upgrades (dry run, by update type)")


if __name__ == "__main__":
    main()
