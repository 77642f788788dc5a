"""`zenctl maintain TASK`: System Health's housekeeping on demand (or from its own cron line), as a recorded run
named `maintain` that reads the system_health config section. It observes what each task would do, and proposes
the actions; the runtime gates, previews or applies them as for any agent."""

from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, BaseAgent, Finding, RunContext
from zenctl.housekeeping import plans as housekeeping

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

    def assess(self, ctx: RunContext) -> Assessment:
        done = Assessment()
        for task in self.tasks:
            found = getattr(self, f"_{task}")(ctx)
            for finding, proposals in found:
                done.add(finding, proposals)
            if not found:
                done.add(Finding(task, "ok", f"nothing configured for {task} (agents.system_health.{_key(task)})"))
        return done

    def _tmp(self, ctx: RunContext) -> list[tuple[Finding, list[Proposal]]]:
        return [housekeeping.tmp_plan(spec, ctx.now)[:2] for spec in ctx.config.tmp]

    def _logs(self, ctx: RunContext) -> list[tuple[Finding, list[Proposal]]]:
        return [housekeeping.logs_plan(spec, housekeeping.recorded_rotations(ctx.state, spec.name), ctx.now)[:2]
                for spec in ctx.config.logs]

    def _cache(self, ctx: RunContext) -> list[tuple[Finding, list[Proposal]]]:
        return [housekeeping.cache_plan(spec, ctx.now)[:2] for spec in ctx.config.cache]

    def _db(self, ctx: RunContext) -> list[tuple[Finding, list[Proposal]]]:
        from zenctl.agents.health.services import check_all

        postgres = [s for s in ctx.config.services if s.type == "postgres" and s.reset_idle_after is not None]
        return [(checked.finding, [p for p in checked.proposals if p.kind == "db.reset_connections"])
                for checked in check_all(postgres, {}, ctx.now)]


def _key(task: str) -> str:
    return "services" if task == "db" else task
