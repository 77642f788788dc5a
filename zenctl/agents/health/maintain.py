"""`zenctl maintain TASK`: System Health's housekeeping on demand (or from its own cron line), as a recorded run
named `maintain` that reads the system_health config section. It observes what each task would do, and proposes
the actions; the runtime gates, previews or applies them as for any agent."""

from zenctl.housekeeping import plans as housekeeping
from zenctl.core.actions import Proposal
from zenctl.core.agent import BaseAgent, Finding, RunContext

TASKS = {
    "tmp": "clean the temporary roots (agents.system_health.tmp) with tmp.clean",
    "logs": "rotate the log sets that are due (agents.system_health.logs) with logs.rotate",
    "cache": "prune the cache directories over their caps (agents.system_health.cache) with cache.prune",
    "db": "end PostgreSQL sessions idle in transaction too long (postgres services with reset_idle_after) with "
          "db.reset_connections",
}


class MaintainAgent(BaseAgent):
    name = "maintain"
    title = "Maintenance"
    section = "system_health"

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        self._proposals: list[Proposal] = []

    def observe(self, ctx: RunContext) -> list[Finding]:
        findings = []
        for task in self.tasks:
            found = getattr(self, f"_{task}")(ctx)
            findings += found or [Finding(task, "ok", f"nothing configured for {task} "
                                                       f"(agents.system_health.{_key(task)})")]
        return findings

    def plan(self, ctx: RunContext, findings: list[Finding]) -> list[Proposal]:
        return self._proposals

    def _add(self, planned) -> Finding:
        finding, proposals, _ = planned
        self._proposals += proposals
        return finding

    def _tmp(self, ctx: RunContext) -> list[Finding]:
        return [self._add(housekeeping.tmp_plan(spec, ctx.now)) for spec in ctx.config.tmp]

    def _logs(self, ctx: RunContext) -> list[Finding]:
        return [self._add(housekeeping.logs_plan(spec, housekeeping.recorded_rotations(ctx.state, spec.name),
                                                 ctx.now)) for spec in ctx.config.logs]

    def _cache(self, ctx: RunContext) -> list[Finding]:
        return [self._add(housekeeping.cache_plan(spec, ctx.now)) for spec in ctx.config.cache]

    def _db(self, ctx: RunContext) -> list[Finding]:
        from zenctl.agents.health.services import check_all

        postgres = [s for s in ctx.config.services if s.type == "postgres" and s.reset_idle_after is not None]
        findings = []
        for checked in check_all(postgres, {}, ctx.now):
            findings.append(checked.finding)
            self._proposals += [p for p in checked.proposals if p.kind == "db.reset_connections"]
        return findings


def _key(task: str) -> str:
    return "services" if task == "db" else task
