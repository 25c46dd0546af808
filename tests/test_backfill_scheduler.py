"""`airflow backfill create` of the hourly DAG under a real scheduler (`routerloop airflow -- standalone`)
lands every hour of the range, once, and its run ids carry the end of each interval.

The stack runs from a temporary AIRFLOW_HOME (SQLite metadata, one task at a time) against a warehouse
database of its own, and the test stops every process it started.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import running_stack

from routerloop import db
from routerloop.airflow_env import run_airflow
from routerloop.contract import STREAMS
from routerloop.landing import discover

DAG_ID = "router_telemetry_hourly"
GENERATED_FROM = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = [GENERATED_FROM + timedelta(hours=h) for h in (4, 5, 6)]  # the backfilled hours
STARTUP_TIMEOUT_SECONDS = 300
RUNS_TIMEOUT_SECONDS = 900

pytestmark = pytest.mark.slow


def _query(home: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(home / "airflow.db", timeout=30) as meta:
        return meta.execute(sql, params).fetchall()


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
    env = {"ROUTERLOOP_DATABASE_URL": warehouse, "ROUTERLOOP_LANDING_DIR": str(landing)}
    with running_stack(tmp_path / "state", env) as stack:
        home = stack.home
        stack.wait_until_ready()

        def airflow(*args: str):
            result = run_airflow(list(args), url=warehouse, home=home, landing=landing, timeout=300)
            assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            return result

        stack.wait_for("the DAG processor to parse the hourly DAG",
                       lambda: _query(home, "select 1 from dag where dag_id = ?", DAG_ID), STARTUP_TIMEOUT_SECONDS)
        airflow("dags", "unpause", DAG_ID)
        # Logical dates 04:05, 05:05, 06:05 (the start of each interval): hours 04, 05 and 06.
        airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-11-01T04:05:00+00:00",
                "--to-date", "2026-11-01T06:05:00+00:00")

        def finished_runs():
            runs = _query(home, "select run_id, state from dag_run where dag_id = ? and run_type = 'backfill'", DAG_ID)
            return runs if len(runs) == len(HOURS) and all(s in ("success", "failed") for _, s in runs) else None

        runs = dict(stack.wait_for("the backfill runs", finished_runs, RUNS_TIMEOUT_SECONDS))
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

        stack.stop()
