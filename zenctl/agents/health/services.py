"""Service checks (`agents.system_health.services`): each a Nagios-style command, run concurrently with its own
timeout; a failing service with a `restart` command gets a `service.restart` proposal, which the escalation
ladder paces (repair at once, retries with backoff, then alert)."""

from concurrent.futures import ThreadPoolExecutor

from zenctl.core.actions import Proposal
from zenctl.core.agent import Finding
from zenctl.core.commands import CommandResult, run_command
from zenctl.core.config import ServiceConfig

# Nagios plugin exit codes.
_STATUS = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}


def judge(service: ServiceConfig, result: CommandResult) -> tuple[Finding, list[Proposal]]:
    """The finding for one check result, and a restart when it is CRITICAL and a restart is configured."""
    check = f"service:{service.name}"
    if result.timed_out:
        status, message = "critical", f"{service.name}: check {result.first_line}"
    else:
        status = _STATUS.get(result.code, "unknown")
        message = f"{service.name}: {result.first_line or f'check exited {result.code}'}"
    evidence = {"command": service.command, "exit_code": result.code, "seconds": round(result.seconds, 3)}
    finding = Finding(check, status, message, result.code, None, "", evidence)
    if status != "critical" or not service.restart:
        return finding, []
    params = {"service": service.name, "command": service.restart, "timeout": service.restart_timeout,
              "check_command": service.command, "check_timeout": service.timeout}
    return finding, [Proposal("service.restart", service.name, params, f"{message} (CRITICAL)", check)]


def check_all(services: list[ServiceConfig]) -> list[tuple[Finding, list[Proposal]]]:
    """Every check at once, so the slowest one, not their sum, bounds the run."""
    if not services:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(services))) as pool:
        results = list(pool.map(lambda s: run_command(s.command, s.timeout), services))
    return [judge(service, result) for service, result in zip(services, results)]
