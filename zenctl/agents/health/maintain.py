"""`zenctl maintain TASK`: System Health's housekeeping on demand (or from its own cron line), as a recorded run
named `maintain` that reads the system_health config section. It observes what each task would do, and proposes
the actions; the runtime gates, previews or applies them as for any agent."""

from zenctl.core.actions import Proposal
from zenctl.core.agent import BaseAgent, Finding, RunContext

TASKS = ("tmp",)


class MaintainAgent(BaseAgent):
    name = "maintain"
    title = "Maintenance"
    section = "system_health"

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        self._proposals: list[Proposal] = []

    def observe(self, ctx: RunContext) -> list[Finding]:
        findings = []
        if "tmp" in self.tasks:
            for spec in ctx.config.tmp:
                finding, proposals = tmp_plan(spec, ctx.now)
                findings.append(finding)
                self._proposals += proposals
            if not ctx.config.tmp:
                findings.append(Finding("tmp", "ok", "no tmp roots configured (agents.system_health.tmp)"))
        return findings

    def plan(self, ctx: RunContext, findings: list[Finding]) -> list[Proposal]:
        return self._proposals


def tmp_plan(spec, now: float) -> tuple[Finding, list[Proposal]]:
    """A dry walk of one root: the finding says what is there to clean, the proposal cleans it."""
    from zenctl.agents.health.tmpclean import Walker

    sweep = Walker(spec, now).run()
    check = f"tmp:{spec.root}"
    evidence = {"files": sweep.files, "dirs": sweep.dirs, "bytes": sweep.bytes, "kept_open": sweep.kept_open,
                "kept_special": sweep.kept_special, "kept_other_fs": sweep.kept_other_fs, "errors": sweep.errors[:20]}
    if sweep.errors and not (sweep.files or sweep.dirs):
        return Finding(check, "unknown", sweep.errors[0], None, None, "", evidence), []
    finding = Finding(check, "ok", sweep.summary("old enough to delete:"), sweep.bytes, None, "B", evidence)
    if not (sweep.files or sweep.dirs):
        return finding, []
    params = {**spec.model_dump(mode="json"), "files": sweep.files, "dirs": sweep.dirs, "bytes": sweep.bytes}
    return finding, [Proposal("tmp.clean", spec.root, params, f"{spec.root}: {sweep.files} old file(s), "
                                                             f"{sweep.dirs} empty dir(s)", check)]
