"""Service repairs: restart a service whose check fails, or whose memory leaks, with its configured command and a
timeout; renew a certificate about to expire.

The escalation ladder decides when a restart may be tried again (backoff) and when to stop and alert; these kinds
only run the command and re-run the service's check to verify (a restarted service gets `wait` seconds to come
back). None can be undone.

Parameters: service, command, timeout, wait (service.restart, service.memory_leak; memory_leak also pids: the
processes that leaked); service, command, timeout, renew_days (tls.renew). The service's config travels in the
proposal's context, not in its stored parameters (it may hold a password).
"""

import time

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.commands import run_command

POLL = 0.25  # seconds between checks while a restarted service comes back


def run_configured(what: str, p: dict) -> float:
    """Run the configured command; its duration, or ActionFailed with its first line."""
    result = run_command(p["command"], p["timeout"])
    if result.timed_out:
        raise ActionFailed(f"{what} command {result.first_line}")
    if result.code != 0:
        raise ActionFailed(f"{what} command exited {result.code}" + (f": {result.first_line}"
                                                                     if result.first_line else ""))
    return result.seconds


def check_again(proposal: Proposal, passes) -> str | None:
    """Re-run the service's check until `passes(outcome)` or `wait` seconds are over; None when it passed,
    else the last outcome's message."""
    from zenctl.agents.health.probes import probe

    service = proposal.context.get("service")
    if service is None:
        return "the service's check is not known to this process; cannot verify"
    give_up = time.monotonic() + proposal.params.get("wait", 0)
    while True:
        outcome = probe(service, time.monotonic() + service.timeout)
        if passes(outcome):
            return None
        if time.monotonic() + POLL > give_up:
            return f"check still fails: {outcome.status.upper()}: {outcome.message}"
        time.sleep(POLL)


@register
class RestartService(ActionKind):
    name = "service.restart"
    summary = "Run a service's restart command (with a timeout), then re-run its check until it passes."
    irreversible_why = "a restart cannot be undone"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return (f"restart {p['service']}: run {p['command']!r} (timeout {p['timeout']:g} s), then re-run its check "
                f"(up to {p.get('wait', 0):g} s)")

    def apply(self, proposal: Proposal) -> Applied:
        seconds = run_configured("restart", proposal.params)
        return Applied(f"restarted {proposal.params['service']} in {seconds:.1f} s")

    def verify(self, proposal: Proposal) -> str | None:
        return check_again(proposal, lambda outcome: not outcome.down)


@register
class RestartLeakingService(ActionKind):
    name = "service.memory_leak"
    summary = "Restart a process whose memory grows steadily or passes its limit; verify new processes run."
    irreversible_why = "a restart cannot be undone"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        pids = ", ".join(str(pid) for pid in p.get("pids", [])[:5])
        return (f"restart {p['service']} (pids {pids}) for its memory: run {p['command']!r} "
                f"(timeout {p['timeout']:g} s), then check that new processes run")

    def apply(self, proposal: Proposal) -> Applied:
        seconds = run_configured("restart", proposal.params)
        return Applied(f"restarted {proposal.params['service']} in {seconds:.1f} s",
                       {"pids": proposal.params.get("pids", [])})

    def verify(self, proposal: Proposal) -> str | None:
        old = set(proposal.params.get("pids", []))

        def replaced(outcome) -> bool:
            pids = set(outcome.evidence.get("pids", []))
            return not outcome.down and not (old and old <= pids)

        problem = check_again(proposal, replaced)
        return problem and f"{problem} (old pids still running: {sorted(old)})"


@register
class RenewCertificate(ActionKind):
    name = "tls.renew"
    summary = "Run a certificate's renew command (certbot renew), then check that the expiry moved past renew_days."
    irreversible_why = "a renewed certificate cannot be un-issued"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return (f"renew the certificate of {p['service']}: run {p['command']!r} (timeout {p['timeout']:g} s), then "
                f"check it expires in more than {p['renew_days']:g} days")

    def apply(self, proposal: Proposal) -> Applied:
        seconds = run_configured("renew", proposal.params)
        return Applied(f"renew command for {proposal.params['service']} finished in {seconds:.1f} s")

    def verify(self, proposal: Proposal) -> str | None:
        from zenctl.agents.health.probes import describe
        from zenctl.agents.health.probes.network import days_left

        service = proposal.context.get("service")
        if service is None:
            return "the certificate's check is not known to this process; cannot verify"
        try:
            days, evidence = days_left(service, time.monotonic() + service.timeout)
        except (OSError, ValueError) as exc:
            return f"cannot read the certificate after renewing: {describe(exc)}"
        if days <= proposal.params["renew_days"]:
            return f"the certificate still expires in {days:.1f} days ({evidence['not_after']})"
        return None
