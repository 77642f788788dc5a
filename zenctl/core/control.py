"""Host-wide switches a person (or the ladder) throws: the stop flag, emergency stop, safe mode, and the gradual
resume that lets the first runs after it only plan.

All of it lives in the state file (table `control` per agent, meta key `safe_mode`), so every run, from any
process, sees it at start and again before every action.
"""

import json
import os
import pwd
import signal
import time
from dataclasses import dataclass

import psutil

from zenctl.core import audit
from zenctl.core.audit import Entry
from zenctl.core import registry
from zenctl.core.state import State
from zenctl.core.timeutil import iso
from zenctl.errors import UsageError

SAFE_MODE_KEY = "safe_mode"
TERMINATE_GRACE_SECONDS = 5.0


def whoami() -> str:
    """The person behind this command: the sudo caller when run under sudo, else the OS user."""
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


@dataclass
class Stop:
    """Why an agent may not run: who stopped it, when, and whether it was an emergency."""

    agent: str
    by: str
    reason: str
    at: str
    emergency: bool

    def describe(self) -> str:
        what = "emergency-stopped" if self.emergency else "stopped"
        return f"{self.agent} is {what} by {self.by} at {self.at} ({self.reason}); run 'zenctl resume' to re-enable"


def stopped(state: State, agent: str) -> Stop | None:
    row = state.conn.execute("SELECT by, reason, at, emergency FROM control WHERE agent = ? AND stopped = 1",
                             (agent,)).fetchone()
    return Stop(agent, row[0], row[1], row[2], bool(row[3])) if row else None


def safe_mode(state: State) -> dict | None:
    """The safe-mode record ({since, reason}) when the host is in safe mode."""
    row = state.conn.execute("SELECT value FROM meta WHERE key = ?", (SAFE_MODE_KEY,)).fetchone()
    return json.loads(row[0]) if row else None


def enter_safe_mode(state: State, reason: str, agent: str, run_id: str | None) -> bool:
    """Level 4. True when this call turned it on (it may already be on)."""
    with state.write() as conn:
        if safe_mode(state):
            return False
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                     (SAFE_MODE_KEY, json.dumps({"since": iso(), "reason": reason})))
        audit.append(state, [Entry(agent, "safe_mode.enter", f"safe mode on: {reason}; no agent applies anything "
                                                             "until 'zenctl resume'", run_id, {"reason": reason})])
    return True


def notify_only_runs(state: State, agent: str) -> int:
    row = state.conn.execute("SELECT notify_only_runs FROM control WHERE agent = ?", (agent,)).fetchone()
    return row[0] if row else 0


def count_notify_only_run(state: State, agent: str) -> None:
    """A run after `resume --notify-only-runs N` has planned without applying: one fewer to go."""
    with state.write() as conn:
        conn.execute("UPDATE control SET notify_only_runs = notify_only_runs - 1 "
                     "WHERE agent = ? AND notify_only_runs > 0", (agent,))


def stop(state: State, emergency: bool, reason: str) -> list[dict]:
    """Set the stop flag for every agent; with `emergency`, also terminate running agent runs. Returns the
    runs terminated (pid, agent, run id, how)."""
    by, at = whoami(), iso()
    with state.write() as conn:
        conn.executemany(
            "INSERT INTO control (agent, stopped, emergency, by, reason, at) VALUES (?, 1, ?, ?, ?, ?) "
            "ON CONFLICT (agent) DO UPDATE SET stopped = 1, emergency = excluded.emergency, by = excluded.by, "
            "reason = excluded.reason, at = excluded.at, notify_only_runs = 0",
            [(name, int(emergency), by, reason, at) for name in registry.names()])
        what = "emergency stop" if emergency else "stop"
        audit.append(state, [Entry("zenctl", f"control.{'emergency_stop' if emergency else 'stop'}",
                                   f"{what} by {by}: {reason}", None, {"by": by, "reason": reason})])
    if not emergency:
        return []
    terminated = _security_refusals(state, _terminate_runs(state))
    if terminated:
        with state.write():
            audit.append(state, [Entry("zenctl", "control.terminated",
                                       f"terminated {len(terminated)} running agent run(s)", None,
                                       {"runs": terminated})])
    return terminated


def _terminate_runs(state: State) -> list[dict]:
    """SIGTERM, then SIGKILL after a grace period, every zenctl run still running. A `runs` row is only a claim
    (with run_as, the state's group can write it), so a process is signalled only when all of these hold: the row
    bears the seal of an account (see `seals`), the process runs as that account, is a zenctl process, and
    started when the row says (a recycled pid is never hit). Refused rows are reported, not signalled."""
    from zenctl.core import seals

    rows = state.conn.execute("SELECT id, agent, pid, proc_start, seal FROM runs WHERE status = 'running'").fetchall()
    victims = []
    for run_id, agent, pid, proc_start, sealed in rows:
        if pid == os.getpid():
            continue
        uid = seals.signer(state.path, "runs", (run_id, agent, pid, proc_start), sealed)
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - proc_start) > 0.05:
                continue
            refused = _not_a_run_of(process, uid)
            if refused:
                victims.append((None, {"run_id": run_id, "agent": agent, "pid": pid, "how": "refused",
                                       "why": refused}))
                continue
            process.send_signal(signal.SIGTERM)
        except (psutil.NoSuchProcess, psutil.AccessDenied, TypeError):
            continue
        victims.append((process, {"run_id": run_id, "agent": agent, "pid": pid, "how": "SIGTERM"}))
    signalled = [(p, info) for p, info in victims if p is not None]
    deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
    while time.monotonic() < deadline and any(_alive(p) for p, _ in signalled):
        time.sleep(0.05)
    for process, info in signalled:
        if _alive(process):
            try:
                process.kill()
                info["how"] = "SIGKILL"
            except psutil.NoSuchProcess:
                pass
    return [info for _, info in victims]


def _security_refusals(state: State, infos: list[dict]) -> list[dict]:
    """Audit the runs rows that were refused a signal (a security event); the others, which were signalled."""
    refused = [info for info in infos if info["how"] == "refused"]
    if refused:
        with state.write():
            audit.append(state, [Entry("zenctl", "security.refused_signal",
                                       f"not signalling pid {info['pid']} of runs row {info['run_id']}: "
                                       f"{info['why']}", None, info) for info in refused])
    return [info for info in infos if info["how"] != "refused"]


def _not_a_run_of(process: psutil.Process, uid: int | None) -> str | None:
    """Why `process` is not a zenctl run of the account that sealed its row, or None when it is."""
    from zenctl.core import seals

    if uid is None:
        return "its runs row is not sealed by an account zenctl trusts (written outside zenctl)"
    if process.uids().real != uid:
        return f"it runs as uid {process.uids().real}, but its row was written by {seals.describe(uid)}"
    argv = process.cmdline()
    if not any(os.path.basename(arg) == "zenctl" or arg == "zenctl" for arg in argv[:3]):
        return f"it is not a zenctl process ({' '.join(argv[:2])[:80]!r})"
    return None


def _alive(process: psutil.Process) -> bool:
    """Running, not merely a zombie waiting for its parent (cron, a shell) to reap it."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def resume(state: State, agent: str | None, notify_only: int) -> list[str]:
    """Clear the stop flag (for one agent, or all and safe mode too); the next `notify_only` runs of each
    resumed agent plan but apply nothing. Returns what was cleared, for the message."""
    if agent is not None and agent not in registry.names():
        raise UsageError(f"unknown agent {agent!r} (agents: {', '.join(registry.names())})")
    names = [agent] if agent else list(registry.names())
    by = whoami()
    cleared = []
    with state.write() as conn:
        for name in names:
            if stopped(state, name):
                cleared.append(f"stop of {name}")
            conn.execute(
                "INSERT INTO control (agent, stopped, emergency, by, reason, at, notify_only_runs) "
                "VALUES (?, 0, 0, ?, 'resumed', ?, ?) ON CONFLICT (agent) DO UPDATE SET stopped = 0, emergency = 0, "
                "by = excluded.by, reason = 'resumed', at = excluded.at, notify_only_runs = excluded.notify_only_runs",
                (name, by, iso(), notify_only))
        if agent is None and safe_mode(state):
            conn.execute("DELETE FROM meta WHERE key = ?", (SAFE_MODE_KEY,))
            cleared.append("safe mode")
        audit.append(state, [Entry("zenctl", "control.resume",
                                   f"resume by {by}: {', '.join(names)}"
                                   + (f"; first {notify_only} run(s) apply nothing" if notify_only else "")
                                   + (f"; cleared {', '.join(cleared)}" if cleared else ""),
                                   None, {"by": by, "agents": names, "notify_only_runs": notify_only,
                                          "cleared": cleared})])
    return cleared
