"""Bounds (issue 12, findings 14-16 and 22): alert delivery within a deadline, only a 2xx answer delivers, config
loading bounded, control characters kept out of crontabs and terminals.

The peers are real servers on 127.0.0.1 that trickle, never answer, redirect or send a huge answer (each stops by
itself). The config files, the directory named with a newline and the status text with terminal escapes are made by
a throwaway user; root's zenctl then reads them, as it would on a host.
"""

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CALM, ZENCTL
from tests.security.conftest import ROOT_ONLY, as_user_python
from tests.servers import HostileHttp, Tarpit

pytestmark = [ROOT_ONLY]

MB = 1 << 20
ROUTING_KEY = {"PAGERDUTY_ROUTING_KEY": "k" * 32}
# Write the clipboard (OSC 52) and the window title, then look harmless.
ESCAPES = "\x1b]52;c;cm0gLXJmIH4K\x07\x1b]0;all good\x07web down"


# Runs argv in a grandchild forked from this small process, so its peak RSS is its own (ru_maxrss carries a
# parent's size at fork across exec).
FRESH = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n"
         "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))")


def failing_service(command: str, extra: str) -> str:
    return (CALM + f"    services:\n      - name: web\n        command: {json.dumps(command)}\n        timeout: 5\n"
            + extra)


def alert_rows(zenctl) -> dict[str, tuple[str, str | None]]:
    """{channel: (status, last_error)} of the outbox's first row per channel."""
    with sqlite3.connect(zenctl.db) as conn:
        rows = conn.execute("SELECT channel, status, last_error FROM alerts ORDER BY id").fetchall()
    out: dict[str, tuple[str, str | None]] = {}
    for channel, status, error in rows:
        out.setdefault(channel, (status, error))
    return out


@pytest.fixture
def user_dir(intruder):
    """A directory the intruder owns, which root's zenctl can reach."""
    base = Path(tempfile.mkdtemp(prefix="zenctl-bounds-"))
    base.chmod(0o755)
    os.chown(base, intruder.pw_uid, intruder.pw_gid)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_alert_delivery_has_a_deadline_runs_channels_in_parallel_and_reads_bounded_answers(zenctl):
    """Finding 14. A PagerDuty endpoint answering 200 with 512 MB is delivered without reading the answer (the old
    code read it all). Then, with an SMTP server that never greets and a webhook that trickles its answer (both
    within their 60 s per-operation timeouts), the run ends at the 3 s deadline: those two stay pending, PagerDuty,
    tried in parallel, is delivered."""
    with HostileHttp("huge", size=512 * MB) as huge:
        config = zenctl.config(failing_service("echo 'web down'; exit 2",
                                               f"alerts:\n  pagerduty:\n    enabled: true\n    url: {huge.url}\n"))
        # from a small launcher: a child's peak RSS starts at its parent's size at fork, and pytest may be large
        done = subprocess.run([sys.executable, "-S", "-c", FRESH, ZENCTL, "health", "check", "-c", str(config)],
                              capture_output=True, text=True, cwd=zenctl.tmp, timeout=60,
                              env={**zenctl.env, **ROUTING_KEY})
    assert done.returncode == 2, done.stderr
    assert alert_rows(zenctl)["pagerduty"][0] == "sent"
    with sqlite3.connect(zenctl.db) as conn:
        peak = conn.execute("SELECT MAX(peak_rss_bytes) FROM runs").fetchone()[0]
    assert peak < 256 * MB, f"the answer was read: peak RSS {peak / MB:.0f} MB"

    zenctl.db = zenctl.tmp / "second" / "zenctl.db"
    zenctl.env["ZENCTL_DB"] = str(zenctl.db)
    with HostileHttp("trickle", interval=0.5) as slow, HostileHttp("huge", size=512 * MB) as huge, \
            Tarpit() as smtp:
        config = zenctl.config(failing_service("echo 'web down'; exit 2", (
            f"alerts:\n  delivery_deadline: 3\n"
            f"  email:\n    to: [ops@example.com]\n    host: 127.0.0.1\n    port: {smtp.port}\n    timeout: 60\n"
            f"  pagerduty:\n    enabled: true\n    url: {huge.url}\n    timeout: 60\n"
            f"  webhook:\n    url: {slow.url}\n    timeout: 60\n")))
        done = zenctl("health", "check", "-c", str(config), env=ROUTING_KEY, timeout=30)
    assert done.returncode == 2, done.stderr
    rows = alert_rows(zenctl)
    assert rows["stderr"][0] == "sent" and rows["pagerduty"][0] == "sent", rows
    for channel in ("email", "webhook"):
        status, error = rows[channel]
        assert status == "pending" and "alerts.delivery_deadline (3 s)" in error, rows


def test_a_webhook_redirect_is_not_a_delivery(zenctl):
    """Finding 15: a webhook answering 302 (to a URL that answers GET with 200) is not delivered: pending, with the
    redirect named; the redirect is not followed."""
    with HostileHttp("redirect") as hook:
        config = zenctl.config(failing_service("echo 'web down'; exit 2",
                                               f"alerts:\n  webhook:\n    url: {hook.url}\n"))
        done = zenctl("health", "check", "-c", str(config))
    assert done.returncode == 2, done.stderr
    status, error = alert_rows(zenctl)["webhook"]
    assert status == "pending", "a 302 counted as delivered"
    assert "HTTP 302" in error and "not followed" in error
    assert hook.posts == 1 and hook.gets == 0


# A user's files that root's zenctl is pointed at (or finds as ./zenctl.yaml).
PLANT = """
import os, sys
d = sys.argv[1]
os.mkfifo(os.path.join(d, "fifo.yaml"))
os.symlink("/dev/zero", os.path.join(d, "zero.yaml"))
with open(os.path.join(d, "big.yaml"), "w") as f:
    f.write("agents: {}\\n#" + "x" * (64 << 20) + "\\n")
laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for i in range(1, 9):
    laughs.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]")
with open(os.path.join(d, "laughs.yaml"), "w") as f:
    f.write("\\n".join(laughs) + "\\n")
with open(os.path.join(d, "loop.yaml"), "w") as f:
    f.write("agents: &a {system_health: *a}\\n")
"""


def _capped(zenctl, *args: str) -> subprocess.CompletedProcess:
    """zenctl with 2 GB of address space at most: the old code met these files with gigabytes."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([ZENCTL, *args], capture_output=True, text=True, timeout=20, env=zenctl.env,
                          preexec_fn=limit)


@pytest.mark.parametrize("name, why", [("fifo.yaml", "not a regular file"), ("zero.yaml", "not a regular file"),
                                       ("big.yaml", "larger than 1 MiB"), ("laughs.yaml", "aliases are expanded"),
                                       ("loop.yaml", "refers to a value that contains it")])
def test_config_loading_is_bounded(zenctl, intruder, user_dir, name, why):
    """Finding 16: a FIFO (hung), /dev/zero (grew without end), 64 MB of comment (accepted), a billion laughs and an
    alias loop: each is one line naming the file and why, exit 3, quickly and in little memory."""
    assert as_user_python(intruder, PLANT.replace("sys.argv[1]", repr(str(user_dir)))).returncode == 0
    done = _capped(zenctl, "config", "validate", "-c", str(user_dir / name))
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and str(user_dir / name) in done.stderr and why in done.stderr, done.stderr


def test_a_path_with_a_newline_never_reaches_a_crontab(zenctl, intruder, user_dir):
    """Finding 22 (cron): a user names a directory with a newline and a cron entry; root runs `schedule show` there
    (./zenctl.yaml becomes ZENCTL_CONFIG) and with a ZENCTL_DB under it. Refused, one line; no entry of the user's."""
    name = "a\n* * * * * root touch pwned #"
    evil = user_dir / name
    plant = f"import os; os.mkdir({str(evil)!r}); open(os.path.join({str(evil)!r}, 'zenctl.yaml'), 'w').write('{{}}')"
    assert as_user_python(intruder, plant).returncode == 0
    mine = zenctl.tmp / name  # the same name in root's own directory: a config zenctl would trust
    mine.mkdir()
    (mine / "zenctl.yaml").write_text("{}\n")
    for cwd, env in ((mine, {}), (user_dir, {"ZENCTL_DB": str(evil / "zenctl.db")})):
        done = subprocess.run([ZENCTL, "schedule", "show", "--system"], capture_output=True, text=True, cwd=cwd,
                              env={**zenctl.env, **env}, timeout=60)
        assert not [line for line in done.stdout.splitlines() if line.startswith("* * * * * root touch")], done.stdout
        assert done.returncode == 3 and done.stderr.count("\n") == 1, done.stderr
        assert "control character" in done.stderr and "\\x0a" in done.stderr


def test_terminal_escapes_in_alerts_are_printed_escaped(zenctl, intruder, user_dir):
    """Finding 22 (terminals): a service's status text, written by a user, holds OSC 52 and a title change. The run's
    table, the stderr alert, `resume` (which sends the alert a silence held), `alerts list` and `status` print it
    with the escapes shown, never sent to root's terminal."""
    status = user_dir / "status"
    assert as_user_python(intruder, f"open({str(status)!r}, 'w').write({ESCAPES!r} + '\\n')").returncode == 0
    config = zenctl.config(failing_service(f"head -n1 {status}; exit 2",
                                           "        restart: 'exit 1'\n        restart_wait: 0\n"
                                           "escalation:\n  max_retries: 0\n  safe_mode:\n    failed_repairs_per_hour: 0\n"))
    silenced = zenctl("silence", "add", "system_health:*", "--for", "1h", "--reason", "deploy", "--json")
    check = zenctl("health", "check", "-c", str(config))  # the failed restart enters safe mode; the alert is held
    assert check.returncode == 2, check.stderr
    assert zenctl("silence", "remove", json.loads(silenced.stdout)["id"]).returncode == 0
    resumed = zenctl("resume", "-c", str(config))
    assert resumed.returncode == 0, resumed.stderr
    listed, report, audited = zenctl("alerts", "list", "--all"), zenctl("status"), zenctl("audit")
    for done in (check, resumed, listed, report, audited):
        for out in (done.stdout, done.stderr):
            assert "\x1b" not in out and "\x07" not in out, out
    assert "\\x1b]52;c;" in resumed.stderr, "the held alert goes out on resume, escaped"
    assert "\\x1b]52;c;" in check.stdout and "\\x1b]52;c;" in listed.stdout and "\\x1b]52;c;" in audited.stdout


def test_a_config_someone_else_could_write_is_not_acted_on(zenctl, intruder, user_dir):
    """A config names commands root runs: ./zenctl.yaml planted in a directory root works in, a config owned by
    another user, or a root-owned one others can write, is refused (config validate still reads a draft)."""
    plant = f"open({str(user_dir / 'zenctl.yaml')!r}, 'w').write('agents:\\n  system_health:\\n    services:\\n" \
            f"      - name: x\\n        command: touch {user_dir}/pwned\\n')"
    assert as_user_python(intruder, plant).returncode == 0
    done = subprocess.run([ZENCTL, "health", "check"], capture_output=True, text=True, cwd=user_dir,
                          env=zenctl.env, timeout=60)
    assert done.returncode == 3 and not (user_dir / "pwned").exists()
    assert done.stderr.count("\n") == 1 and f"is owned by uid {intruder.pw_uid}" in done.stderr, done.stderr
    assert zenctl("config", "validate", "-c", str(user_dir / "zenctl.yaml")).returncode == 0

    mine = zenctl.config("agents: {}\n")
    mine.chmod(0o666)
    done = zenctl("health", "check", "-c", str(mine))
    assert done.returncode == 3 and "is writable by others (mode 0666)" in done.stderr, done.stderr
    mine.chmod(0o644)
    os.chown(user_dir / "zenctl.yaml", 0, 0)  # root's file, in a directory the intruder can change
    done = zenctl("health", "check", "-c", str(user_dir / "zenctl.yaml"))
    assert done.returncode == 3 and f"its directory {user_dir} is owned by uid {intruder.pw_uid}" in done.stderr
