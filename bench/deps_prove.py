"""How long a proof takes: one candidate (rich 13.9.4 -> newest) on a real ~20-package venv, with uv and with pip,
cold (empty wheel cache) and warm (the cache of the previous proof), against a local file index.

    uv run python bench/deps_prove.py [--index file:///opt/pypi/simple] [--runs 3]

The index must hold the packages below (any PEP 503 index does: pass --index https://pypi.org/simple/ online).
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zenctl.agents.dependency_manager import prove  # noqa: E402

PINS = ["rich==13.9.4", "requests", "pydantic", "pyyaml", "packaging", "click", "jinja2", "attrs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="file:///opt/pypi/simple")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zenctl-bench-prove-"))
    try:
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "--index-url",
                        args.index, "--no-cache", *PINS], check=True)
        python = str(venv / "bin" / "python")
        freeze = prove.read_freeze(python)
        newest = subprocess.run(["uv", "pip", "compile", "-q", "--no-header", "--index-url", args.index, "-"],
                                input="rich\n", capture_output=True, text=True, check=True).stdout
        to = next(t.split("==")[1].split()[0] for t in newest.splitlines() if t.startswith("rich=="))
        change = prove.parse_changes([{"name": "rich", "from": "13.9.4", "to": to}])
        print(f"target: {len(freeze.dists)} distributions (Python {freeze.version}); candidate rich 13.9.4 -> {to}; "
              f"index {args.index}")
        for installer in ("uv", "pip"):
            cold, warm = [], []
            for run in range(args.runs):
                store = work / f"store-{installer}-{run}"
                target = prove.Target("bench", python, args.index, store=store, installer=installer)
                for bucket in (cold, warm):
                    started = time.monotonic()
                    proof = prove.prove(target, change)
                    bucket.append(time.monotonic() - started)
                    if not proof.ok:
                        raise SystemExit(f"{installer}: the proof failed: {proof.failed_step}: {proof.reason}")
                shutil.rmtree(store)
            steps = ", ".join(f"{s.name} {s.seconds:.2f}" for s in proof.steps)
            print(f"{installer:>3}: cold {statistics.median(cold):6.2f} s, warm {statistics.median(warm):6.2f} s "
                  f"(median of {args.runs}; last warm steps: {steps})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
