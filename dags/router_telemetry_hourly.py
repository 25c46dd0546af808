"""DAG `router_telemetry_hourly`: land each hour of router telemetry into schema raw."""

from __future__ import annotations

from _common import CHECK_TASK_ARGS, START_DATE, Tag, default_args, log, pool_args, tags
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

from routerloop.assets import RAW_ASSETS
from routerloop.config import settings
from routerloop.contract import STREAMS

DOCS = """
### router_telemetry_hourly

Lands the previous full hour of every telemetry stream from the landing zone into PostgreSQL.

* **Schedule:** minute 5 of every hour (cron data-interval timetable, UTC). The run at 05:05 carries
  the data interval 04:05-05:05 and lands the partitions `dt=…/hr=04` of every stream: both ends of
  the interval are floored to the hour (`routerloop.windows.hour_window`), so consecutive runs land
  consecutive hours, none twice and none skipped.
* **Tasks:** one `land_<stream>` task per stream of the contract. Each calls
  `routerloop.landing.land_or_raise` for its stream and hour, and on success emits the Asset of its
  raw table (`routerloop.assets.RAW_ASSETS`), which downstream DAGs schedule on.
* **Idempotent:** the landing ledger (`raw.landed_files`) makes re-landing a file a no-op, so a
  re-run, a retry or an overlapping backfill never duplicates rows. A changed file is refused.
  Each task logs how many files it landed now and how many had landed before (skipped).
* **Failures:** bad lines go to `raw.quarantine` with a reason. When a file's share of bad lines
  exceeds `bad_line_limit`, or a landed file has changed, the task fails at once without retries
  (retrying cannot fix the input). An unreadable file and other errors (database unreachable) are
  retried with exponential backoff.
* **Freshness:** `freshness_gate` runs after every landing task (also when one failed) and measures
  each stream's lag as of the end of the run's data interval: that moment minus the newest event landed
  before it (`routerloop.freshness`). Over `freshness_stale_after_minutes` (default 120, per stream
  overridable) a stream is stale: the notifier is called (log by default, webhook with
  `ROUTERLOOP_FRESHNESS_WEBHOOK_URL`) and the task fails, without retries. As of the interval's end
  rather than the wall clock, so a backfilled hour is judged by what had landed for then.
* **Pool:** the landing tasks run in the pool `routerloop_landing` (setting `airflow_landing_pool`), so a
  backfill of many hours never takes the slots dbt needs.
* **Landing zone:** `ROUTERLOOP_LANDING_DIR` (default `.routerloop/landing`).
* **Backfill** (runs through the scheduler; the DAG must be unpaused): `routerloop airflow -- backfill
  create --dag-id router_telemetry_hourly --from-date 2026-11-01T00:00:00+00:00 --to-date
  2026-11-01T23:59:00+00:00` lands every hour of 1 November: the dates select runs by logical date,
  which is the start of the data interval (the run with logical date 04:05 lands hour 04).
"""


@task
def land_stream(stream: str, data_interval_start=None, data_interval_end=None) -> dict:
    """Land one stream's partitions for the whole hours of this run's data interval."""
    # Imported here, not at the top: parsing the DAG file must stay cheap.
    from airflow.sdk.exceptions import AirflowFailException

    from routerloop.landing import LOADED, SKIPPED, LandingFailed, land_or_raise
    from routerloop.windows import hour_window

    start, end = hour_window(data_interval_start, data_interval_end)
    hours = f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"

    def summarise(result) -> dict:
        # A re-run (or an hour the demo landed) loads nothing: say why, rather than leave a silent zero.
        totals = {k: getattr(result.totals, k)
                  for k in ("files", "lines", "loaded", "duplicates", "quarantined", "conflicts")}
        statuses = [f.status for f in result.files]
        totals["landed_now"], totals["already_landed"] = statuses.count(LOADED), statuses.count(SKIPPED)
        log.info(
            "%s, %s: files: %d landed now, %d already landed before (skipped); "
            "lines: %d loaded, %d duplicates, %d quarantined (%d of them conflicting duplicates)",
            stream, hours, totals["landed_now"], totals["already_landed"],
            totals["loaded"], totals["duplicates"], totals["quarantined"], totals["conflicts"],
        )
        return totals

    try:
        result = land_or_raise(landing=settings().landing_dir, streams=[stream], start=start, end=end,
                               progress=False)
    except LandingFailed as failure:
        summarise(failure.result)
        message = f"{stream} for {hours} did not land cleanly: {failure}"
        if failure.retryable:  # a file that cannot be read yet may be readable on the next try
            raise RuntimeError(message) from failure
        # Too many bad lines, or a landed file changed: retrying cannot fix the input.
        raise AirflowFailException(message) from failure
    return {"stream": stream, "start": start.isoformat(), "end": end.isoformat(), **summarise(result)}


@task(trigger_rule="all_done")
def freshness_gate(data_interval_end=None) -> dict:
    """Every stream's lag as of the end of this run's interval; stale streams notify and fail the task."""
    from routerloop.freshness import check_and_notify

    report = check_and_notify(as_of=data_interval_end)
    log.info("freshness: %s", report.describe())
    return report.to_dict()


@dag(
    dag_id="router_telemetry_hourly",
    schedule=CronDataIntervalTimetable(settings().hourly_landing_cron, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=settings().airflow_max_active_runs,
    default_args=default_args(),
    doc_md=DOCS,
    tags=tags(Tag.HOURLY, Tag.LANDING),
)
def router_telemetry_hourly():
    # One task per stream rather than one mapped task: each task must emit the asset of its own table.
    landings = [
        land_stream.override(task_id=f"land_{stream}", outlets=[Asset(**RAW_ASSETS[stream].as_kwargs())],
                             **pool_args(f"land_{stream}"))(stream=stream)
        for stream in STREAMS
    ]
    landings >> freshness_gate.override(**CHECK_TASK_ARGS)()


router_telemetry_hourly()
