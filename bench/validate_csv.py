"""zenctl data validate beside frictionless validate on the same 1,000,000-row, 8-column CSV with 19 planted errors
(shared/bench/gen/orders_csv.py, seed 7), in one run: the same errors?, rows/s, CPU seconds and peak RSS of each.

    uv run python bench/validate_csv.py [--runs N] [--gen PATH/orders_csv.py] [--quoted] [--keep]

--quoted also runs both on the same rows with every field quoted (csv.QUOTE_ALL), the form many exporters write.

frictionless 5.21.0 is installed into a scratch venv under bench/.peers/frictionless (created on first use). Both
are run as commands (`zenctl data validate --json FILE`, `frictionless validate --json FILE`), each measured by
wait4 in a small launcher, runs interleaved. CPU seconds are printed too: on a shared machine wall time moves with
the load, CPU time much less."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE / ".peers" / "frictionless"
ZENCTL = str(Path(sys.executable).with_name("zenctl"))
DEFAULT_GEN = "/work/shared/bench/gen/orders_csv.py"
sys.path.insert(0, str(HERE))
from common import measure_argv  # noqa: E402


def peer() -> str:
    exe = PEER / "bin" / "frictionless"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER)], check=True)
        subprocess.run([str(PEER / "bin" / "pip"), "install", "-q", "frictionless==5.21.0"], check=True)
    return str(exe)


def measure(argv: list[str], out: Path, env: dict) -> tuple[float, float, int, int]:
    """(wall s, CPU s, peak RSS bytes, exit code); run in the file's folder (frictionless refuses absolute paths
    as unsafe), the command's stdout going to `out`."""
    return measure_argv(argv, env, stdout=out, cwd=out.parent)


def errors_of(path: Path) -> list:
    report = json.loads(path.read_text())
    return [[e.get("rowNumber"), e.get("fieldNumber"), e["type"]] for t in report["tasks"] for e in t["errors"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gen", default=os.environ.get("ZENCTL_BENCH_ORDERS_GEN", DEFAULT_GEN))
    ap.add_argument("--keep", action="store_true", help="keep the generated CSV (printed path)")
    ap.add_argument("--quoted", action="store_true", help="also every field quoted")
    args = ap.parse_args()
    fr = peer()
    work = Path(tempfile.mkdtemp(prefix="zenctl-validate-bench-"))
    subprocess.run([sys.executable, args.gen, str(work)], check=True, stdout=subprocess.DEVNULL)
    expected = json.loads((work / "orders_1M.expected.json").read_text())
    files = [work / "orders_1M.csv"]
    if args.quoted:
        import csv

        quoted = work / "orders_1M_quoted.csv"
        with open(files[0], newline="") as src, open(quoted, "w", newline="") as dst:
            csv.writer(dst, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(csv.reader(src))
        files.append(quoted)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    ok = True
    for data in files:
        ok &= compare(data, expected, fr, args.runs, env)
    if args.keep:
        print(f"kept: {work}")
    else:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    return 0 if ok else 1


def compare(data: Path, expected: dict, fr: str, runs: int, env: dict) -> bool:
    """Both tools on one file, interleaved; prints the figures; True when both found exactly the planted errors."""
    rows = expected["rows"]
    tools = {"zenctl": [ZENCTL, "data", "validate", "--json", data.name],
             "frictionless": [fr, "validate", "--json", data.name]}
    results: dict = {name: [] for name in tools}
    found: dict = {}
    for _ in range(runs):
        for name, argv in tools.items():
            out = data.parent / f"{name}.json"
            results[name].append(measure(argv, out, env))
            found[name] = errors_of(out)
    print(f"{data.name}: {data.stat().st_size:,} bytes, {rows:,} rows x {expected['columns']} columns, "
          f"{len(expected['expected_errors'])} planted errors; {runs} interleaved runs each; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rates = {}
    for name, runs_ in results.items():
        wall = statistics.median(r[0] for r in runs_)
        cpu = statistics.median(r[1] for r in runs_)
        rss = max(r[2] for r in runs_)
        rates[name] = (rows / wall, rows / cpu)
        same = found[name] == expected["expected_errors"]
        print(f"  {name:13s} wall median {wall:6.2f} s ({rows / wall:>10,.0f} rows/s), CPU median {cpu:6.2f} s "
              f"({rows / cpu:>10,.0f} rows/CPU-s), peak RSS {rss / 1048576:6.1f} MiB, exit {runs_[0][3]}, "
              f"{len(found[name])} errors, {'= planted' if same else 'DIFFERENT from planted'}")
    print(f"  same errors, same order (rowNumber, fieldNumber, type): {found['zenctl'] == found['frictionless']}")
    print(f"  speed-up: {rates['zenctl'][0] / rates['frictionless'][0]:.1f}x wall, "
          f"{rates['zenctl'][1] / rates['frictionless'][1]:.1f}x CPU")
    return found["zenctl"] == found["frictionless"] == expected["expected_errors"]


if __name__ == "__main__":
    sys.exit(main())
