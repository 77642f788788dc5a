"""Database connection management: terminate PostgreSQL sessions left idle in transaction (they hold locks and
block vacuum), with `pg_terminate_backend`.

Only sessions the preview named are terminated, and only if they still qualify when apply runs: still idle in
transaction beyond the limit, in the configured database, of a configured role, and never zenctl's own session.
Needs a role with pg_signal_backend (or superuser) to terminate other roles' sessions. Cannot be undone.

Parameters: service, database, roles, idle_after, sessions [{pid, role, idle_seconds}]; the DSN travels in the
proposal's context (it may hold a password).
"""

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register

_QUALIFYING = """
FROM pg_stat_activity
WHERE pid = ANY(%(pids)s) AND state = ANY(%(states)s) AND pid <> pg_backend_pid() AND datname = %(database)s
  AND usename = ANY(%(roles)s) AND now() - state_change > make_interval(secs => %(idle)s)
"""
_TERMINATE = "SELECT pid, pg_terminate_backend(pid)" + _QUALIFYING
_STILL_THERE = "SELECT pid" + _QUALIFYING


def _connect(proposal: Proposal):
    import psycopg

    from zenctl.agents.health.probes import describe

    dsn = proposal.context.get("dsn")
    if not dsn:
        raise ActionFailed("the database's DSN is not known to this process")
    try:
        return psycopg.connect(dsn, connect_timeout=10, autocommit=True, application_name="zenctl-reset")
    except psycopg.OperationalError as exc:
        raise ActionFailed(f"cannot connect: {describe(exc)}") from None


def _args(p: dict) -> dict:
    from zenctl.agents.health.probes.databases import IDLE_STATES

    return {"pids": [s["pid"] for s in p["sessions"]], "states": list(IDLE_STATES), "database": p["database"],
            "roles": p["roles"], "idle": p["idle_after"]}


@register
class ResetConnections(ActionKind):
    name = "db.reset_connections"
    summary = "Terminate PostgreSQL sessions idle in transaction beyond a limit (configured database and roles)."
    irreversible_why = "a terminated session cannot be brought back"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        sessions = ", ".join(f"{s['pid']} ({s['role']}, idle {s['idle_seconds']:.0f} s)" for s in p["sessions"][:5])
        more = f" and {len(p['sessions']) - 5} more" if len(p["sessions"]) > 5 else ""
        return (f"terminate {len(p['sessions'])} session(s) idle in transaction over {p['idle_after']:g} s in "
                f"database {p['database']}: {sessions}{more}")

    def apply(self, proposal: Proposal) -> Applied:
        import psycopg

        with _connect(proposal) as connection:
            try:
                rows = connection.execute(_TERMINATE, _args(proposal.params)).fetchall()
            except psycopg.Error as exc:
                raise ActionFailed(f"pg_terminate_backend failed: {str(exc).strip().splitlines()[0]}") from None
        done = sorted(pid for pid, ok in rows if ok)
        skipped = len(proposal.params["sessions"]) - len(done)
        note = f"; {skipped} no longer qualified (finished or became active)" if skipped else ""
        return Applied(f"terminated {len(done)} session(s) idle in transaction in {proposal.params['database']}"
                       f"{': pids ' + ', '.join(map(str, done)) if done else ''}{note}", {"terminated": done})

    def verify(self, proposal: Proposal) -> str | None:
        import time

        for _ in range(20):  # a terminated backend leaves pg_stat_activity within moments
            with _connect(proposal) as connection:
                left = [row[0] for row in connection.execute(_STILL_THERE, _args(proposal.params)).fetchall()]
            if not left:
                return None
            time.sleep(0.1)
        return f"sessions still idle in transaction: pids {', '.join(map(str, left))}"
