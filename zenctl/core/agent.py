"""What an agent is: a name, its config section, and one lifecycle method.

`assess` collects facts (the only place that reads the system), judges them into findings and proposes actions
for them, and returns both: nothing is kept on the agent between calls. It changes nothing: the runtime gates,
previews or applies, and records. Keep the decisions pure functions of facts so they can be tested by feeding
facts in. What an agent must remember between runs goes to its private state (`RunContext.remember`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from zenctl.core.actions import Proposal
from zenctl.core.config import LoadedConfig
from zenctl.core.state import State
from zenctl.core.timeutil import iso

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.core.configmodels import AgentConfig

# Nagios order of severity: a CRITICAL outranks an UNKNOWN, which outranks a WARNING.
_SEVERITY = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}
EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def worst(statuses) -> str:
    """The most severe status, `ok` for none."""
    return max(statuses, key=_SEVERITY.__getitem__, default="ok")


@dataclass
class Finding:
    """One judged fact: what was checked, how it stands, and the evidence."""

    check: str
    status: str
    message: str
    value: float | str | None = None
    threshold: float | None = None
    unit: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    security: bool = False  # security-related: always alerts (the seed's alert thresholds)


@dataclass
class RunContext:
    """What an agent gets for one run."""

    agent: str
    run_id: str
    loaded: LoadedConfig
    state: State
    dry_run: bool
    now: float
    section: str | None = None  # config section, when it is not the agent's name (`maintain` uses system_health's)

    @property
    def config(self) -> AgentConfig:
        """The agent's config section; defaults for an agent the config does not know (a plugin, a test)."""
        found = getattr(self.loaded.config.agents, self.section or self.agent, None)
        if found is None:  # an agent the config's models do not know (a test's): the settings every agent has
            from zenctl.core.configmodels import AgentConfig

            found = AgentConfig()
        return found

    def recall(self, key: str, default: Any = None) -> Any:
        """What this agent stored under `key` in an earlier run (JSON), or `default`."""
        row = self.state.conn.execute("SELECT value FROM agent_state WHERE agent = ? AND key = ?",
                                      (self.agent, key)).fetchone()
        return json.loads(row[0]) if row else default

    def remember(self, key: str, value: Any) -> None:
        """Keep `value` (anything JSON can hold) under `key` for this agent's later runs; None forgets it. Kept even
        under --dry-run: what an agent learned by looking is not a change to the system."""
        with self.state.write() as conn:
            if value is None:
                conn.execute("DELETE FROM agent_state WHERE agent = ? AND key = ?", (self.agent, key))
            else:
                conn.execute("INSERT INTO agent_state (agent, key, value, updated) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (agent, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                             (self.agent, key, json.dumps(value), iso(self.now)))

    def samples(self, names: list[str], since: float) -> list[tuple[str, float, str, str, float]]:
        """Stored metric samples `(run_id, ts, name, target, value)` of earlier runs since `since`, oldest first."""
        marks = ",".join("?" * len(names))
        return self.state.conn.execute(
            f"SELECT run_id, ts, name, target, value FROM metric_samples WHERE name IN ({marks}) AND ts >= ? "
            "ORDER BY ts",
            (*names, since),
        ).fetchall()

    def record_samples(self, samples: list[tuple[str, str, float | None]], keep_seconds: float) -> None:
        """Store this run's samples `(name, target, value)` and drop those older than `keep_seconds`."""
        with self.state.write() as conn:
            conn.executemany(
                "INSERT INTO metric_samples VALUES (?, ?, ?, ?, ?)",
                [(self.run_id, self.now, name, target, value) for name, target, value in samples],
            )
            conn.execute("DELETE FROM metric_samples WHERE ts < ?", (self.now - keep_seconds,))


@dataclass
class Assessment:
    """What one run of an agent found, and the actions it proposes for it."""

    findings: list[Finding] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)

    def add(self, finding: Finding, proposals: list[Proposal] = ()) -> None:
        self.findings.append(finding)
        self.proposals += proposals


class BaseAgent(ABC):
    """Extend this to make an agent; declare it with a `registry.AgentSpec` in its package (see README,
    "Creating an agent")."""

    name: ClassVar[str]
    title: ClassVar[str]
    section: ClassVar[str | None] = None  # config section to read, when it is not `name`

    @abstractmethod
    def assess(self, ctx: RunContext) -> Assessment:
        """Collect facts, judge them into findings, propose actions for them."""
