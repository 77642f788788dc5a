"""The example agent: one finding per run, one proposal when the file lacks the line."""

from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, BaseAgent, Finding, RunContext


class ExampleAgent(BaseAgent):
    name = "example"
    title = "Example"

    def assess(self, ctx: RunContext) -> Assessment:
        runs = ctx.recall("runs", 0) + 1
        ctx.remember("runs", runs)  # private state: kept between runs without a migration of its own
        path, line = ctx.config.path, ctx.config.line
        if not path:
            return Assessment([Finding("stamp", "ok", "no path configured", evidence={"runs": runs})])
        try:
            with open(path) as handle:
                present = line in handle.read().splitlines()
        except FileNotFoundError:
            present = False
        check = f"stamp:{path}"
        if present:
            return Assessment([Finding(check, "ok", f"{path} holds the line", evidence={"runs": runs})])
        return Assessment([Finding(check, "warning", f"{path} lacks the line", evidence={"runs": runs})],
                          [Proposal("example.stamp", path, {"path": path, "line": line}, f"{path} lacks the line",
                                    check)])
