"""`zenctl audit --last 1h` on a state holding 1,000,000 audit entries (target <= 100 ms).

Run: uv run python bench/audit_query.py [ENTRIES]
The entries are real chained appends, 20 per simulated run, spread over 35 days as a per-minute cron would leave
them (about 1,200 in the last hour). Also prints the in-process query time (without process start-up), `--json`,
a filtered query, and `zenctl audit verify` over the whole chain.
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import measure, summary, user_env  # noqa: E402

from zenctl.core import audit  # noqa: E402
from zenctl.core.audit import Entry  # noqa: E402
from zenctl.core.state import open_state  # noqa: E402
from zenctl.core.timeutil import iso  # noqa: E402

PER_RUN = 20
SPAN = 35 * 86400


def build(path: Path, total: int) -> float:
    state = open_state(path)
    start = time.perf_counter()
    now = time.time()
    runs = total // PER_RUN
    with state.write():
        for n in range(runs):
            ts = iso(now - SPAN + SPAN * (n + 1) / runs - 1)
            run_id = f"{n:012x}"
            entries = [Entry("system_health", "run.start", "system_health run started", run_id, {"pid": n})]
            entries += [Entry("system_health", "finding", f"disk:/data{i}: OK: Disk 42.0% <= 80% used", run_id,
                              {"check": f"disk:/data{i}", "value": 42.0}) for i in range(PER_RUN - 2)]
            entries.append(Entry("system_health", "run.end", "system_health run ended: OK", run_id, {}))
            audit.append(state, entries, ts=ts)
    state.close()
    return time.perf_counter() - start


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "zenctl.db"
        print(f"building {total:,} chained entries ... {build(db, total):.1f} s, "
              f"{db.stat().st_size / 1048576:.0f} MiB")
        state = open_state(db)
        t = time.perf_counter()
        rows = audit.query(state, since=iso(time.time() - 3600))
        print(f"in-process query of the last hour: {len(rows)} entries in {(time.perf_counter() - t) * 1000:.1f} ms")
        env = user_env(ZENCTL_DB=str(db), XDG_CONFIG_HOME=f"{tmp}/config", HOME=tmp)
        for _ in range(3):
            measure(["audit", "--last", "1h"], env)
        print(summary("zenctl audit --last 1h", [measure(["audit", "--last", "1h"], env) for _ in range(20)]))
        print(summary("zenctl audit --last 1h --json", [measure(["audit", "--last", "1h", "--json"], env)
                                                        for _ in range(20)]))
        print(summary("zenctl audit --last 1h --event run", [measure(["audit", "--last", "1h", "--event", "run"], env)
                                                             for _ in range(20)]))
        print(summary("zenctl audit verify (whole chain)", [measure(["audit", "verify"], env) for _ in range(3)]))
    print("target: zenctl audit --last 1h <= 100 ms")


if __name__ == "__main__":
    main()
