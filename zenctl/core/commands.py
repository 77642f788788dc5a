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


def run_command(command: str, timeout: float) -> CommandResult:
    import time

    start = time.monotonic()
    process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return CommandResult(None, f"timed out after {timeout:g} s (killed)", time.monotonic() - start, True)
    except BaseException:  # interrupted (emergency stop): never leave the command running
        _kill_group(process)
        raise
    text = output.decode(errors="replace").strip()
    return CommandResult(process.returncode, text.splitlines()[0][:500] if text else "",
                         time.monotonic() - start)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
