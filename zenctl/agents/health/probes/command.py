"""`command` checks: any Nagios plugin, read by its exit code and its output as the plugin guidelines define it
(message, long output, perfdata: `perfdata.py`).

A plugin's output is its stdout (what Nagios reads); its stderr is the message only when stdout is empty (a
script that failed before printing), and otherwise its first line is kept in the evidence."""

import subprocess
import time

from zenctl.agents.health.probes import Outcome
from zenctl.agents.health.probes.perfdata import MESSAGE_CHARS, parse_output
from zenctl.core.commands import _kill_group
from zenctl.core.untrusted import line

STATUS = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}  # Nagios plugin exit codes
OUTPUT_BYTES = 64 * 1024  # read of a plugin's output; Nagios itself keeps 8 KB


def probe_command(service, deadline: float) -> Outcome:
    start = time.monotonic()  # started with the deadline; its own clock
    process = subprocess.Popen(["/bin/sh", "-c", service.command], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                               close_fds=True)
    try:
        stdout, stderr = process.communicate(timeout=service.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return Outcome("critical", f"check timed out after {service.timeout:g} s (killed)", down=True,
                       evidence={"exit_code": None, "seconds": round(time.monotonic() - start, 3)})
    except BaseException:  # interrupted (emergency stop): never leave the plugin running
        _kill_group(process)
        raise
    evidence = {"exit_code": process.returncode, "seconds": round(time.monotonic() - start, 3)}
    stdout, stderr = (b.decode(errors="replace") for b in (stdout[:OUTPUT_BYTES], stderr[:OUTPUT_BYTES]))
    output = parse_output(stdout if stdout.strip() else stderr)
    if stdout.strip() and stderr.strip():
        evidence["stderr"] = line(stderr.strip().splitlines()[0])[:MESSAGE_CHARS]
    evidence.update(output.evidence())
    status = STATUS.get(process.returncode, "unknown")
    return Outcome(status, output.message or f"check exited {process.returncode}", down=status == "critical",
                   metrics=list(output.metrics), evidence=evidence)
