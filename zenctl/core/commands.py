"""Running a configured command (a check, a restart) with a hard timeout.

The command runs under /bin/sh in its own session, so on timeout the whole process group is killed, not just the
shell: a hanging restart script leaves nothing behind.
"""

import os
import signal
import subprocess
from dataclasses import dataclass


@dataclass
class CommandResult:
    code: int | None  # None when it timed out
    first_line: str
    seconds: float
    timed_out: bool = False


@dataclass
class Finished:
    """What a command left: its exit code (None: timed out and killed), its output, how long it took."""

    code: int | None
    stdout: bytes
    stderr: bytes  # empty when stderr went to stdout
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.code is None


def run_process(command: str, timeout: float, split_stderr: bool = False) -> Finished:
    """Run `command` under /bin/sh in its own session; on timeout (or an interruption) kill its whole group."""
    import time

    start = time.monotonic()
    process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE if split_stderr else subprocess.STDOUT,
                               start_new_session=True, close_fds=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return Finished(None, b"", b"", time.monotonic() - start)
    except BaseException:  # interrupted (emergency stop): never leave the command running
        _kill_group(process)
        raise
    return Finished(process.returncode, stdout or b"", stderr or b"", time.monotonic() - start)


def run_command(command: str, timeout: float) -> CommandResult:
    """A check's or a repair's command: its exit code and the first line of what it printed."""
    done = run_process(command, timeout)
    if done.timed_out:
        return CommandResult(None, f"timed out after {timeout:g} s (killed)", done.seconds, True)
    text = done.stdout.decode(errors="replace").strip()
    return CommandResult(done.code, text.splitlines()[0][:500] if text else "", done.seconds)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
