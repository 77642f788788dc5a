"""Service repairs: restart a service whose check fails, with the configured command and a timeout.

The escalation ladder decides when a restart may be tried again (backoff) and when to stop and alert; this kind
only runs the command and re-runs the check to verify. A restart cannot be undone.

Parameters: service, command, timeout, check_command, check_timeout.
"""

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.commands import run_command


@register
class RestartService(ActionKind):
    name = "service.restart"
    summary = "Run a service's restart command (with a timeout), then re-run its check."
    irreversible_why = "a restart cannot be undone"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return f"restart {p['service']}: run {p['command']!r} (timeout {p['timeout']:g} s), then re-run its check"

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        result = run_command(p["command"], p["timeout"])
        if result.timed_out:
            raise ActionFailed(f"restart command {result.first_line}")
        if result.code != 0:
            raise ActionFailed(f"restart command exited {result.code}" + (f": {result.first_line}"
                                                                         if result.first_line else ""))
        return Applied(f"restarted {p['service']} in {result.seconds:.1f} s")

    def verify(self, proposal: Proposal) -> str | None:
        p = proposal.params
        check = run_command(p["check_command"], p["check_timeout"])
        if check.code == 0:
            return None
        return f"check still fails after the restart: {check.first_line or f'exit {check.code}'}"
