"""When a landing run's files become durable: asynchronous commits per file, one synchronous commit at
the end of the run.

A durable server (fsync on) makes every synchronous commit wait for its WAL flush: 2.5-6.6 ms per
file on the development machine, about a sixth of an hourly file's landing. Landing connections
commit asynchronously instead (synchronous_commit off: the commit returns before the flush, the WAL
writer flushes within a fraction of a second), and the run ends with one synchronous commit, which
waits until the WAL up to it, every file's commit included, is on disk. So when `land()` returns (and
the summary is printed, the Airflow task succeeds) everything it landed is as durable as before.

A crash of the server mid-run can lose the last files' commits, but only whole files: a file's ledger
row commits with its raw, keys and quarantine rows, so a lost file has no ledger row and the next run
lands it again, exactly once. Readers never see anything that is not committed; what they see of a
running landing is at worst re-landed after such a crash.
"""

from __future__ import annotations

from routerloop.warehouse.raw import LEDGER


def commit_asynchronously(conn) -> None:
    """Session setting of a landing connection: its commits do not wait for the WAL flush."""
    conn.execute("set synchronous_commit = off")


def make_durable(conn, file_ids: list[int]) -> None:
    """Wait until every commit of the run is flushed: one synchronous commit after all of them.

    Only a transaction that writes WAL waits for the flush, so it rewrites one ledger row of the run
    unchanged (`file_ids`: the ledger rows the run wrote; none, nothing to wait for).
    """
    if not file_ids:
        return
    with conn.transaction():
        conn.execute("set local synchronous_commit = on")
        conn.execute(f"update {LEDGER} set finished_at = finished_at where file_id = %s", (max(file_ids),))
