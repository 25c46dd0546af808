"""Shared fixtures. Every test session that needs a database gets its own on a real PostgreSQL and
drops it at the end; a session of pure-Python tests starts no server.

The server is ROUTERLOOP_DATABASE_URL when set, else the embedded one (`routerloop db up`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg import sql

from routerloop import db
from routerloop.config import reload_settings

_SERVER_URL = None
# What a session that needs no database sees, so that a test using one without asking for it fails
# loudly instead of writing into some default database.
NO_DATABASE_URL = "postgresql://no-database@invalid.invalid/ask-for-the-database_url-fixture"


def _needs_database(item) -> bool:
    return "database_url" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """Create the session database once the selected tests are known, and only if one of them needs it.

    A test needs it when `database_url` is in its fixture closure (directly or through `conn`,
    `three_week_url`, ...). Pure-Python tests run without PostgreSQL. It is created before the first
    test runs, so every module and subprocess sees it.
    """
    global _SERVER_URL
    if hasattr(config, "workerinput") or not any(_needs_database(item) for item in items):
        os.environ["ROUTERLOOP_DATABASE_URL"] = NO_DATABASE_URL
        reload_settings()
        return
    server = db.up(quiet=True)
    _SERVER_URL = server
    name = f"routerloop_test_{os.getpid()}_{secrets.token_hex(3)}"
    config._routerloop_db = (server, name)
    os.environ["ROUTERLOOP_DATABASE_URL"] = db.create_database(server, name)
    # Roles are cluster-wide: each session has its own (dropped at the end), so parallel sessions on one
    # server never share or drop each other's. dbt's grants and routerloop.warehouse.roles read the prefix.
    os.environ["ROUTERLOOP_ROLE_PREFIX"] = f"rlt{os.getpid()}{secrets.token_hex(3)}"
    reload_settings()
    from routerloop.warehouse.roles import ensure_roles

    with db.connect(os.environ["ROUTERLOOP_DATABASE_URL"], autocommit=True) as conn:
        ensure_roles(conn)  # dbt's grants name them, also in dbt runs that do not go through build()


def pytest_unconfigure(config):
    server_and_name = getattr(config, "_routerloop_db", None)
    if server_and_name:
        db.drop_database(*server_and_name)
        _drop_session_roles(server_and_name[0])


def _drop_session_roles(server: str) -> None:
    """Drop this session's roles (every database they had privileges in is dropped by now)."""
    from routerloop.warehouse.roles import drop_roles

    with db.connect(db.with_database(server, "postgres"), autocommit=True) as conn:
        drop_roles(conn, os.environ["ROUTERLOOP_ROLE_PREFIX"])


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["ROUTERLOOP_DATABASE_URL"]


@pytest.fixture
def conn(database_url):
    with db.connect(database_url, autocommit=True) as connection:
        yield connection


DEMO_START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory) -> Path:
    """A clean generated landing zone: 24 hours, few decisions per hour, no bad lines."""
    from routerloop.simulation import generate

    out = tmp_path_factory.mktemp("landing_clean")
    generate(out=out, start=DEMO_START, hours=24, seed=11, decisions_per_hour=60, bad_rate=0.0)
    return out


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str):
    """A database of its own on the session's server, dropped on the way out."""
    name = f"routerloop_{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    url = db.create_database(server_url, name)
    try:
        yield url
    finally:
        db.drop_database(server_url, name)


@contextlib.contextmanager
def pointed_at(url: str, work: Path):
    """routerloop and dbt pointed at `url` (dbt's artifacts under `work`) while inside."""
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ROUTERLOOP_DATABASE_URL", url)
            patch.setenv("DBT_TARGET_PATH", str(work / "dbt-target"))
            patch.setenv("DBT_LOG_PATH", str(work / "dbt-logs"))
            reload_settings()
            yield url
    finally:
        reload_settings()


@pytest.fixture
def own_database(database_url, tmp_path):
    """A fresh database for one test that rebuilds marts incrementally (the session one stays untouched),
    with the reference folder's roster loaded."""
    from routerloop.reference import load as load_reference

    with fresh_database(database_url, "own") as url, pointed_at(url, tmp_path):
        load_reference(url=url)
        yield url


THREE_WEEK_HOURS = 504  # the proof of the marts needs at least three weeks of history


@pytest.fixture(scope="session")
def three_week_database(database_url, tmp_path_factory) -> tuple[Path, str]:
    """Three weeks of clean generated telemetry, landed and built (full refresh of every model).

    It lives in a database of its own, so tests that land other data into the session database cannot
    mix with it. Returns (landing path, database URL); the database is dropped at the end.
    """
    from routerloop.build import build
    from routerloop.landing import land
    from routerloop.reference import load as load_reference
    from routerloop.simulation import generate

    landing = tmp_path_factory.mktemp("landing_three_weeks")
    generate(out=landing, start=DEMO_START, hours=THREE_WEEK_HOURS, seed=21, decisions_per_hour=60, bad_rate=0.0)
    with fresh_database(database_url, "3w") as url:
        with pointed_at(url, tmp_path_factory.mktemp("three_week_dbt")):
            load_reference(url=url)
            landed = land(landing=landing, progress=False, url=url)
            assert landed.ok, landed.error
            built = build(full_refresh=True, url=url, quiet=True)
            assert built["ok"], "\n".join(f"{n['node']}: {n['message']}" for n in built["failed"])
        yield landing, url


@pytest.fixture(scope="session")
def three_week_warehouse(three_week_database) -> Path:
    """The landing path of `three_week_database`, after landing and a full-refresh build of everything."""
    return three_week_database[0]


@pytest.fixture(scope="session")
def three_week_url(three_week_database) -> str:
    """The URL of the database `three_week_warehouse` was landed into and built in."""
    return three_week_database[1]


def marts_checksums(url: str, ignore: frozenset[tuple[str, str]] = frozenset()) -> dict[str, tuple[int, str]]:
    """Per table and view of schema marts: row count and md5 of its rows in a fixed order, leaving out
    the (relation, column) pairs in `ignore` (columns that say which run wrote a row, not what it holds)."""
    checksum = "select count(*), md5(coalesce(string_agg(r::text, E'\\n' order by r::text), '')) from (select row({}) as r from marts.{}) as t"
    with db.connect(url, autocommit=True) as conn:
        relations = [name for (name,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1")]
        sums = {}
        for relation in relations:
            columns = [sql.Identifier(c) for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'marts'"
                " and table_name = %s order by ordinal_position", (relation,)) if (relation, c) not in ignore]
            sums[relation] = conn.execute(sql.SQL(checksum).format(
                sql.SQL(", ").join(columns), sql.Identifier(relation))).fetchone()
        return sums


def rows_reordered(url: str, schemas: tuple[str, ...]) -> int:
    """Rewrite every table of `schemas` with its rows in a random physical order (triggers off), so that a
    later build meets its inputs in another order than the first one did. Returns the tables rewritten."""
    with db.connect(url) as conn:
        conn.execute("set local session_replication_role = replica")  # append-only triggers
        tables = conn.execute(
            "select n.nspname, c.relname from pg_class as c inner join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind = 'r'", (list(schemas),)).fetchall()
        for schema, table in tables:
            name = sql.Identifier(schema, table)
            conn.execute(sql.SQL("create temporary table reordered on commit drop as"
                                 " select * from {} order by random()").format(name))
            conn.execute(sql.SQL("delete from {}").format(name))
            conn.execute(sql.SQL("insert into {} overriding system value select * from reordered").format(name))
            conn.execute("drop table reordered")
        return len(tables)


# --------------------------------------------------------------------------- a running Airflow stack

STACK_STARTUP_TIMEOUT_SECONDS = 300  # a fresh metadata database, then every component, on a busy machine


def _stack_stop_timeout() -> float:
    from routerloop import airflow_stack

    return airflow_stack.STOP_GRACE_SECONDS + 4 * airflow_stack.LEFTOVER_GRACE_SECONDS + 30


def free_port() -> int:
    from routerloop.airflow_stack import free_port as free

    return free()


class RunningStack:
    """`routerloop airflow -- standalone` started by `running_stack`: its wrapper process, home, log, sessions."""

    def __init__(self, wrapper, home: Path, log: Path):
        self.wrapper, self.home, self.log, self.sessions = wrapper, home, log, []

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_until_ready(self, timeout: float = STACK_STARTUP_TIMEOUT_SECONDS) -> list[int]:
        """The sessions of the stack, once its API server reports every component healthy."""
        import time

        from routerloop import airflow_stack

        deadline = time.monotonic() + timeout
        while True:
            assert self.wrapper.poll() is None, f"the stack exited with {self.wrapper.returncode}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"the stack was not ready in time:\n{self.tail()}"
            state = airflow_stack.read_state(self.home)
            if state and airflow_stack.api_is_healthy(state["api_url"], ("scheduler", "triggerer", "dag_processor")):
                self.sessions = list(state["sessions"].values())
                return self.sessions
            time.sleep(1)

    def wait_for(self, what: str, probe, timeout: float, every: float = 2.0):
        """probe()'s first truthy value; fails with the stack's log after `timeout` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.tail()}"
            time.sleep(every)

    def stop(self) -> None:
        """SIGTERM, as a user's Ctrl-C would: the stack exits 0 and none of its processes is left."""
        from routerloop import airflow_stack

        self.wrapper.send_signal(signal.SIGTERM)
        assert self.wrapper.wait(timeout=_stack_stop_timeout()) == 0, self.tail()
        assert airflow_stack.session_processes(self.sessions) == []
        assert not airflow_stack.state_path(self.home).exists()


@contextlib.contextmanager
def running_stack(state_dir: Path, env: dict[str, str]):
    """`routerloop airflow -- standalone` with state under state_dir, API on a free loopback port, and `env`
    over os.environ. On the way out every process it started is stopped, even after a failed assertion."""
    import subprocess
    import sys

    from routerloop import airflow_stack

    env = {**os.environ, "ROUTERLOOP_STATE_DIR": str(state_dir), "AIRFLOW__API__PORT": str(free_port()), **env}
    for exposing in ("AIRFLOW__API__HOST", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"):
        env.pop(exposing, None)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "standalone.log"
    with open(log, "w") as out:
        wrapper = subprocess.Popen([sys.executable, "-m", "routerloop", "airflow", "--", "standalone"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    stack = RunningStack(wrapper, state_dir / "airflow", log)
    try:
        yield stack
    finally:
        if wrapper.poll() is None:
            wrapper.send_signal(signal.SIGTERM)
            try:
                wrapper.wait(timeout=_stack_stop_timeout())
            except subprocess.TimeoutExpired:
                wrapper.kill()
        airflow_stack.stop(stack.home, grace=0)  # components of a supervisor that did not stop them
        airflow_stack.stop_sessions(stack.sessions, grace=0)
