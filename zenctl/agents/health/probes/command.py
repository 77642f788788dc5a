"""`command` checks: any Nagios plugin, read by its exit code and first output line."""

from zenctl.agents.health.probes import Outcome
from zenctl.core.commands import run_command

STATUS = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}  # Nagios plugin exit codes


def probe_command(service, deadline: float) -> Outcome:
    result = run_command(service.command, service.timeout)  # started with the deadline; its own clock
    evidence = {"exit_code": result.code, "seconds": round(result.seconds, 3)}
    if result.timed_out:
        return Outcome("critical", f"check {result.first_line}", down=True, evidence=evidence)
    status = STATUS.get(result.code, "unknown")
    return Outcome(status, result.first_line or f"check exited {result.code}", down=status == "critical",
                   evidence=evidence)
