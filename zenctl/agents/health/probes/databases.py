"""`postgres` and `redis` checks, through psycopg and redis-py (imported only when such a check is configured).

The PostgreSQL check also finds the sessions that `db.reset_connections` may terminate: idle in transaction
longer than `reset_idle_after`, in the configured database, of the configured roles, never its own session.
"""

import math

from zenctl.agents.health.decide import level
from zenctl.agents.health.probes import Metric, Outcome, describe, remaining
from zenctl.core.agent import worst

IDLE_STATES = ("idle in transaction", "idle in transaction (aborted)")

_ACTIVITY = """
SELECT (SELECT setting::int FROM pg_settings WHERE name = 'max_connections'),
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       current_database()
"""
_OLDEST_IDLE = """
SELECT pid, usename, datname, EXTRACT(EPOCH FROM now() - state_change)::float
FROM pg_stat_activity WHERE state = ANY(%s) AND pid <> pg_backend_pid()
ORDER BY state_change LIMIT 1
"""
# the same conditions db.reset_connections applies, so the preview names exactly what apply would terminate
RESET_CANDIDATES = """
SELECT pid, usename, EXTRACT(EPOCH FROM now() - state_change)::float
FROM pg_stat_activity
WHERE state = ANY(%(states)s) AND pid <> pg_backend_pid() AND datname = %(database)s
  AND usename = ANY(%(roles)s) AND now() - state_change > make_interval(secs => %(idle)s)
ORDER BY state_change
"""


def pg_connect(dsn: str, deadline: float):
    import psycopg

    # libpq counts connect_timeout in whole seconds, at least 2; the thread deadline bounds the rest
    return psycopg.connect(dsn, connect_timeout=max(2, math.ceil(remaining(deadline))), autocommit=True,
                           application_name="zenctl-health")


def reset_database(service, connection) -> str:
    return service.reset_database or connection.info.dbname


def probe_postgres(service, deadline: float) -> Outcome:
    import psycopg

    try:
        connection = pg_connect(service.dsn, deadline)
    except psycopg.OperationalError as exc:
        if "Temporary failure in name resolution" in str(exc):
            raise
        return Outcome("critical", f"cannot connect: {describe(exc)}", down=True)
    with connection:
        connection.execute(f"SET statement_timeout = {int(remaining(deadline) * 1000)}")
        connection.execute("SELECT 1")
        max_connections, used, database = connection.execute(_ACTIVITY).fetchone()
        oldest = connection.execute(_OLDEST_IDLE, (list(IDLE_STATES),)).fetchone()
        candidates, target_db = [], reset_database(service, connection)
        if service.reset_idle_after is not None:
            candidates = connection.execute(RESET_CANDIDATES, {
                "states": list(IDLE_STATES), "database": target_db,
                "roles": service.reset_roles, "idle": service.reset_idle_after}).fetchall()
    percent = 100.0 * used / max_connections if max_connections else 0.0
    idle_seconds = oldest[3] if oldest else 0.0
    statuses = [level(percent, service.connections_warning, service.connections_critical),
                "warning" if oldest and idle_seconds >= service.idle_in_transaction_warning else "ok"]
    parts = [f"{database}: {used}/{max_connections} connections ({percent:.0f}%)"]
    if oldest:
        parts.append(f"oldest idle in transaction {idle_seconds:.0f} s (pid {oldest[0]}, {oldest[1]}@{oldest[2]})")
    if candidates:
        parts.append(f"{len(candidates)} session(s) idle in transaction beyond {service.reset_idle_after:g} s")
    evidence = {"max_connections": max_connections, "connections": used, "database": database,
                "reset_database": target_db, "idle_in_transaction_seconds": round(idle_seconds, 1),
                "reset_candidates": [{"pid": pid, "role": role, "idle_seconds": round(idle, 1)}
                                     for pid, role, idle in candidates]}
    metrics = [Metric("connections", used, "", max_connections * service.connections_warning / 100,
                      max_connections * service.connections_critical / 100),
               Metric("idle_in_transaction", round(idle_seconds, 1), "s", service.idle_in_transaction_warning)]
    return Outcome(worst(statuses), "; ".join(parts), metrics=metrics, evidence=evidence)


def probe_redis(service, deadline: float) -> Outcome:
    import redis

    client = redis.Redis.from_url(service.url, socket_timeout=remaining(deadline),
                                  socket_connect_timeout=remaining(deadline))
    try:
        client.ping()
        memory = client.info("memory")
    except redis.exceptions.ConnectionError as exc:
        if "Temporary failure in name resolution" in str(exc):
            raise
        return Outcome("critical", f"cannot connect: {describe(exc)}", down=True)
    except redis.exceptions.TimeoutError:
        return Outcome("critical", "timed out", down=True)
    except redis.exceptions.RedisError as exc:
        return Outcome("critical", f"PING failed: {describe(exc)}", down=True)
    finally:
        client.close()
    used, limit = memory.get("used_memory", 0), memory.get("maxmemory", 0)
    evidence = {"used_memory": used, "maxmemory": limit}
    if not limit:
        return Outcome("ok", f"PONG; {used / 1048576:.1f} MiB used (no maxmemory set)",
                       metrics=[Metric("used_memory", used, "B")], evidence=evidence)
    percent = 100.0 * used / limit
    metrics = [Metric("used_memory", used, "B", limit * service.memory_warning / 100,
                      limit * service.memory_critical / 100)]
    return Outcome(level(percent, service.memory_warning, service.memory_critical),
                   f"PONG; {used / 1048576:.1f} of {limit / 1048576:.1f} MiB maxmemory used ({percent:.0f}%)",
                   metrics=metrics, evidence=evidence)
