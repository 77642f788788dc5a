"""What governance costs and how it behaves under load, in one command:

- `zenctl health check` with a failing service whose restart is deferred by backoff (every gate consulted);
- `zenctl approve ID` (the decision transaction, a fresh process each time);
- 20 agent runs started at once against MAX_AUTO_REPAIRS_PER_HOUR=5 (wall time, how many applied);
- `zenctl rollback --since 1h` over 200 applied fs.chmod actions.

Usage: uv run python bench/governance.py
"""

import json
import multiprocessing
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ZENCTL, measure, summary, user_env  # noqa: E402
from tests.core.test_chaos import _racing_run  # noqa: E402

CALM = "agents:\n  system_health:\n    ignore_mounts: ['*']\n    cpu_threshold: 100\n    cpu_warning: 100\n" \
       "    memory_threshold: 100\n    memory_warning: 100\n    load_threshold: 1000\n    load_warning: 1000\n" \
       "    swap_threshold: 100\n    swap_warning: 100\n"


def bench_gated_check(tmp: Path) -> str:
    config = tmp / "svc.yaml"
    config.write_text(CALM + "    services:\n      - {name: web, command: 'exit 2', restart: 'exit 1'}\n"
                             "escalation:\n  backoff_base: 1h\nalerts:\n  stderr: false\n")
    env = user_env(ZENCTL_DB=str(tmp / "gated.db"))
    measure(["health", "check", "-c", str(config)], env)  # the failed attempt; later runs wait for backoff
    return summary("health check, restart deferred by backoff", [measure(["health", "check", "-c", str(config)], env)
                                                                 for _ in range(20)])


def bench_approve(tmp: Path) -> str:
    env = user_env(ZENCTL_DB=str(tmp / "approve.db"))
    entries = ""
    for n in range(20):
        d = tmp / f"a{n}"
        d.mkdir(mode=0o700)
        entries += f"      - {{path: {d}, mode: '0750'}}\n"
    config = tmp / "approve.yaml"
    config.write_text(CALM + "    paths:\n" + entries + "policy:\n  modes:\n    fs.chmod: approve\n")
    subprocess.run([ZENCTL, "health", "check", "-c", str(config)], env=env, capture_output=True)
    ids = [a["id"] for a in json.loads(subprocess.run([ZENCTL, "approvals", "list", "--json"], env=env,
                                                      capture_output=True, text=True).stdout)["approvals"]]
    return summary("approve ID", [measure(["approve", i], env) for i in ids])


def bench_race(tmp: Path) -> str:
    from zenctl.core.state import open_state

    db = tmp / "race" / "zenctl.db"
    open_state(db).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(20)
    paths = [tmp / "race" / f"f{n}" for n in range(20)]
    procs = [context.Process(target=_racing_run, args=(str(db), f"racer_{n}", str(p), barrier))
             for n, p in enumerate(paths)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with sqlite3.connect(db) as conn:
        first, last = conn.execute("SELECT MIN(started), MAX(ended) FROM runs").fetchone()
        applied = conn.execute("SELECT COUNT(*) FROM actions WHERE status = 'applied'").fetchone()[0]
    span = (datetime.fromisoformat(last[:-1]) - datetime.fromisoformat(first[:-1])).total_seconds()
    return (f"20 concurrent runs, limit 5/hour: {applied} applied, {20 - applied} deferred; "
            f"first start to last end {span * 1000:.0f} ms")


def bench_rollback(tmp: Path) -> str:
    env = user_env(ZENCTL_DB=str(tmp / "rollback.db"))
    entries = ""
    for n in range(200):
        f = tmp / "rb" / f"f{n}"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"x" * 4096)
        f.chmod(0o644)
        entries += f"      - {{path: {f}, ensure: file, mode: '0600'}}\n"
    config = tmp / "rb.yaml"
    config.write_text(CALM + "    paths:\n" + entries + "policy:\n  max_auto_repairs_per_hour: 1000\n")
    subprocess.run([ZENCTL, "health", "check", "-c", str(config)], env=env, capture_output=True)
    dry = measure(["rollback", "--since", "1h", "--dry-run"], env)
    real = measure(["rollback", "--since", "1h"], env)
    restored = sum(1 for n in range(200) if (tmp / "rb" / f"f{n}").stat().st_mode & 0o777 == 0o644)
    return (f"rollback --since 1h over 200 fs.chmod actions: dry-run {dry[0] * 1000:.0f} ms, real "
            f"{real[0] * 1000:.0f} ms ({restored}/200 restored, exit {real[3]})")


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for bench in (bench_gated_check, bench_approve, bench_race, bench_rollback):
            t = time.perf_counter()
            print(bench(tmp), f"[{time.perf_counter() - t:.1f} s]", flush=True)


if __name__ == "__main__":
    main()
