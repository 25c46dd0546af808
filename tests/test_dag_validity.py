"""Every DAG loads and follows the project's conventions (in the spirit of mozilla/telemetry-airflow).

Airflow configures itself once per process from the environment, so everything that imports Airflow
runs in a fresh subprocess with routerloop's Airflow environment and a temporary AIRFLOW_HOME; the
subprocess prints JSON and the assertions run here.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

import routerloop
from routerloop.airflow_env import airflow_env, pools
from routerloop.assets import RAW_ASSETS
from routerloop.config import settings
from routerloop.contract import STREAMS

DAGS_DIR = settings().root / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
sys.path.insert(0, str(DAGS_DIR))
import _common  # noqa: E402  (lives in dags/, which Airflow puts on sys.path)

# Importing a DAG file must not pull these in: they mean work (or a slow import) at parse time.
HEAVY_MODULES = ("dbt", "great_expectations", "pandas", "numpy", "psycopg", "matplotlib")
STEP_MODULES = tuple(
    f"routerloop.{name}" for name in ("simulation", "landing", "build", "gates", "export", "report", "demo")
)

DESCRIBE_DAGS = r"""
import json, sys
from pathlib import Path
from airflow import plugins_manager
from airflow.dag_processing.dagbag import BundleDagBag

# As the DAG processor and the task runner load the dags-folder bundle (its path joins sys.path).
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]), bundle_name="dags-folder")
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "fileloc": dag.fileloc,
        "doc_md": dag.doc_md,
        "tags": sorted(dag.tags),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "timetable": type(dag.timetable).__name__,
        "timetable_expression": getattr(dag.timetable, "expression", None),
        "tasks": [
            {
                "task_id": t.task_id,
                "owner": t.owner,
                "retries": t.retries,
                "retry_exponential_backoff": t.retry_exponential_backoff,
                "max_retry_delay": t.max_retry_delay.total_seconds() if t.max_retry_delay else None,
                "outlets": [getattr(o, "uri", None) for o in t.outlets],
                "on_failure_callback": [f.__name__ for f in (t.on_failure_callback or [])],
                "downstream": sorted(t.downstream_task_ids),
                "pool": t.pool,
            }
            for t in dag.tasks
        ],
    }
plugins = plugins_manager.get_plugin_info(["source"])
print(json.dumps({
    "import_errors": bag.import_errors,
    "dags": dags,
    "plugins": [p["name"] for p in plugins],
    "plugin_import_errors": plugins_manager.get_import_errors(),
}))
"""

# Imports one DAG file the way the DAG processor does (Airflow already imported) and lists the
# modules the file itself added.
MODULES_ADDED_BY = r"""
import importlib.util, json, os, sys
import airflow.sdk
sys.path.append(os.path.dirname(sys.argv[1]))  # as the bundle loader does
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(set(sys.modules) - before)))
"""

# CPU seconds one DAG file takes to import in a fresh process that has loaded what Airflow's DAG
# processor has loaded before it parses a file (airflow.models among them, which Cosmos imports), so
# the figure is the file's own cost. CPU rather than wall-clock time: other tests share the machine.
IMPORT_SECONDS = r"""
import importlib.util, json, os, sys, time
import airflow.sdk
import airflow.dag_processing.processor
sys.path.append(os.path.dirname(sys.argv[1]))
started = time.process_time()
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(time.process_time() - started))
"""
# Far below Airflow's parse timeout: a DAG file renders from prepared artifacts and does no work.
MAX_DAG_IMPORT_SECONDS = 1.0

# Runs the daily DAG's transform task with build_day failing as after failed dbt tests, then as after
# a model's error, and reports the exception the task raised each time.
TRANSFORM_FAILURES = r"""
import importlib.util, json, os, sys
from datetime import UTC, datetime
import airflow.sdk
sys.path.append(os.path.dirname(sys.argv[1]))
spec = importlib.util.spec_from_file_location("daily_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import routerloop.daily
outcome = {}
for name, verdict in (("tests failed", True), ("model failed", False)):
    def failing(start, end, url=None, verdict=verdict):
        raise routerloop.daily.BuildFailed(name, [], verdict)
    routerloop.daily.build_day = failing
    try:
        module.feedback_dag.get_task("transform").python_callable(
            data_interval_start=datetime(2026, 11, 1, tzinfo=UTC), data_interval_end=datetime(2026, 11, 2, tzinfo=UTC))
    except Exception as exc:
        outcome[name] = type(exc).__name__
print(json.dumps(outcome))
"""

IMPORT_THE_CORE = r"""
import importlib, json, pkgutil, sys
import routerloop
names = sorted(m.name for m in pkgutil.iter_modules(routerloop.__path__, "routerloop.") if m.name != "routerloop.__main__")
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "airflow": sorted(m for m in sys.modules if m.split(".")[0] == "airflow")}))
"""


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, database_url) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    return {**os.environ, **airflow_env(url=database_url, home=home)}


@pytest.fixture(scope="module")
def bag(env) -> dict:
    return json.loads(_python(DESCRIBE_DAGS, str(DAGS_DIR), env=env))


def _tasks(bag):
    for dag_id, dag in bag["dags"].items():
        for task in dag["tasks"]:
            yield dag_id, task


def test_dag_folder_loads_without_import_errors(bag):
    assert bag["import_errors"] == {}
    assert "router_telemetry_hourly" in bag["dags"]
    # every DAG file defines at least one DAG (a file that silently defines none is a bug)
    assert {os.path.basename(d["fileloc"]) for d in bag["dags"].values()} == {p.name for p in DAG_FILES}


def test_every_dag_is_documented(bag):
    for dag_id, dag in bag["dags"].items():
        assert dag["doc_md"] and dag_id in dag["doc_md"], f"{dag_id}: doc_md must describe the DAG"


def test_every_task_has_a_real_owner(bag):
    for dag_id, task in _tasks(bag):
        assert task["owner"] == _common.OWNER != "airflow", f"{dag_id}.{task['task_id']}"


def test_tags_come_from_the_allowed_set(bag):
    allowed = {tag.value for tag in _common.Tag}
    for dag_id, dag in bag["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert set(dag["tags"]) <= allowed, f"{dag_id}: unknown tags {set(dag['tags']) - allowed}"


def test_retry_policy_per_task_kind(bag):
    for dag_id, task in _tasks(bag):
        name = f"{dag_id}.{task['task_id']}"
        if _common.is_check_task(task["task_id"]):
            assert task["retries"] == 0, f"{name} is a gate or dbt test: it must not retry"
        else:
            assert task["retries"] >= 1, f"{name} must retry transient errors"
            assert task["retry_exponential_backoff"] > 1, f"{name} must back off exponentially"
            assert task["max_retry_delay"], f"{name} needs a max_retry_delay"
        assert "log_task_failure" in task["on_failure_callback"], f"{name} must log its failures"


def test_tasks_that_write_emit_assets(bag):
    writers = [(dag_id, t) for dag_id, t in _tasks(bag) if _common.is_writer_task(t["task_id"])]
    assert writers
    for dag_id, task in writers:
        assert task["outlets"] and all(task["outlets"]), f"{dag_id}.{task['task_id']} writes but emits no Asset"


def test_landing_and_dbt_run_in_pools_of_their_own(bag):
    """Landing and dbt never starve each other: each kind has its own pool, which the metadata database gets
    with `airflow db migrate` (routerloop.airflow_env.pools, from config.py)."""
    s = settings()
    assert set(pools()) == {s.airflow_landing_pool, s.airflow_dbt_pool}
    assert s.airflow_landing_pool != s.airflow_dbt_pool
    assert all(spec["slots"] >= 1 for spec in pools().values())
    # room for both at once: the landing pool never takes every executor slot of the Celery stack
    assert s.airflow_landing_pool_slots + s.airflow_dbt_pool_slots <= s.airflow_parallelism
    by_id = {(dag_id, t["task_id"]): t["pool"] for dag_id, t in _tasks(bag)}
    landing = {k for k, pool in by_id.items() if pool == s.airflow_landing_pool}
    dbt = {k for k, pool in by_id.items() if pool == s.airflow_dbt_pool}
    assert landing == {("router_telemetry_hourly", f"land_{stream}") for stream in STREAMS} | {
        ("router_backfill", "land_range")}
    assert dbt == {("router_feedback_daily", "transform"), ("router_backfill", "rebuild_marts")}
    assert {pool for k, pool in by_id.items() if k not in landing | dbt} == {"default_pool"}


def test_hourly_dag_lands_each_stream_into_its_own_asset(bag):
    hourly = bag["dags"]["router_telemetry_hourly"]
    assert hourly["timetable"] == "CronDataIntervalTimetable"
    assert hourly["timetable_expression"] == settings().hourly_landing_cron
    assert hourly["catchup"] is False
    assert hourly["max_active_runs"] == settings().airflow_max_active_runs
    outlets = {t["task_id"]: t["outlets"] for t in hourly["tasks"] if t["task_id"] != "freshness_gate"}
    # Airflow stores the URIs exactly as routerloop.assets writes them (already in normal form).
    assert outlets == {f"land_{stream}": [RAW_ASSETS[stream].uri] for stream in STREAMS}
    # after every landing, the freshness check (a check: no retries)
    tasks = {t["task_id"]: t for t in hourly["tasks"]}
    assert all(tasks[f"land_{stream}"]["downstream"] == ["freshness_gate"] for stream in STREAMS)
    assert tasks["freshness_gate"]["retries"] == 0 and tasks["freshness_gate"]["downstream"] == []


def test_daily_dag_runs_one_dbt_build_between_the_gates(bag):
    daily = bag["dags"]["router_feedback_daily"]
    assert daily["timetable"] == "CronDataIntervalTimetable"
    assert daily["timetable_expression"] == settings().daily_feedback_cron
    assert daily["catchup"] is False
    tasks = {t["task_id"]: t for t in daily["tasks"]}
    # wait for the landings -> raw gate -> reference load -> dbt build of the day -> marts gate -> publish -> report
    assert tasks["wait_for_hourly_landings"]["downstream"] == ["raw_gate"]
    assert sorted(tasks["raw_gate"]["downstream"]) == ["load_reference", "source_freshness_gate"]
    # dbt source freshness: a check (no retries) beside the build, which a stale source does not hold back
    assert tasks["source_freshness_gate"]["downstream"] == [] and tasks["source_freshness_gate"]["retries"] == 0
    assert tasks["load_reference"]["downstream"] == ["transform"]
    assert not any("seed" in t for t in tasks)  # the roster is a load, no longer dbt seeds
    assert tasks["transform"]["downstream"] == ["marts_gate"]
    assert tasks["marts_gate"]["downstream"] == ["publish_weights"]
    assert tasks["publish_weights"]["downstream"] == ["write_report"]
    assert tasks["write_report"]["downstream"] == ["apply_retention"]
    assert tasks["apply_retention"]["downstream"] == []
    assert len(tasks) == 9


def test_daily_transform_fails_at_once_on_failed_dbt_tests_and_retries_other_errors(env):
    """The build retries (a model can hit a transient error); failed dbt tests are a verdict: no retry."""
    outcome = json.loads(_python(TRANSFORM_FAILURES, str(DAGS_DIR / "router_feedback_daily.py"), env=env))
    assert outcome == {"tests failed": "AirflowFailException", "model failed": "BuildFailed"}


def test_routerloop_plugin_loads(bag):
    assert "routerloop" in bag["plugins"]
    assert bag["plugin_import_errors"] == {}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_does_no_work_at_import(dag_file, env):
    added = json.loads(_python(MODULES_ADDED_BY, str(dag_file), env=env))
    heavy = [m for m in added if m.split(".")[0] in HEAVY_MODULES or m.startswith(STEP_MODULES)]
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time; import them inside tasks"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_in_under_a_second(dag_file, env):
    # best of three fresh processes
    seconds = min(json.loads(_python(IMPORT_SECONDS, str(dag_file), env=env)) for _ in range(3))
    assert seconds < MAX_DAG_IMPORT_SECONDS, f"{dag_file.name} takes {seconds:.2f} CPU s to import"


def test_routerloop_core_imports_no_airflow(env):
    result = json.loads(_python(IMPORT_THE_CORE, env=env))
    modules = pkgutil.iter_modules(routerloop.__path__, "routerloop.")
    expected = sorted(m.name for m in modules if m.name != "routerloop.__main__")  # __main__ runs the CLI
    assert result["imported"] == expected and "routerloop.airflow_env" in expected
    assert result["airflow"] == []


def test_check_and_writer_conventions():
    assert _common.is_check_task("raw_gate") and _common.is_check_task("marts.routing_weights.test")
    assert _common.is_check_task("transform.stg_router__decisions.test")
    assert _common.is_check_task(
        "transform.relationships_ab_results_experiment_id__ref_stg_reference__experiments___test")
    assert not _common.is_check_task("transform.stg_reference__experiments_run")
    assert not _common.is_check_task("load_reference")
    assert not _common.is_check_task("land_router_decisions")
    assert not _common.is_check_task("marts.latest_test_results.run")
    assert _common.is_writer_task("land_csat_ratings") and _common.is_writer_task("export.publish_weights")
    assert not _common.is_writer_task("raw_gate")


def test_failure_message_names_task_interval_try_and_reason():
    from datetime import UTC, datetime

    ti = SimpleNamespace(task_id="land_router_feedback", dag_id="router_telemetry_hourly", try_number=2, max_tries=3)
    context = {
        "ti": ti,
        "exception": ConnectionError("connection refused"),
        "data_interval_start": datetime(2026, 11, 1, 4, 5, tzinfo=UTC),
        "data_interval_end": datetime(2026, 11, 1, 5, 5, tzinfo=UTC),
    }
    message = _common.describe_failure(context, will_retry=True)
    assert message == (
        "routerloop: task 'land_router_feedback' of DAG 'router_telemetry_hourly' failed for the data "
        "interval 2026-11-01 04:05 to 2026-11-01 05:05 UTC (try 2 of 4); it will be retried. "
        "Reason: ConnectionError: connection refused"
    )


def test_failure_message_keeps_to_the_first_line_of_a_multi_line_exception():
    ti = SimpleNamespace(task_id="raw_gate", dag_id="router_feedback_daily", try_number=1, max_tries=0)
    exception = RuntimeError("2 of 7 quality gate suites failed: raw_csat_ratings (...).\ngate raw_csat_ratings ...")
    message = _common.describe_failure({"ti": ti, "exception": exception}, will_retry=False)
    assert message.endswith(
        "Reason: RuntimeError: 2 of 7 quality gate suites failed: raw_csat_ratings (...). (more in the exception above)"
    )
    assert "\n" not in message
