"""Lines lost by copytruncate rotation while a writer appends 10,000 lines/s, over 100 rotations: zenctl
(`zenctl maintain logs`, copytruncate: true) against Debian's logrotate (`logrotate -f`, copytruncate), in the same
run, on the same file system (target: zenctl loses 0).

Each tool gets its own directory and writer (tests/logwriter.py: numbered lines, O_APPEND, as loggers open logs),
and rotates on the same schedule (one rotation every INTERVAL seconds, the command's own time included), keeping
every generation uncompressed. Afterwards the generations, oldest first, and the live file are read back in order:
a line number missing is a lost line, one seen twice a duplicate.

Run: uv run python bench/copytruncate.py [ROTATIONS] [RATE] [INTERVAL]   (defaults 100 10000 0.5)
Needs logrotate (apt-get install logrotate); BENCH_DIR picks the file system (default: the system temp dir).
"""

import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ZENCTL, user_env  # noqa: E402

WRITER = str(Path(__file__).resolve().parent.parent / "tests" / "logwriter.py")


def zenctl_rotator(work: Path, log: Path, keep: int):
    cfg = work / "zenctl.yaml"
    entry = {"name": "bench", "paths": [str(log)], "size": 1, "keep": keep, "copytruncate": True, "compress": False}
    # every rotation is an automatic action: lift the hourly budget (default 5) for a hundred of them
    cfg.write_text("policy:\n  max_auto_repairs_per_hour: 100000\nagents:\n  system_health:\n    logs: "
                   + json.dumps([entry]) + "\n")
    env = user_env(ZENCTL_DB=str(work / "state.db"))
    return [ZENCTL, "maintain", "logs", "-c", str(cfg), "-q"], env


def logrotate_rotator(work: Path, log: Path, keep: int):
    conf = work / "logrotate.conf"
    conf.write_text(f"{log} {{\n    copytruncate\n    rotate {keep}\n    nocompress\n    missingok\n}}\n")
    return ["logrotate", "-f", "-s", str(work / "logrotate.state"), str(conf)], dict(os.environ)


def run(name: str, base: Path, rotations: int, rate: float, interval: float, make) -> dict:
    work = base / name
    work.mkdir()
    log = work / "app.log"
    command, env = make(work, log, rotations + 10)
    pidfile = work / "writer.pid"
    writer = subprocess.Popen([sys.executable, WRITER, str(log), str(rate), str(pidfile)])
    while not pidfile.exists():
        time.sleep(0.01)
    start = time.monotonic()
    took, failures = [], 0
    for k in range(1, rotations + 1):
        delay = start + k * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        took.append(time.monotonic() - began)
        failures += done.returncode != 0
    time.sleep(interval)
    writer.send_signal(signal.SIGTERM)
    writer.wait()
    elapsed = time.monotonic() - start
    written = int(Path(f"{pidfile}.count").read_text())
    generations = sorted(work.glob("app.log.*"), key=lambda p: -int(p.suffix[1:]))
    data = b"".join(p.read_bytes() for p in generations) + log.read_bytes()
    seen = [int(line.split()[0]) for line in data.splitlines() if line.strip() and line.split()[0].isdigit()]
    unique = set(seen)
    result = {"tool": name, "rotations": len(generations), "failed_runs": failures, "written": written,
              "rate": written / elapsed, "lost": written - len(unique & set(range(written))),
              "duplicated": len(seen) - len(unique), "rotation_ms_median": statistics.median(took) * 1000}
    if name == "zenctl":
        with sqlite3.connect(work / "state.db") as conn:
            methods = [json.loads(b)["steps"] for (b,) in conn.execute(
                "SELECT before FROM actions WHERE kind = 'logs.rotate' AND status = 'applied'")]
        result["methods"] = sorted({s["method"] for steps in methods for s in steps if s["op"] == "collapse"})
    return result


def main() -> None:
    rotations = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    if not shutil.which("logrotate"):
        sys.exit("logrotate is not installed (apt-get install logrotate)")
    version = subprocess.run(["logrotate", "--version"], capture_output=True, text=True)
    print(f"{rotations} rotations, writer at {rate:g} lines/s, one rotation every {interval:g} s; "
          f"{(version.stdout or version.stderr).splitlines()[0]}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        fstype = subprocess.run(["stat", "-f", "-c", "%T", tmp], capture_output=True, text=True).stdout.strip()
        print(f"file system: {fstype} ({tmp})")
        for name, make in (("zenctl", zenctl_rotator), ("logrotate", logrotate_rotator)):
            r = run(name, Path(tmp), rotations, rate, interval, make)
            extra = f", cut by {'/'.join(r['methods'])}" if "methods" in r else ""
            print(f"{name}: {r['rotations']} generations ({r['failed_runs']} failed runs), {r['written']} lines "
                  f"written at {r['rate']:.0f}/s, lost {r['lost']}, duplicated {r['duplicated']}; rotation median "
                  f"{r['rotation_ms_median']:.0f} ms{extra}")


if __name__ == "__main__":
    main()
