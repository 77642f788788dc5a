"""`command` checks: any Nagios plugin, read by its exit code and its output as the plugin guidelines define it
(message, long output, perfdata: `perfdata.py`).

A plugin's output is its stdout (what Nagios reads); its stderr is the message only when stdout is empty (a
script that failed before printing), and otherwise its first line is kept in the evidence."""

from zenctl.agents.health.probes import Outcome
from zenctl.agents.health.probes.perfdata import MESSAGE_CHARS, parse_output
from zenctl.core.commands import run_process
from zenctl.core.untrusted import line

STATUS = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}  # Nagios plugin exit codes
OUTPUT_BYTES = 64 * 1024  # read of a plugin's output; Nagios itself keeps 8 KB


def probe_command(service, deadline: float) -> Outcome:
    done = run_process(service.command, service.timeout, split_stderr=True)
    evidence = {"exit_code": done.code, "seconds": round(done.seconds, 3)}
    if done.timed_out:
        return Outcome("critical", f"check timed out after {service.timeout:g} s (killed)", down=True,
                       evidence=evidence)
    stdout, stderr = (b.decode(errors="replace") for b in (done.stdout[:OUTPUT_BYTES], done.stderr[:OUTPUT_BYTES]))
    output = parse_output(stdout if stdout.strip() else stderr)
    if stdout.strip() and stderr.strip():
        evidence["stderr"] = line(stderr.strip().splitlines()[0])[:MESSAGE_CHARS]
    evidence.update(output.evidence())
    status = STATUS.get(done.code, "unknown")
    return Outcome(status, output.message or f"check exited {done.code}", down=status == "critical",
                   metrics=list(output.metrics), evidence=evidence)
