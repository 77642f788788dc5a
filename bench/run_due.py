"""What a cron tick costs: `zenctl run --due` when nothing is due (paid every minute by the one-line crontab),
when the agent is due (a forked child per due agent), against `zenctl health check` in the same run.

Run: uv run python bench/run_due.py [RUNS]
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, summary, user_env  # noqa: E402

CALM = ("agents:\n  system_health:\n    interval: {interval}\n    cpu_threshold: 100\n    cpu_warning: 100\n"
        "    memory_threshold: 100\n    memory_warning: 100\n    disk_threshold: 100\n    disk_warning: 100\n"
        "    inode_threshold: 100\n    inode_warning: 100\n    load_threshold: 1000\n    load_warning: 1000\n")


def _next_second() -> None:
    time.sleep(1.02 - time.time() % 1)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        every_second, daily = Path(tmp, "second.yaml"), Path(tmp, "daily.yaml")
        every_second.write_text(CALM.format(interval=1))
        daily.write_text(CALM.format(interval=86400))
        env = user_env(ZENCTL_DB=f"{tmp}/zenctl.db", XDG_CONFIG_HOME=f"{tmp}/config", HOME=tmp)
        for _ in range(3):
            measure(["health", "check", "-q", "-c", str(every_second)], env)
        print(summary("zenctl health check -q", [measure(["health", "check", "-q", "-c", str(every_second)], env)
                                                 for _ in range(runs)]))
        print(summary("zenctl run system_health -q",
                      [measure(["run", "system_health", "-q", "-c", str(every_second)], env) for _ in range(runs)]))
        due = []
        for _ in range(runs):
            _next_second()  # a new 1-second slot: the agent is due
            due.append(measure(["run", "--due", "-q", "-c", str(every_second)], env))
        print(summary("zenctl run --due -q (agent due: forked run)", due))
        measure(["run", "--due", "-q", "-c", str(daily)], env)
        print(summary("zenctl run --due -q (nothing due)",
                      [measure(["run", "--due", "-q", "-c", str(daily)], env) for _ in range(runs)]))
        print(summary("zenctl run system_health --due -q (not due)",
                      [measure(["run", "system_health", "--due", "-q", "-c", str(daily)], env) for _ in range(runs)]))


if __name__ == "__main__":
    main()
