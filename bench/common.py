"""Helpers for the benchmarks: run the installed zenctl and measure wall time, CPU seconds and peak RSS."""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ZENCTL = str(Path(sys.executable).with_name("zenctl"))


def user_env(**extra: str) -> dict[str, str]:
    """The environment a user has: bytecode caching on (this workplace's shells turn it off)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS bytes, exit code) of one run of `zenctl ARGS`."""
    start = time.perf_counter()
    proc = subprocess.Popen([ZENCTL, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, proc.returncode


def summary(name: str, runs: list[tuple[float, float, int, int]]) -> str:
    walls = sorted(r[0] for r in runs)
    cpus = [r[1] for r in runs]
    rss = [r[2] for r in runs]
    p90 = walls[int(0.9 * (len(walls) - 1))]
    return (f"{name}: n={len(runs)} wall median {statistics.median(walls) * 1000:.0f} ms (min {walls[0] * 1000:.0f},"
            f" p90 {p90 * 1000:.0f}, max {walls[-1] * 1000:.0f}); CPU median {statistics.median(cpus) * 1000:.0f} ms;"
            f" peak RSS median {statistics.median(rss) / 1048576:.1f} MiB, max {max(rss) / 1048576:.1f} MiB;"
            f" exit codes {sorted({r[3] for r in runs})}")


# ru_maxrss outlives exec: a child forked from a big process reports at least that process's RSS (the bench's own
# ~16 MB with subprocess's vfork). A bare `python -S` launcher forks the command instead, so small peaks are true.
_LAUNCHER = """
import os, sys, time
null = os.open(os.devnull, os.O_WRONLY)
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if sys.argv[1] else null
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(out, 1)
    os.dup2(null, 2)
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure_argv(argv: list[str], env: dict[str, str], stdout: Path | None = None,
                 cwd: Path | None = None) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS bytes, exit code) of one run of any command (a full path), from wait4
    in a small launcher process; the command's stdout goes to the file `stdout` (else nowhere)."""
    out = subprocess.run([sys.executable, "-S", "-E", "-c", _LAUNCHER, str(stdout or ""), *argv], env=env, cwd=cwd,
                         stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]) * 1024, int(out[3])
