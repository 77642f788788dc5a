"""Wall time, CPU seconds and peak RSS of `zenctl health check` (targets: median <= 0.30 s wall, <= 60 MB RSS).

Run: uv run python bench/health_check.py [RUNS]
Each run is a fresh process of the installed zenctl against one state file, as cron runs it; three warm-up runs
create the state and the bytecode caches first.
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, summary, user_env  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        env = user_env(ZENCTL_DB=f"{tmp}/zenctl.db", XDG_CONFIG_HOME=f"{tmp}/config", HOME=tmp)
        for _ in range(3):
            measure(["health", "check"], env)
        print(summary("zenctl health check (table)", [measure(["health", "check"], env) for _ in range(runs)]))
        print(summary("zenctl health check --json", [measure(["health", "check", "--json"], env) for _ in range(runs)]))
        print(summary("zenctl health check --quiet", [measure(["health", "check", "-q"], env) for _ in range(runs)]))
        print(summary("zenctl --version (start-up floor)", [measure(["--version"], env) for _ in range(runs)]))
    print("targets: median wall <= 300 ms, peak RSS <= 60 MB")


if __name__ == "__main__":
    main()
