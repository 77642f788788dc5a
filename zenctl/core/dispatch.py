"""Running agents the way cron starts them: one agent as its service account, or every agent that is due.

`run_due` decides from the state which agents are due, then runs each in a forked child: a child can drop to
the agent's `run_as` account without taking the others with it, its resource use is its own, and one agent
crashing does not stop the next. Each child takes the agent's run lock and checks again under it that the
agent is still due, so any number of concurrent `zenctl run --due` run each due agent once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenctl.core import due
from zenctl.core import registry
from zenctl.errors import UsageError, ZenctlError

if TYPE_CHECKING:  # a tick with nothing due imports neither the runtime nor psutil
    from zenctl.core.config import LoadedConfig
    from zenctl.core.runtime import RunResult


@dataclass
class Outcome:
    """What `run --due` did with one agent: `ran`, `not_due`, `running`, `disabled`, `unavailable` or `error`."""

    agent: str
    outcome: str
    reason: str = ""
    next_due: float | None = None
    run: dict[str, Any] | None = None


def check_available(name: str) -> None:
    available = registry.available()
    if name not in registry.names():
        raise UsageError(f"unknown agent {name!r} (agents: {', '.join(registry.names())})")
    if name not in available:
        raise UsageError(f"agent {name!r} is not available in this release (available: {', '.join(available)})")


def due_check(name: str, loaded: LoadedConfig):
    """The test a run makes under its lock: is `name` (still) due now?"""
    timing = due.timing_of(loaded.config.agent(name))
    return lambda state: due.is_due(timing, due.last_run(state, name), time.time())


def run_one(name: str, loaded: LoadedConfig, db_path: Path, dry_run: bool = False,
            only_if_due: bool = False) -> RunResult | None:
    """Run one agent in this process, first switching to its `run_as` account when started as root.
    With `only_if_due`, None when it is not due or already running."""

    check_available(name)
    if only_if_due and not loaded.config.agent(name).enabled:
        return None
    return run_instance(registry.load(registry.get(name).agent)(), loaded, db_path, dry_run,
                        only_if_due=due_check(name, loaded) if only_if_due else None)


def run_instance(agent, loaded: LoadedConfig, db_path: Path, dry_run: bool = False,
                 only_if_due=None) -> RunResult | None:
    """Run an agent object in this process, as the `run_as` account of its config section when started as root."""
    from zenctl.core import accounts
    from zenctl.core.runtime import run_agent
    from zenctl.core.state import open_state

    section = agent.section or agent.name
    account = accounts.account_for(section, loaded.config.agent(section).run_as)
    if account:
        accounts.switch_to(account, db_path, section)
    state = open_state(db_path)
    try:
        return run_agent(agent, loaded, state, dry_run, only_if_due=only_if_due)
    finally:
        state.close()


def plan_due(loaded: LoadedConfig, db_path: Path, now: float) -> list[Outcome]:
    """Every agent with what `run --due` will do with it; `due` for those to run."""
    from zenctl.core.state import open_state

    available = registry.available()

    state = open_state(db_path)
    try:
        outcomes = []
        for name in registry.names():
            agent_config = loaded.config.agent(name)
            timing = due.timing_of(agent_config)
            if not agent_config.enabled:
                outcomes.append(Outcome(name, "disabled", f"agents.{name}.enabled is false"))
            elif name not in available:
                outcomes.append(Outcome(name, "unavailable", "not available in this release"))
            else:
                last = due.last_run(state, name)
                known = due.remembered_fires(state, name, timing.schedule, now) if timing.schedule else None
                if due.is_due(timing, last, now, known=known):
                    outcomes.append(Outcome(name, "due", timing.describe()))
                else:
                    outcomes.append(Outcome(name, "not_due", timing.describe(),
                                            due.next_due(timing, last, now, known=known)))
        return outcomes
    finally:
        state.close()


def run_due(loaded: LoadedConfig, db_path: Path, dry_run: bool = False) -> list[Outcome]:
    """Run every enabled agent that is due, each in its own child process; report every agent."""
    outcomes = plan_due(loaded, db_path, time.time())
    for outcome in outcomes:
        if outcome.outcome != "due":
            continue
        from zenctl.core.runtime import as_json

        reply = _in_child(lambda name=outcome.agent: _child_run(name, loaded, db_path, dry_run, as_json))
        if "error" in reply:
            outcome.outcome, outcome.reason = "error", reply["error"]
        elif reply["run"] is None:
            outcome.outcome, outcome.reason = "running", "another run started it first, or it is running now"
        else:
            outcome.outcome, outcome.run = "ran", reply["run"]
    return outcomes


def _child_run(name, loaded, db_path, dry_run, as_json) -> dict[str, Any]:
    result = run_one(name, loaded, db_path, dry_run, only_if_due=True)
    return {"run": as_json(result) if result else None}


def _in_child(work) -> dict[str, Any]:
    """Run `work()` in a forked child and return the JSON-able dict it returned (or {"error": ...})."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        try:
            reply = work()
        except ZenctlError as exc:
            reply = {"error": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - reported, never a traceback
            reply = {"error": f"internal error: {type(exc).__name__}: {exc}"}
        with os.fdopen(write_end, "w") as out:
            out.write(json.dumps(reply, default=str))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as replies:
        text = replies.read()
    _, status = os.waitpid(pid, 0)
    if not text:
        return {"error": f"the run's process ended without a result ({_describe(status)})"}
    return json.loads(text)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"
