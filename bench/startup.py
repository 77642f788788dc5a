"""Start-up against the floor (issue 14): what zenctl costs around the readings it takes, paired in one run.

Run: uv run python bench/startup.py [--runs 15] [--zenctl PATH]

Each case gets its own fresh temporary state (state file, HOME, XDG dirs) and is warmed up first (bytecode written,
state created, CPU counters stored, so no run pays the first run's 0.1 s CPU sample), as cron runs it. Then the case
and the floor (bench/floor_health.py: the same readings, one SQLite row) run alternately, N times each, the order
swapped every round so drift on the machine hits both alike. CPU is user+sys of the child and peak RSS its
ru_maxrss, both from wait4. Targets are printed beside the figures; the bench reports and never fails.
"""

import argparse
import os
import re
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ZENCTL, measure_argv, user_env  # noqa: E402

HERE = Path(__file__).resolve().parent
FLOOR = HERE / "floor_health.py"
# (c): every agent runs once in the warm-up (the dependency agent at its seed schedule, 0 3 * * *, when that is
# due), then none is due till midnight UTC: what a `* * * * *` line pays on most of its ticks
DAILY = ("agents:\n" + "".join(f"  {name}:\n    interval: 86400\n"
                                for name in ("system_health", "log_analyzer", "data_validator")))
MB = 1_000_000  # targets are in MB (10^6 bytes): stricter than MiB


def seed_config() -> str:
    """The seed's example config, as README's Configuration section shows it."""
    readme = (HERE.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration"):]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    if not found or "agents:" not in found.group(1):
        raise SystemExit("bench/startup.py: no YAML example in README's Configuration section")
    return found.group(1)


def interpreter_of(script: str) -> str:
    """The Python an entry-point script runs with (its #! line), so the floor runs on the same interpreter."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace")
    python = first[2:].strip().split()[0] if first.startswith("#!") else ""
    return python if python and os.access(python, os.X_OK) else sys.executable


class Case:
    """One command in its own state directory, measured against its own floor."""

    def __init__(self, name: str, argv: list[str], tmp: str, target: tuple[float, float | None] | None = None):
        self.name, self.argv, self.target = name, argv, target
        self.env = user_env(ZENCTL_DB=f"{tmp}/zenctl.db", HOME=tmp, XDG_CONFIG_HOME=f"{tmp}/config",
                            XDG_STATE_HOME=f"{tmp}/state", XDG_CACHE_HOME=f"{tmp}/cache")
        self.env.pop("ZENCTL_CONFIG", None)
        self.floor_db = f"{tmp}/floor.db"
        self.runs: list[tuple[float, float, int, int]] = []
        self.floor: list[tuple[float, float, int, int]] = []


def runs_stored(case: Case) -> int:
    """How many agent runs the case's state holds (to prove that nothing ran while (c) was measured)."""
    conn = sqlite3.connect(case.env["ZENCTL_DB"])
    try:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


def med(runs: list, i: int) -> float:
    return statistics.median(r[i] for r in runs)


def report(case: Case) -> list[str]:
    wall, cpu, rss = med(case.runs, 0), med(case.runs, 1), max(r[2] for r in case.runs)
    fwall, fcpu, frss = med(case.floor, 0), med(case.floor, 1), max(r[2] for r in case.floor)
    codes = sorted({r[3] for r in case.runs})
    lines = [f"{case.name}",
             f"  cmd:    wall {wall * 1000:6.0f} ms  CPU {cpu * 1000:6.0f} ms  peak RSS {rss / MB:5.1f} MB"
             f"  exit {codes}",
             f"  floor:  wall {fwall * 1000:6.0f} ms  CPU {fcpu * 1000:6.0f} ms  peak RSS {frss / MB:5.1f} MB",
             f"  ratio:  wall {wall / fwall:5.2f}x    CPU {cpu / fcpu:5.2f}x"]
    if case.target:
        max_ratio, max_rss = case.target
        verdict = [f"wall <= {max_ratio:g}x floor: {'PASS' if wall / fwall <= max_ratio else 'FAIL'}"]
        if max_rss is not None:
            verdict.append(f"peak RSS <= {max_rss:g} MB: {'PASS' if rss / MB <= max_rss else 'FAIL'}")
        lines.append("  target: " + "; ".join(verdict))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command and of its floor (default 15)")
    parser.add_argument("--zenctl", default=str(HERE.parent / ".venv" / "bin" / "zenctl")
                        if (HERE.parent / ".venv" / "bin" / "zenctl").exists() else ZENCTL,
                        help="the zenctl to run (default: the project venv's entry point)")
    args = parser.parse_args()
    zenctl, python = args.zenctl, interpreter_of(args.zenctl)
    with tempfile.TemporaryDirectory() as top:
        dirs = [tempfile.mkdtemp(dir=top) for _ in range(6)]
        seed, daily = Path(dirs[1], "seed.yaml"), Path(dirs[2], "daily.yaml")
        seed.write_text(seed_config())
        daily.write_text(DAILY)
        cases = [
            Case("(a) zenctl health check -q, embedded defaults", [zenctl, "health", "check", "-q"], dirs[0],
                 (2.5, 30)),
            Case("(b) zenctl health check -q, README's example config", [zenctl, "health", "check", "-q", "-c",
                                                                        str(seed)], dirs[1], (2.5, 30)),
            Case("(c) zenctl run --due -q, nothing due (interval 86400)", [zenctl, "run", "--due", "-q", "-c",
                                                                      str(daily)], dirs[2], (2.0, None)),
            Case("(d) zenctl --version", [zenctl, "--version"], dirs[3]),
            Case("(d) zenctl --help", [zenctl, "--help"], dirs[4]),
            Case("(i) python -c pass (the interpreter alone)", [python, "-c", "pass"], dirs[5]),
        ]
        for case in cases:  # warm up: bytecode, state, stored CPU counters; (c) runs what is due once
            for _ in range(3):
                measure_argv(case.argv, case.env)
                measure_argv([python, str(FLOOR), case.floor_db], case.env)
        ran_before = runs_stored(cases[2])
        for i in range(args.runs):
            for case in cases:
                floor = [python, str(FLOOR), case.floor_db]
                for which, argv in ((case.runs, case.argv), (case.floor, floor))[::1 if i % 2 else -1]:
                    which.append(measure_argv(argv, case.env))
        print(f"zenctl {zenctl}; floor {FLOOR.name} on {python}; {args.runs} paired runs each; medians; "
              f"peak RSS is the largest of the runs; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        for case in cases:
            print("\n".join(report(case)))
        if runs_stored(cases[2]) != ran_before:
            print("WARNING: an agent ran during (c): something was due, so (c) measured more than a tick")


if __name__ == "__main__":
    main()
