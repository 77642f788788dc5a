"""`zenctl schedule show|install|remove`: put the agents' crontab lines where cron reads them, and take them out.

The user's crontab gets a marked block (through `crontab -l` / `crontab -`); `--system` owns the whole file
/etc/cron.d/zenctl, with a user column per agent (its `run_as`, else root). Both are action kinds, so every
change is previewed, audited and, for the system file, can be rolled back. When each line was installed is kept
in the state: an agent that was scheduled but never ran is reported stale once it should have.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from zenctl.core import crontab
from zenctl.core.actions import Proposal
from zenctl.core.config import LoadedConfig
from zenctl.core.runtime import ManualRun, RunResult
from zenctl.core.state import State
from zenctl.errors import UsageError

INSTALLED_KEY = "schedule_installed"


@dataclass
class Plan:
    target: str  # "crontab of USER" or the system file's path
    before: str | None
    after: str | None
    lines: list[crontab.Line]
    notes: list[str]
    removing: bool

    @property
    def changed(self) -> bool:
        return self.before != self.after


def show(loaded: LoadedConfig, db_path: Path, system: bool) -> tuple[str, list[str]]:
    """The text `install` would put in place (the block, or the whole system file) and the notes."""
    entries, notes = crontab.lines(loaded, db_path, system)
    return crontab.block(entries), notes


def plan(loaded: LoadedConfig, db_path: Path, system: bool, remove: bool) -> Plan:
    """What install (or remove) would change, read from the crontab or file as it is now."""
    from zenctl.core import accounts

    entries, notes = crontab.lines(loaded, db_path, system)
    new_block = "" if remove else crontab.block(entries)
    if system:
        if os.geteuid() != 0:
            raise UsageError(f"--system writes {crontab.SYSTEM_FILE}: run it as root")
        path = str(crontab.SYSTEM_FILE)
        before = crontab.read_file(path)
        return Plan(path, before, new_block or None, entries, notes, remove)
    if not remove:
        for line in entries:  # a non-root user cannot start another account's agent: say so now, not at 3 a.m.
            accounts.account_for(line.agent, loaded.config.agent(line.agent).run_as)
    before = crontab.read_user_crontab()
    return Plan(f"crontab of {accounts.current_user()}", before, crontab.merge(before, new_block), entries, notes,
                remove)



def apply(loaded: LoadedConfig, state: State, the_plan: Plan, system: bool, dry_run: bool) -> RunResult:
    """Carry out a plan that changes something, as a recorded `schedule` run."""
    if system and not dry_run and not the_plan.removing:
        _share_for_accounts(loaded, state.path, the_plan.lines)
    run = ManualRun("schedule", loaded, state, dry_run)
    verb = "remove" if the_plan.removing else "install"
    if system:
        proposal = Proposal("cron.file", the_plan.target,
                            {"path": the_plan.target, "before": the_plan.before, "after": the_plan.after},
                            f"zenctl schedule {verb} --system")
    else:
        proposal = Proposal("cron.crontab", the_plan.target,
                            {"user": the_plan.target.removeprefix("crontab of "), "before": the_plan.before,
                             "after": the_plan.after}, f"zenctl schedule {verb}")
    action = run.apply(proposal)
    if action.status == "applied":
        _remember(state, [] if the_plan.removing else [line.agent for line in the_plan.lines])
    return run.finish()


def _share_for_accounts(loaded: LoadedConfig, state_path: Path, lines: list[crontab.Line]) -> None:
    """A system schedule starts agents directly as their accounts: share the state with their group now."""
    from zenctl.core import accounts, sharing

    gids = {accounts.resolve(line.agent, run_as).gid for line in lines
            if (run_as := loaded.config.agent(line.agent).run_as)}
    for gid in sorted(gids):
        sharing.share(state_path, gid)


def _remember(state: State, agents: list[str]) -> None:
    """Keep when each agent's line was first installed (for the stale check); forget removed ones."""
    now = time.time()
    with state.write() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (INSTALLED_KEY,)).fetchone()
        known = json.loads(row[0]) if row else {}
        kept = {agent: known.get(agent, now) for agent in agents}
        if kept:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (INSTALLED_KEY, json.dumps(kept)))
        else:
            conn.execute("DELETE FROM meta WHERE key = ?", (INSTALLED_KEY,))


def installed_at(state: State) -> dict[str, float]:
    """When each agent's crontab line was installed by `zenctl schedule install`."""
    row = state.conn.execute("SELECT value FROM meta WHERE key = ?", (INSTALLED_KEY,)).fetchone()
    return json.loads(row[0]) if row else {}
