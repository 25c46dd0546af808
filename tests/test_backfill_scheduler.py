"""`airflow backfill create` of the hourly DAG under a real scheduler (`routerloop airflow -- standalone`)
lands every hour of the range, once, and its run ids carry the end of each interval.

The stack runs from a temporary AIRFLOW_HOME (SQLite metadata, one task at a time) against a warehouse
database of its own, and the test stops every process it started.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routerloop import airflow_stack, db
from routerloop.airflow_env import run_airflow
from routerloop.contract import STREAMS
from routerloop.landing import discover

DAG_ID = "router_telemetry_hourly"
GENERATED_FROM = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = [GENERATED_FROM + timedelta(hours=h) for h in (4, 5, 6)]  # the backfilled hours
STARTUP_TIMEOUT_SECONDS = 300
RUNS_TIMEOUT_SECONDS = 900
STOP_TIMEOUT_SECONDS = airflow_stack.STOP_GRACE_SECONDS + 4 * airflow_stack.LEFTOVER_GRACE_SECONDS + 30

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(wrapper: subprocess.Popen, home: Path, log: Path) -> list[int]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        assert wrapper.poll() is None, f"the stack exited with {wrapper.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"the stack was not ready in time:\n{log.read_text()[-4000:]}"
        state = airflow_stack.read_state(home)
        if state and airflow_stack.api_is_healthy(state["api_url"], ("scheduler", "triggerer", "dag_processor")):
            return list(state["sessions"].values())
        time.sleep(1)


def _query(home: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(home / "airflow.db", timeout=30) as meta:
        return meta.execute(sql, params).fetchall()


def _wait_for(what: str, probe, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()[-6000:]}"
        time.sleep(2)


@pytest.fixture
def warehouse(database_url):
    name = db.url_parts(database_url)["dbname"] + "_sched"
    url = db.create_database(database_url, name)
    yield url
    db.drop_database(database_url, name)


def test_airflow_backfill_create_lands_every_hour_of_the_range(tmp_path, warehouse):
    from routerloop.simulation import generate

    landing = tmp_path / "landing"
    generate(out=landing, start=GENERATED_FROM, hours=8, seed=5, decisions_per_hour=60, bad_rate=0.0)
    home = tmp_path / "state" / "airflow"
    env = {**os.environ, "ROUTERLOOP_STATE_DIR": str(tmp_path / "state"), "AIRFLOW__API__PORT": str(_free_port()),
           "ROUTERLOOP_DATABASE_URL": warehouse, "ROUTERLOOP_LANDING_DIR": str(landing)}
    for exposing in ("AIRFLOW__API__HOST", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"):
        env.pop(exposing, None)
    log = tmp_path / "standalone.log"
    sessions: list[int] = []
    with open(log, "w") as out:
        wrapper = subprocess.Popen([sys.executable, "-m", "routerloop", "airflow", "--", "standalone"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        sessions = _wait_until_ready(wrapper, home, log)

        def airflow(*args: str) -> subprocess.CompletedProcess:
            result = run_airflow(list(args), url=warehouse, home=home, landing=landing, timeout=300)
            assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            return result

        _wait_for("the DAG processor to parse the hourly DAG",
                  lambda: _query(home, "select 1 from dag where dag_id = ?", DAG_ID), STARTUP_TIMEOUT_SECONDS, log)
        airflow("dags", "unpause", DAG_ID)
        # Logical dates 04:05, 05:05, 06:05 (the start of each interval): hours 04, 05 and 06.
        airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-11-01T04:05:00+00:00",
                "--to-date", "2026-11-01T06:05:00+00:00")

        def finished_runs():
            runs = _query(home, "select run_id, state from dag_run where dag_id = ? and run_type = 'backfill'", DAG_ID)
            return runs if len(runs) == len(HOURS) and all(s in ("success", "failed") for _, s in runs) else None

        runs = dict(_wait_for("the backfill runs", finished_runs, RUNS_TIMEOUT_SECONDS, log))
        # Run ids carry the end of the interval, logical dates its start.
        assert runs == {f"backfill__{h + timedelta(hours=1, minutes=5):%Y-%m-%dT%H:%M:%S}+00:00": "success"
                        for h in HOURS}, runs

        expected, _ = discover(landing, list(STREAMS), HOURS[0], HOURS[-1] + timedelta(hours=1))
        assert {f.partition_hour for f in expected} == set(HOURS)
        with db.connect(warehouse) as conn:
            ledger = conn.execute("select path, partition_hour, status from raw.landed_files").fetchall()
        # every file of every backfilled hour landed once, and nothing else
        assert sorted(path for path, _, _ in ledger) == sorted(f.relative for f in expected)
        assert {status for _, _, status in ledger} == {"loaded"}
        assert {hour for _, hour, _ in ledger} == set(HOURS)

        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
        assert airflow_stack.session_processes(sessions) == []
    finally:  # leave nothing behind, even when an assertion failed
        if wrapper.poll() is None:
            wrapper.send_signal(signal.SIGTERM)
            try:
                wrapper.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                wrapper.kill()
        airflow_stack.stop(home, grace=0)  # components of a supervisor that did not stop them
        airflow_stack.stop_sessions(sessions, grace=0)
