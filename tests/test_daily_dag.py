"""The daily DAG end to end: `airflow dags test router_feedback_daily <day>` on a small generated landing.

The hourly landings are simulated by landing the day with routerloop.landing (what the hourly DAG does),
then Airflow runs the daily DAG as a subprocess with its own SQLite metadata database, a warehouse
database of its own, and export/report folders in tmp. One good day is published; the next day has a
bad raw row, its raw gate fails and stops the run, and the router keeps the first day's version.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from routerloop import db, gates
from routerloop.airflow_env import run_airflow
from routerloop.contract import STREAMS
from routerloop.daily import BuildFailed, build_day, landing_progress
from routerloop.landing import land

DAG_ID = "router_feedback_daily"
FIRST_DAY = datetime(2026, 11, 1, tzinfo=UTC)
SECOND_DAY = FIRST_DAY + timedelta(days=1)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    from routerloop.simulation import generate

    out = tmp_path_factory.mktemp("daily_landing")
    generate(out=out, start=FIRST_DAY, hours=48, seed=5, decisions_per_hour=40, bad_rate=0.0)
    return out


@pytest.fixture(scope="module")
def warehouse(database_url):
    name = db.url_parts(database_url)["dbname"] + "_daily"
    url = db.create_database(database_url, name)
    yield url
    db.drop_database(database_url, name)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("daily_run")
    return {"home": root / "airflow_home", "exports": root / "exports", "reports": root / "reports",
            "dbt": root / "dbt"}


def _dags_test(day: datetime, warehouse: str, landing: Path, folders: dict):
    run_after = (day + timedelta(days=1)).isoformat()  # the run at midnight processes the day before
    result = run_airflow(
        ["dags", "test", DAG_ID, run_after],
        url=warehouse, home=folders["home"], landing=landing, timeout=1500,
        extra_env={
            "DBT_TARGET_PATH": str(folders["dbt"] / "target"),
            "DBT_LOG_PATH": str(folders["dbt"] / "logs"),
            "ROUTERLOOP_EXPORT_DIR": str(folders["exports"]),
            "ROUTERLOOP_REPORT_DIR": str(folders["reports"]),
            # an unexpected failure retries after seconds, not minutes
            "ROUTERLOOP_AIRFLOW_RETRY_DELAY_SECONDS": "1",
        },
    )
    return result, result.stdout + result.stderr


def _task_states(home: Path, day: datetime) -> dict[str, str]:
    """task_id -> state of the run whose data interval starts on `day`."""
    with sqlite3.connect(home / "airflow.db") as meta:
        rows = meta.execute(
            "select ti.task_id, ti.state from task_instance ti join dag_run r on r.run_id = ti.run_id"
            " and r.dag_id = ti.dag_id where ti.dag_id = ? and r.data_interval_start like ?",
            (DAG_ID, f"{day:%Y-%m-%d}%"),
        ).fetchall()
    return dict(rows)


def _returned(home: Path, task_id: str) -> list:
    """What a task returned (its XCom return_value), per run."""
    with sqlite3.connect(home / "airflow.db") as meta:
        values = meta.execute(
            "select value from xcom where dag_id = ? and task_id = ? and key = 'return_value'", (DAG_ID, task_id)
        ).fetchall()
    return [json.loads(v) for (v,) in values]


def test_landing_progress_tells_when_the_day_is_landed(landing, warehouse):
    start, end = FIRST_DAY, FIRST_DAY + timedelta(days=1)
    before = landing_progress(start, end, landing=landing, url=warehouse)
    assert not before["ready"] and len(before["missing_hours"]) == 24 and before["pending_files"]
    assert land(landing=landing, start=start, end=start + timedelta(hours=23), url=warehouse).ok
    partial = landing_progress(start, end, landing=landing, url=warehouse)
    assert not partial["ready"] and partial["missing_hours"] == [(start + timedelta(hours=23)).isoformat()]
    assert land(landing=landing, start=start, end=end, url=warehouse).ok
    assert landing_progress(start, end, landing=landing, url=warehouse)["ready"]


def test_dags_test_builds_gates_publishes_and_reports_the_day(landing, warehouse, folders):
    assert landing_progress(FIRST_DAY, SECOND_DAY, landing=landing, url=warehouse)["ready"], "runs after landing"
    result, output = _dags_test(FIRST_DAY, warehouse, landing, folders)
    assert result.returncode == 0, output[-8000:]

    states = _task_states(folders["home"], FIRST_DAY)
    assert set(states.values()) == {"success"}, {t: s for t, s in states.items() if s != "success"}
    # one dbt build of the day, every model and test, holding the build lock
    [built] = _returned(folders["home"], "transform")
    assert built["interval"] == {"start": FIRST_DAY.isoformat(), "end": SECOND_DAY.isoformat()}
    assert built["ok"] and built["models_built"] > 0 and built["tests_passed"] > 0 and built["lock"]["started"]
    assert built["nodes"]["model.routerloop.routing_weights"] == "success"
    assert {status for node, status in built["nodes"].items() if node.startswith("test.")} == {"pass"}

    day = FIRST_DAY.date()
    with db.connect(warehouse, autocommit=True) as conn:
        weights = conn.execute("select count(*) from marts.routing_weights where as_of_date = %s", (day,)).fetchone()[0]
        results = conn.execute("select gate_result_id, suite, batch, success from audit.gate_results").fetchall()
        current = conn.execute("select distinct weights_version from router.routing_weights").fetchall()
        log = conn.execute("select weights_version, action from router.publish_log").fetchall()
        built_by = {r[0] for r in conn.execute(
            "select invocation_id from audit.dbt_model_runs where model = 'routing_weights'"
        )}
    assert weights > 0
    assert {suite for _, suite, _, _ in results} == {f"raw_{s}" for s in STREAMS} | {
        gates.LANDING_FILES_SUITE, gates.WEIGHTS_SUITE, gates.AB_RESULTS_SUITE, gates.AB_SHARES_SUITE,
        gates.REFERENCE_GAPS_SUITE,
    }
    assert all(success for *_, success in results)
    weights_gate = next(gid for gid, suite, batch, _ in results if suite == gates.WEIGHTS_SUITE)

    latest = json.loads((folders["exports"] / "routing_weights" / "latest.json").read_text())
    manifest = latest["manifest"]
    assert current == [(manifest["weights_version"],)] and log == [(manifest["weights_version"], "publish")]
    assert manifest["as_of_date"] == day.isoformat() and manifest["row_count"] == weights
    assert manifest["gate_result_id"] == weights_gate
    assert manifest["dbt_invocation_id"] == built["invocation_id"] and built["invocation_id"] in built_by
    assert (folders["reports"] / f"routerloop-report-{day}.html").is_file()
    assert (folders["reports"] / "data_docs" / "index.html").is_file()


def test_a_failed_gate_stops_the_run_and_the_router_keeps_its_version(landing, warehouse, folders):
    with db.connect(warehouse, autocommit=True) as conn:
        before = conn.execute("select distinct weights_version from router.routing_weights").fetchall()
    assert len(before) == 1, "runs after the good day"
    assert land(landing=landing, start=SECOND_DAY, end=SECOND_DAY + timedelta(days=1), url=warehouse).ok
    with db.connect(warehouse, autocommit=True) as conn:  # a decision the contract forbids, inside the day
        conn.execute(
            "create temp table bad as select * from raw.router_decisions where _partition_hour >= %s limit 1",
            (SECOND_DAY,),
        )
        conn.execute(
            "update bad set decision_id = decision_id || '-bad', predicted_tier = 'T9';"
            " insert into raw.router_decisions select * from bad"
        )

    result, output = _dags_test(SECOND_DAY, warehouse, landing, folders)
    assert result.returncode != 0, "a failed gate must fail the run"
    assert (
        f"routerloop: task 'raw_gate' of DAG '{DAG_ID}' failed for the data interval "
        f"{SECOND_DAY:%Y-%m-%d} 00:00 to {SECOND_DAY + timedelta(days=1):%Y-%m-%d} 00:00 UTC (try 1 of 1); "
        "it will not be retried."
    ) in output
    assert "expect_column_values_to_be_in_set" in output and "T9" in output

    states = _task_states(folders["home"], SECOND_DAY)
    assert states["raw_gate"] == "failed"
    assert states["publish_weights"] == "upstream_failed" and states["write_report"] == "upstream_failed"
    with db.connect(warehouse, autocommit=True) as conn:
        after = conn.execute("select distinct weights_version from router.routing_weights").fetchall()
        weights_of_day = conn.execute(
            "select count(*) from marts.routing_weights where as_of_date = %s", (SECOND_DAY.date(),)
        ).fetchone()[0]
    assert after == before
    assert weights_of_day == 0  # dbt never ran for the day
    latest = json.loads((folders["exports"] / "routing_weights" / "latest.json").read_text())
    assert [(latest["manifest"]["weights_version"],)] == before
    assert not (folders["reports"] / f"routerloop-report-{date(2026, 11, 2)}.html").exists()


def test_failed_dbt_tests_are_a_verdict_and_a_model_error_is_not(monkeypatch):
    """build_day tells the DAG whether only tests failed (fail at once) or something else did (retry)."""
    import routerloop.build

    def failing(*failed):
        return lambda **_: {"ok": False, "invocation_id": "i", "models_built": 0, "tests_passed": 0, "lock": {},
                            "failed": list(failed), "results": list(failed)}

    test = {"node": "test.routerloop.not_null_routing_weights_weight", "status": "fail", "message": "Got 3 results"}
    model = {"node": "model.routerloop.routing_weights", "status": "error", "message": "connection reset\nmore"}
    monkeypatch.setattr(routerloop.build, "build", failing(test))
    with pytest.raises(BuildFailed) as verdict:
        build_day(FIRST_DAY, SECOND_DAY)
    assert verdict.value.verdict and str(verdict.value) == (
        "dbt tests failed for 2026-11-01: 1 nodes: test.routerloop.not_null_routing_weights_weight (fail: Got 3 results)"
    )
    monkeypatch.setattr(routerloop.build, "build", failing(test, model))
    with pytest.raises(BuildFailed) as error:
        build_day(FIRST_DAY, SECOND_DAY)
    assert not error.value.verdict and str(error.value).startswith("dbt build failed for 2026-11-01: 2 nodes")
    assert "(error: connection reset)" in str(error.value)
