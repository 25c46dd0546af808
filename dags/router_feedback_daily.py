"""DAG `router_feedback_daily`: once a day, turn the day's telemetry into gated routing weights and a report."""

from __future__ import annotations

from _common import CHECK_TASK_ARGS, START_DATE, Tag, default_args, pool_args, tags
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from routerloop.assets import table_asset
from routerloop.config import settings

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
  `load_reference` (the reference folder, setting `reference_dir`, into schema `reference`: validated,
  loaded in one transaction, membership history kept; an invalid folder fails the task and keeps the
  previous roster) -> `transform` (one `dbt build` of every model and test for the day, `routerloop.daily.build_day`, the
  same call as `routerloop build --start --end`) -> `marts_gate` (weights and A/B suites for the day)
  -> `publish_weights` (`routerloop.export.publish` of the weights gate result this run's `marts_gate`
  recorded, passed as XCom; emits the asset of `router.routing_weights`) -> `write_report` ->
  `apply_retention` (`routerloop retention`: personal data in raw older than `retention_days` nulled,
  counts logged; after the day's work, so a failed day leaves raw as it was for its rerun).
* **One dbt build at a time:** `transform` holds the warehouse's build lock (an advisory lock) for the
  whole build; another day's run, a backfill or a `routerloop build` waits for it, and its log says
  `waiting for another dbt build (pid ...)`. `airflow backfill create` ignores `max_active_runs`; the
  lock does not.
* **Per model:** the task log has dbt's line for every model and test, and the task's XCom the status
  of every node; `audit.dbt_model_runs` records each model's rows and timing.
* **Source freshness:** `source_freshness_gate` runs `dbt source freshness` after the raw gate, beside
  the build, on the thresholds of `routerloop freshness` (settings `freshness_stale_after_minutes*`). A
  stale source fails the task and the run, without holding back the day's weights. A run for a day that
  ended longer ago than the largest threshold (a backfill, a demo day) skips it and says why.
* **Backfills:** a run for a day older than the router's current version records that day's weights
  in history (and its `<version>.json`) without replacing the current version; only
  `routerloop export --rollback VERSION` moves the router back.
* **Failures:** gates and failed dbt tests never retry: a failed check is a verdict on the data (a
  failed test fails `transform` at once). A model's error is retried like any task. A failed gate or
  build stops the export, so the router keeps its last good version. Every failure is logged in one
  plain sentence naming the task, the day and the reason.
"""


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
def source_freshness_gate(data_interval_end=None) -> dict:
    """dbt source freshness on the thresholds of routerloop.freshness; a stale source fails the task."""
    from routerloop.freshness import dbt_source_freshness

    return dbt_source_freshness(data_interval_end=data_interval_end)


@task
def load_reference() -> dict:
    """The organisation's roster and experiments, loaded before dbt reads them (routerloop.reference)."""
    from airflow.sdk.exceptions import AirflowFailException

    from routerloop.reference import RosterError, load

    try:
        loaded = load()
    except RosterError as invalid:  # the folder breaks a rule: retrying cannot fix it; the old roster stays
        raise AirflowFailException(str(invalid)) from invalid
    print(f"reference folder: {'loaded as load ' if loaded['loaded'] else ''}{loaded.get('reason', loaded['load_id'])}")
    return {k: str(v) for k, v in loaded.items()}


@task
def transform(data_interval_start=None, data_interval_end=None) -> dict:
    """dbt build of the day (every model and test), holding the build lock; failed tests do not retry."""
    import os

    from airflow.sdk.exceptions import AirflowFailException

    # dbt creates two multiprocessing locks; the task process ends without running their finalisers, so
    # the resource tracker (a process of its own, reading this variable) would log them as leaked.
    os.environ["PYTHONWARNINGS"] = "ignore:resource_tracker:UserWarning"

    from routerloop.daily import BuildFailed, build_day

    start, end = _day(data_interval_start, data_interval_end)
    try:
        return build_day(start, end)
    except BuildFailed as failure:
        if failure.verdict:
            raise AirflowFailException(str(failure)) from failure
        raise


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
    if published.teams_without_weight:
        print(f"warning: teams not in the roster get no weight: {', '.join(published.teams_without_weight)}")
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
    gated = marts_gate.override(task_id="marts_gate", **CHECK_TASK_ARGS)()
    checked = wait_for_hourly_landings() >> raw_gate.override(task_id="raw_gate", **CHECK_TASK_ARGS)()
    # A stale source fails the run and says so, but does not hold back the day's weights.
    checked >> source_freshness_gate.override(task_id="source_freshness_gate", **CHECK_TASK_ARGS)()
    (
        checked
        >> load_reference()
        >> transform.override(**pool_args("transform"))()
        >> gated
        >> publish_weights.override(outlets=[Asset(**table_asset("router", "routing_weights").as_kwargs())])(gated)
        >> write_report()
        >> apply_retention()
    )


feedback_dag = router_feedback_daily()
