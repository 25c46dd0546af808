"""The dedupe step: a file's staged keys go into raw.<stream>_keys, one landing of a stream at a time.

Under a per-stream advisory lock, the step inserts the staged keys into `raw.<stream>_keys` (see
routerloop.warehouse.raw for why a keys table). A plain insert (~2.5 us per line) serves the common
file of new keys; a repeated key redoes it with ON CONFLICT DO NOTHING (see keys_sql; ~2-3 us per line
more, so only then). Probing the keys first cost ~1 us per line more, RETURNING and a count ~0.3 us more
than the row count. The lock and the savepoint go in one round trip, their release in another.
A line whose stream key was seen before (earlier in the file or in an earlier file) is a duplicate: the
first line wins. When files land in parallel, the dedupe steps of one stream still run one at a time in
file order (Turn), so which copy of a repeated key wins does not depend on timing.
"""

from __future__ import annotations

import contextlib
import threading

from routerloop import contract
from routerloop.landing.copy_writer import STAGE_TABLE
from routerloop.warehouse import locks
from routerloop.warehouse.raw import key_expression, key_fields


class Turn:
    """Orders the dedupe steps of one stream's files in landing order when files land in parallel."""

    def __init__(self, previous: threading.Event | None = None):
        self.previous = previous
        self.finished = threading.Event()

    def wait(self) -> None:
        if self.previous is not None:
            self.previous.wait()

    def done(self) -> None:
        self.finished.set()


class StreamLock:
    """The per-stream advisory lock of the dedupe step.

    A session lock, so the typed insert (the expensive part) runs outside it; keys stay reserved until
    commit by the primary key. Enter it around the file's transaction: if an error left it held, it is
    released on exit, after the rollback (an aborted transaction runs no statements). `with_sql`: other
    statements sent in the same round trip (after taking it, before releasing it).
    """

    def __init__(self, conn, stream: str):
        self.conn = conn
        self.key = locks.stream_key(stream)
        self.held = False

    def acquire(self, with_sql: str = "") -> None:
        self.conn.execute("; ".join(filter(None, [locks.session_lock_sql(self.key), with_sql])))
        self.held = True

    def release(self, with_sql: str = "") -> None:
        self.conn.execute("; ".join(filter(None, [with_sql, locks.session_unlock_sql(self.key)])))
        self.held = False

    def __enter__(self) -> StreamLock:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(Exception):  # a broken connection released it already
                locks.session_unlock(self.conn, self.key)


_sql_cache: dict[tuple[str, bool], str] = {}


def keys_sql(stream_name: str, upsert: bool) -> str:
    """The dedupe step of a stream: insert the staged lines' keys that are new; returns how many.

    Fast form (upsert=False): a plain insert of every staged key, the common case of a file of new
    keys. Any repeated key makes it fail with a unique violation (a line repeating an earlier one of
    the file, a key landed before, or a key another landing holds uncommitted, after waiting for it);
    the step is then redone in the upsert form: ON CONFLICT DO NOTHING in line order, so the first
    line wins, keys landed before are skipped, and a key another landing holds is waited for, then
    skipped (or taken, if that landing rolled back). Only one landing per stream runs this step at a
    time (advisory lock) and it waits only on landings past it, so landings never deadlock.
    """
    cache_key = (stream_name, upsert)
    if cache_key not in _sql_cache:
        stream = contract.STREAMS[stream_name]
        keys = key_fields(stream)
        key_columns = ", ".join(f.column for f in keys)
        key_select = ", ".join(f"{key_expression(stream_name, f, 'record')} as {f.column}" for f in keys)
        rule = "\norder by _line_number\non conflict do nothing" if upsert else ""
        _sql_cache[cache_key] = f"""
insert into raw.{stream.name}_keys ({key_columns}, _file_id, _line_number, _partition_hour)
select {key_columns}, %(file_id)s, _line_number, %(partition_hour)s
from (select {key_select}, _line_number from {STAGE_TABLE}) as s{rule}
"""
    return _sql_cache[cache_key]


_SAVEPOINT = "routerloop_dedupe"


def insert_new_keys(conn, stream: str, params: dict, lock: StreamLock) -> int:
    """Take the stream lock and insert the staged keys that are new; how many (its row count). The
    caller releases the lock with release_sql(): one round trip each way, the savepoint included."""
    import psycopg

    lock.acquire(with_sql=f"savepoint {_SAVEPOINT}")  # the fast form may fail
    try:
        return conn.execute(keys_sql(stream, upsert=False), params).rowcount
    except psycopg.errors.UniqueViolation:
        conn.execute(f"rollback to savepoint {_SAVEPOINT}")
        return conn.execute(keys_sql(stream, upsert=True), params).rowcount


def release_sql() -> str:
    """What to send with the stream lock's release after insert_new_keys()."""
    return f"release savepoint {_SAVEPOINT}"
