"""Every PostgreSQL advisory lock routerloop takes, in one registry.

All locks use the two-key form `pg_advisory_lock(LOCK_CLASS, key)`, so they can never collide with
another application's single-key locks. Fixed keys are named below; per-stream keys (the landing's
dedupe step) are STREAM_KEY_BASE plus the stream's position in the contract. dbt macros take their
locks through `routerloop_lock(name)` (dbt_project/macros/advisory_locks.sql), whose table a test
keeps equal to DBT_LOCKS.
"""

from __future__ import annotations

from routerloop import contract

LOCK_CLASS = 7302

# Fixed keys.
MIGRATIONS = 1  # applying warehouse migrations (transaction lock)
RAW_DDL = 2  # raw stream tables and their day partitions (transaction lock)
PUBLISH = 3  # publishing routing weights (session lock, held until latest.json is written)
UDF_STATISTICS = 4  # dbt on-run-start: the statistics functions in schema udf
UDF_WEIGHTS = 5  # dbt on-run-start: the weight functions in schema udf
DBT_BUILD = 6  # one dbt build of the project at a time
REFERENCE_LOAD = 7  # loading the reference folder (transaction lock)
ERASURE = 8  # erasing a customer (transaction lock, around the deletion and its audit row)

# Locks the dbt project takes (name -> key); mirrored in macros/advisory_locks.sql.
DBT_LOCKS = {"udf_statistics": UDF_STATISTICS, "udf_weights": UDF_WEIGHTS}

STREAM_KEY_BASE = 100


def stream_key(stream: str) -> int:
    """The key of a stream's dedupe lock: its position in the contract, above the fixed keys."""
    return STREAM_KEY_BASE + list(contract.STREAMS).index(stream)


def xact_lock(conn, key: int) -> None:
    """Take a transaction-scoped advisory lock (released at commit or rollback)."""
    conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, key))


def try_xact_lock(conn, key: int) -> bool:
    """Take a transaction-scoped advisory lock if it is free; False (and nothing taken) if another holds it."""
    return conn.execute("select pg_try_advisory_xact_lock(%s, %s)", (LOCK_CLASS, key)).fetchone()[0]


def session_lock_sql(key: int) -> str:
    """session_lock() as SQL text, to send with other statements in one round trip."""
    return f"select pg_advisory_lock({LOCK_CLASS}, {int(key)})"


def session_unlock_sql(key: int) -> str:
    return f"select pg_advisory_unlock({LOCK_CLASS}, {int(key)})"


def session_lock(conn, key: int) -> None:
    conn.execute("select pg_advisory_lock(%s, %s)", (LOCK_CLASS, key))


def session_unlock(conn, key: int) -> None:
    conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))


def try_session_lock(conn, key: int) -> bool:
    return conn.execute("select pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key)).fetchone()[0]


def holders(conn, key: int) -> list[dict]:
    """The sessions holding lock `key`: backend pid, application_name (who they are) and since when."""
    rows = conn.execute(
        "select a.pid, a.application_name, a.backend_start from pg_locks l"
        " join pg_stat_activity a on a.pid = l.pid"
        " where l.locktype = 'advisory' and l.granted and l.classid = %s and l.objid = %s and l.objsubid = 2",
        (LOCK_CLASS, key),
    ).fetchall()
    return [{"backend_pid": pid, "application_name": name, "since": since} for pid, name, since in rows]


def waiters(conn, key: int) -> list[int]:
    """Backend pids of the sessions queued for lock `key`."""
    return [pid for pid, _ in queued(conn, key)]


def queued(conn, key: int) -> list[tuple[int, str | None]]:
    """(backend pid, application_name) of the sessions queued for lock `key`."""
    return conn.execute(
        "select l.pid, a.application_name from pg_locks l left join pg_stat_activity a on a.pid = l.pid"
        " where l.locktype = 'advisory' and not l.granted and l.classid = %s and l.objid = %s"
        " and l.objsubid = 2",
        (LOCK_CLASS, key),
    ).fetchall()
