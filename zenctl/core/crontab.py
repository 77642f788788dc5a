"""The crontab lines zenctl installs, and the marked block that holds them in a crontab.

Each enabled agent gets one line: its `schedule`, or a cron expression that fires once per `interval` (every
minute when the interval has none: the `--due` check then decides). Every line names the absolute path of this
zenctl, sets PATH (zenctl's directory, then the standard system directories), ZENCTL_CONFIG and ZENCTL_DB itself
(cron's environment has almost nothing), and passes `--due --quiet`, so cron mails only problems and a tick that
comes twice runs once. In a user's crontab the lines sit between BEGIN and END markers; every other line is left
exactly as it was.

Quoting for the shell does not protect a line from cron, which reads the table first: a newline inside quotes still
ends the entry (the rest becomes a line of its own, a job of the path's author), and an unescaped `%` ends the
command. So a line with a control character is refused, and `%` is escaped as cron wants (`\\%`).
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from zenctl.core import untrusted
from zenctl.core import registry
from zenctl.core.config import LoadedConfig
from zenctl.errors import HostError, UsageError

BEGIN = "# BEGIN zenctl (managed by `zenctl schedule install`; `zenctl schedule remove` takes it out)"
END = "# END zenctl"
SYSTEM_FILE = Path("/etc/cron.d/zenctl")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a login shell's, not cron's


@dataclass(frozen=True)
class Line:
    agent: str
    spec: str  # the five cron fields
    user: str | None  # the user column of a system crontab
    command: str

    def text(self) -> str:
        return " ".join(part for part in (self.spec, self.user, self.command) if part)


def cron_spec(interval: int | None, schedule: str | None) -> str:
    """Five cron fields that fire once per interval where cron can say so, else every minute."""
    if schedule:
        return schedule
    minutes = (interval or 60) // 60 if (interval or 60) % 60 == 0 else 1
    if minutes <= 1:
        return "* * * * *"
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (hours := minutes // 60) == 0:
        return "0 * * * *" if hours == 1 else ("0 0 * * *" if hours == 24 else f"0 */{hours} * * *")
    return "* * * * *"


def zenctl_command() -> list[str]:
    """How to start this very zenctl from cron: its absolute path, else this Python with `-m zenctl`."""
    import shutil  # this module is imported on every health check (schedule status); shutil pulls in lzma, bz2

    argv0 = sys.argv[0]
    found = argv0 if os.path.isabs(argv0) else shutil.which(argv0)
    if found and os.path.basename(found) == "zenctl" and os.access(found, os.X_OK):
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "zenctl"]


def lines(loaded: LoadedConfig, db_path: Path, system: bool) -> tuple[list[Line], list[str]]:
    """The line per enabled, available agent, and a note for each agent left out."""
    import shlex

    available = registry.available()
    program = zenctl_command()
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(program[0]), *SYSTEM_PATH.split(os.pathsep)]))
    env = {"PATH": path, "ZENCTL_DB": str(db_path.absolute())}
    if loaded.path:
        env["ZENCTL_CONFIG"] = str(loaded.path.absolute())
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    out, notes = [], []
    for name in registry.names():
        agent = loaded.config.agent(name)
        if not agent.enabled:
            notes.append(f"{name}: disabled")
        elif name not in available:
            notes.append(f"{name}: not available in this release")
        elif not (agent.interval or agent.schedule):
            notes.append(f"{name}: has neither interval nor schedule")
        else:
            user = (agent.run_as or "root").partition(":")[0] if system else None
            command = f"{prefix} {shlex.join([*program, 'run', name, '--due', '--quiet'])}"
            out.append(Line(name, cron_spec(agent.interval, agent.schedule), user, command.replace("%", "\\%")))
    return out, notes


def block(entries: list[Line]) -> str:
    """The marked block (empty text when there is nothing to schedule)."""
    if not entries:
        return ""
    for entry in entries:  # a path (ZENCTL_CONFIG, ZENCTL_DB, zenctl's own) with a newline would add a line
        if untrusted.has_control(entry.text()):
            raise UsageError(f"the crontab line for {entry.agent} would hold a control character, which ends a cron "
                             f"entry (use paths without one): {untrusted.name(entry.text())}")
    return "\n".join([BEGIN, *(e.text() for e in entries), END]) + "\n"


def _find(text: str) -> tuple[int, int] | None:
    """Line indexes of the block's BEGIN and END markers; UsageError for a damaged block."""
    rows = text.splitlines()
    begins = [i for i, row in enumerate(rows) if row.strip() == BEGIN]
    ends = [i for i, row in enumerate(rows) if row.strip() == END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        where = (begins or ends)[0] + 1
        raise UsageError(f"crontab line {where}: zenctl's block is damaged (markers '{BEGIN[:15]}...' and '{END}' "
                         "must appear once each, in order); fix it with 'crontab -e'")
    return begins[0], ends[0]


def merge(existing: str, new_block: str) -> str:
    """`existing` with zenctl's block replaced in place, or appended; nothing else changes."""
    span = _find(existing)
    rows = existing.splitlines(keepends=True)
    if span is None:
        if not new_block:
            return existing
        if rows and not rows[-1].endswith("\n"):
            rows[-1] += "\n"
        return "".join(rows) + new_block
    start, end = span
    return "".join(rows[:start]) + new_block + "".join(rows[end + 1:])


def read_file(path: str) -> str | None:
    """A crontab file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_user_crontab() -> str:
    """This user's crontab (`crontab -l`); empty when there is none."""
    done = subprocess.run([_crontab(), "-l"], capture_output=True, text=True)
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return ""
        raise HostError(f"crontab -l failed: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def write_user_crontab(text: str) -> None:
    """Replace this user's crontab (`crontab -`), or remove it (`crontab -r`) when `text` is empty."""
    if text.strip():
        done = subprocess.run([_crontab(), "-"], input=text, capture_output=True, text=True)
    else:
        done = subprocess.run([_crontab(), "-r"], capture_output=True, text=True)
        if done.returncode != 0 and "no crontab" in done.stderr.lower():
            return
    if done.returncode != 0:
        raise HostError(f"crontab refused the new table: {done.stderr.strip() or f'exit {done.returncode}'}")


def _crontab() -> str:
    import shutil

    found = shutil.which("crontab") or next(
        (p for p in ("/usr/bin/crontab", "/bin/crontab") if os.access(p, os.X_OK)), None)
    if not found:
        raise HostError("crontab is not installed: install cron (Debian: apt-get install cron), or use "
                         "'zenctl schedule show' to copy the lines into your scheduler")
    return found
