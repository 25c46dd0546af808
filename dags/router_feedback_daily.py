"""DAG `router_feedback_daily`: once a day, turn the day's telemetry into gated routing weights and a report."""

from __future__ import annotations

from _common import CHECK_TASK_ARGS, START_DATE, Tag, default_args, is_check_task, tags
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from routerloop.assets import table_asset
from routerloop.config import DBT_INTERVAL_ENV, settings

DOCS = """
### router_feedback_daily

Closes the loop once a day: dbt builds the marts for the day, the Great Expectations gates check the
raw batch and the weights, the gated weights are published to the router, and the HTML report is
written.

* **Schedule:** midnight UTC (`CronDataIntervalTimetable`, setting `daily_feedback_cron`), so the data
  interval is exactly the UTC day that just ended. The run at 2 November 00:00 processes 1 November:
  `routerloop airflow -- dags test router_feedback_daily 2026-11-02T00:00:00+00:00`.
* **After the hourly landings:** the first task, `wait_for_hourly_landings`, is a sensor (reschedule
  mode, so it holds no worker slot while it waits) that passes once every hour of the day has landed
  files in the ledger `raw.landed_files` and no file of the day in the landing zone is still unlanded
  (`routerloop.daily.landing_progress`). It checks the warehouse itself rather than the hourly DAG's
  runs, so landings done outside Airflow (`routerloop land`, backfills) count too. An asset schedule
  on the raw tables would fire after every hourly landing, and its data interval would not be a day.
* **Tasks:** `wait_for_hourly_landings` -> `raw_gate` (raw suites for the day's partitions) ->
  `transform` (Cosmos task group: one task per seed, and per model a `run` then a `test` task; the
  day reaches dbt as ROUTERLOOP_DBT_START/END) -> `marts_gate` (weights and A/B suites for the day)
  -> `publish_weights` (`routerloop.export.publish` of the weights gate result this run's `marts_gate`
  recorded, passed as XCom; emits the asset of `router.routing_weights`) -> `write_report` ->
  `apply_retention` (`routerloop retention`: personal data in raw older than `retention_days` nulled,
  counts logged; after the day's work, so a failed day leaves raw as it was for its rerun).
* **Backfills:** a run for a day older than the router's current version records that day's weights
  in history (and its `<version>.json`) without replacing the current version; only
  `routerloop export --rollback VERSION` moves the router back.
* **dbt rendering:** Cosmos reads the manifest written by `routerloop build --parse` (setting
  `dbt_manifest_path`, default `.routerloop/dbt/manifest.json`; `make demo` writes it), so parsing this
  file never runs dbt. dbt connects with the committed `dbt_project/profiles.yml`, whose variables are
  filled from the Airflow connection `routerloop_warehouse`.
* **Failures:** gates and dbt tests never retry (`retries=0`): a failed check is a verdict on the data.
  A failed gate stops the export, so the router keeps its last good version. Every failure is logged
  in one plain sentence naming the task, the day and the reason.
"""

MANIFEST = settings().dbt_manifest_path
if not MANIFEST.exists():
    raise FileNotFoundError(
        f"the dbt manifest {MANIFEST} does not exist: run `routerloop build --parse` (make demo does) so that"
        " Cosmos can render router_feedback_daily"
    )

# dbt reads the warehouse from these variables (dbt_project/profiles.yml); the task fills them from the
# Airflow connection when it runs, so no address or secret is stored with the DAG.
DBT_ENV = {
    "ROUTERLOOP_PGHOST": "{{ conn.routerloop_warehouse.host }}",
    "ROUTERLOOP_PGPORT": "{{ conn.routerloop_warehouse.port }}",
    "ROUTERLOOP_PGUSER": "{{ conn.routerloop_warehouse.login }}",
    "ROUTERLOOP_PGPASSWORD": "{{ conn.routerloop_warehouse.password or '' }}",
    "ROUTERLOOP_PGDATABASE": "{{ conn.routerloop_warehouse.schema }}",
    "ROUTERLOOP_DBT_THREADS": str(settings().dbt_threads),
    # The day, both ends at midnight UTC (routerloop.daily.day_window does the same in Python). In the
    # environment, not as dbt vars: changed vars would make every dbt task re-parse the whole project.
    DBT_INTERVAL_ENV["start"]: "{{ data_interval_start | ds }}T00:00:00+00:00",
    DBT_INTERVAL_ENV["end"]: "{{ data_interval_end | ds }}T00:00:00+00:00",
}


def _day(data_interval_start, data_interval_end):
    from routerloop.daily import day_window

    return day_window(data_interval_start, data_interval_end)


@task.sensor(
    poke_interval=settings().daily_landing_poke_seconds,
    timeout=settings().daily_landing_timeout_seconds,
    mode="reschedule",
)
def wait_for_hourly_landings(data_interval_start=None, data_interval_end=None):
    """Pass once every hour of the day is landed (see routerloop.daily.landing_progress)."""
    from airflow.sdk import PokeReturnValue

    from routerloop.daily import describe_progress, landing_progress

    start, end = _day(data_interval_start, data_interval_end)
    progress = landing_progress(start, end)
    print(f"landing of {start:%Y-%m-%d}: {describe_progress(progress)}")
    return PokeReturnValue(is_done=progress["ready"], xcom_value=progress["ledger_files"])


@task
def raw_gate(data_interval_start=None, data_interval_end=None) -> list[dict]:
    """Raw suites for the partitions of the day; a failure stops the run."""
    from routerloop.gates import gate_raw

    start, end = _day(data_interval_start, data_interval_end)
    return [r.summary() for r in gate_raw(start, end)]


@task
def marts_gate(data_interval_start=None, data_interval_end=None) -> list[dict]:
    """Weights and A/B suites for the day's marts; a failure stops the export."""
    from routerloop.gates import gate_marts

    start, _ = _day(data_interval_start, data_interval_end)
    return [r.summary() for r in gate_marts(start.date())]


@task
def publish_weights(marts_gate_results: list[dict], data_interval_start=None, data_interval_end=None) -> dict:
    """Publish the day's weights, as this run's own marts gate passed them, to the router."""
    from routerloop.daily import publish_gated_day

    start, _ = _day(data_interval_start, data_interval_end)
    published = publish_gated_day(start.date(), marts_gate_results)
    print(f"weights version {published.weights_version}: {published.action} ({published.path});"
          f" the router reads {published.current_version}")
    return published.to_dict()


@task
def write_report(data_interval_start=None, data_interval_end=None) -> str:
    from routerloop.report import write_report as render

    start, _ = _day(data_interval_start, data_interval_end)
    path = render(start.date())
    print(f"report: {path}")
    return str(path)


@task
def apply_retention() -> dict:
    """Null personal data in raw older than the retention period (setting retention_days); log the counts."""
    from routerloop import db
    from routerloop.privacy import retention

    with db.connect(db.database_url(), autocommit=True) as conn:
        result = retention(conn)
    for table, counts in result["nulled"].items():
        print(f"retention (before {result['cutoff']}): {table}: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    return result


@dag(
    dag_id="router_feedback_daily",
    schedule=CronDataIntervalTimetable(settings().daily_feedback_cron, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # each day's weights start from the previous day's: days run in order
    default_args=default_args(),
    doc_md=DOCS,
    tags=tags(Tag.DAILY, Tag.DBT, Tag.QUALITY_GATES, Tag.EXPORT),
)
def router_feedback_daily():
    project_dir = settings().dbt_project_dir
    transform = DbtTaskGroup(
        group_id="transform",
        project_config=ProjectConfig(dbt_project_path=project_dir, manifest_path=MANIFEST),
        profile_config=ProfileConfig(
            profile_name="routerloop", target_name="default", profiles_yml_filepath=project_dir / "profiles.yml"
        ),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER),
        # A test of several models (relationships, singular tests) becomes its own task after all of them.
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        operator_args={"env": DBT_ENV, "install_deps": False},
    )
    gated = marts_gate.override(task_id="marts_gate", **CHECK_TASK_ARGS)()
    (
        wait_for_hourly_landings()
        >> raw_gate.override(task_id="raw_gate", **CHECK_TASK_ARGS)()
        >> transform
        >> gated
        >> publish_weights.override(outlets=[Asset(**table_asset("router", "routing_weights").as_kwargs())])(gated)
        >> write_report()
        >> apply_retention()
    )


def _finish_dbt_tasks(dbt_dag) -> None:
    """Two adjustments Cosmos cannot be configured for per task kind.

    - Cosmos gives every dbt task the same operator arguments; its test tasks are checks: no retries.
    - Cosmos selects a model's or seed's node by bare name, which dbt also matches against folder names:
      `dbt test --select experiments` (the seed) would run every test under models/*/experiments/ before
      those models exist. A `path:` selector names exactly the one file.
    """
    for operator in dbt_dag.tasks:
        if is_check_task(operator.task_id):
            operator.retries = CHECK_TASK_ARGS["retries"]
        node = (getattr(operator, "extra_context", None) or {}).get("dbt_node_config") or {}
        if node.get("resource_type") in ("model", "seed") and operator.select == node.get("resource_name"):
            operator.select = f"path:{node['original_file_path']}"


feedback_dag = router_feedback_daily()
_finish_dbt_tasks(feedback_dag)
