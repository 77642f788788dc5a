"""`zenctl maintain tmp` over 200,000 files against `find ROOT -mtime +N -delete` on an identical tree, in the same
run (target: zenctl within 2x of find). Three quarters of the files are old; the tree is 200 directories of 1,000
files. zenctl's time includes its preview walk, the open-file scan of /proc, the audit and the state.

Run: uv run python bench/tmp_clean.py [FILES]
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, user_env  # noqa: E402

OLD = time.time() - 30 * 86400


def build(root: Path, files: int, per_dir: int = 1000) -> None:
    for d in range(files // per_dir):
        directory = root / f"d{d:04d}"
        directory.mkdir(parents=True)
        for f in range(per_dir):
            path = directory / f"f{f:05d}"
            with open(path, "wb") as out:
                out.write(b"x" * 64)
            if f % 4:
                os.utime(path, (OLD, OLD))


def count(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        ours, theirs = Path(tmp, "zenctl"), Path(tmp, "find")
        print(f"building two trees of {files} files in {tmp} ...", flush=True)
        build(ours, files)
        build(theirs, files)
        config = Path(tmp, "zenctl.yaml")
        config.write_text(f"agents:\n  system_health:\n    tmp:\n      - root: {ours}\n        age: 10d\n"
                          "        age_by: [mtime]\n")
        env = user_env(ZENCTL_DB=f"{tmp}/state/zenctl.db", XDG_CONFIG_HOME=f"{tmp}/config", HOME=tmp)
        subprocess.run(["sync"])
        wall, cpu, rss, code = measure(["maintain", "tmp", "-q", "-c", str(config)], env)
        left_ours = count(ours)
        subprocess.run(["sync"])
        start = time.perf_counter()
        subprocess.run(["find", str(theirs), "-mtime", "+10", "-delete"], check=True)
        find_wall = time.perf_counter() - start
        left_theirs = count(theirs)
    print(f"zenctl maintain tmp: {wall:.2f} s (CPU {cpu:.2f} s, peak RSS {rss / 1048576:.1f} MiB, exit {code}); "
          f"{left_ours} files left")
    print(f"find -mtime +10 -delete: {find_wall:.2f} s; {left_theirs} files left")
    print(f"ratio zenctl/find: {wall / find_wall:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
