"""Conventions shared by every routerloop DAG: owner, tags, default task arguments, failure logging.

This module imports no Airflow (and nothing heavy), so tests can read the conventions directly.
It lives in dags/ because Airflow puts the DAG folder on sys.path, so DAG files import it as
`_common`; dags/.airflowignore keeps the DAG processor from parsing it as a DAG file.

Task kinds (checked by tests/test_dag_validity.py):
- normal tasks (landing, dbt models, export) retry transient errors with exponential backoff
  (`default_args()`);
- checks (quality gates, dbt tests) never retry: a failed check is a verdict on the data, and
  retrying it would only delay the stop. A check is a task whose id (its last dotted part, inside a
  task group) ends with `_gate`, is `test` (how Cosmos names the dbt test task of a model) or ends
  with `_test` (a Cosmos task for a test of several models). Give them `CHECK_TASK_ARGS`.
- tasks that write tables (ids starting with one of `WRITER_TASK_PREFIXES`) declare the Assets of
  those tables (routerloop.assets) in `outlets`.
- landing tasks (ids starting with `land_`) run in the landing pool and dbt builds (`DBT_TASK_IDS`) in
  the dbt pool (`pool_args`; config.py names and sizes both), so neither starves the other.
"""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from routerloop.config import settings

# Team that answers for the pipeline; shown as the DAG owner in the UI ("airflow" is reserved for
# examples and is rejected by the validity test).
OWNER = "routerloop-data"

# Earliest data interval any routerloop DAG knows about (the simulated telemetry starts here).
# With catchup off, it only bounds how far back `airflow backfill create` can go.
START_DATE = datetime(2026, 11, 1, tzinfo=UTC)

CHECK_TASK_SUFFIX = "_gate"
CHECK_TASK_LAST_PART = "test"
# How Cosmos names a test of several models, which runs in a task of its own: `<test name>_test`.
DETACHED_TEST_SUFFIX = "_test"
CHECK_TASK_ARGS = {"retries": 0}
WRITER_TASK_PREFIXES = ("land_", "publish_")

LANDING_TASK_PREFIX = "land_"
DBT_TASK_IDS = ("transform", "rebuild_marts")

log = logging.getLogger("routerloop.airflow")

# Known noise at the top of every task log: Airflow 3.3's own standard provider (the sensor decorator)
# imports a deprecated alias. Nothing here can act on it; every other warning stays.
warnings.filterwarnings("ignore", message=r"The `airflow\.utils\.operator_helpers\.determine_kwargs` attribute")


class Tag(StrEnum):
    """The only tags a routerloop DAG may carry: its cadence and the steps it runs."""

    HOURLY = "hourly"
    DAILY = "daily"
    MANUAL = "manual"
    LANDING = "landing"
    DBT = "dbt"
    QUALITY_GATES = "quality-gates"
    EXPORT = "export"
    BACKFILL = "backfill"
    PRIVACY = "privacy"


def tags(*values: Tag) -> list[str]:
    """Plain strings for the DAG's `tags` argument."""
    return [Tag(value).value for value in values]


def is_check_task(task_id: str) -> bool:
    """True for quality gates and dbt tests: tasks that must run with retries=0."""
    last_part = task_id.rsplit(".", 1)[-1]  # task ids inside task groups are dotted
    return last_part.endswith((CHECK_TASK_SUFFIX, DETACHED_TEST_SUFFIX)) or last_part == CHECK_TASK_LAST_PART


def is_writer_task(task_id: str) -> bool:
    """True for tasks that write tables and so must emit their Assets."""
    return task_id.rsplit(".", 1)[-1].startswith(WRITER_TASK_PREFIXES)


def task_pool(task_id: str) -> str | None:
    """The pool a task must run in: the landing pool, the dbt pool, or None (Airflow's default pool)."""
    last_part = task_id.rsplit(".", 1)[-1]
    if last_part.startswith(LANDING_TASK_PREFIX):
        return settings().airflow_landing_pool
    if last_part in DBT_TASK_IDS:
        return settings().airflow_dbt_pool
    return None


def pool_args(task_id: str) -> dict:
    """`pool=...` for a landing or dbt task (give it to `.override()`), nothing for others."""
    pool = task_pool(task_id)
    return {"pool": pool} if pool else {}


def describe_failure(context, will_retry: bool) -> str:
    """One plain sentence saying which task failed, for which hours, on which try, and why."""
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    window = f" for the data interval {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC" if start and end else ""
    attempts = f"try {ti.try_number} of {ti.max_tries + 1}" if ti is not None else "unknown try"
    reason = _first_line(exception) if exception is not None else "no exception was recorded"
    outcome = "it will be retried" if will_retry else "it will not be retried"
    task = f"task {ti.task_id!r} of DAG {ti.dag_id!r}" if ti is not None else "a task"
    return f"routerloop: {task} failed{window} ({attempts}); {outcome}. Reason: {reason}"


def _first_line(exception: BaseException) -> str:
    """The exception's type and the first line of its message: routerloop's exceptions put their summary there
    (e.g. gates.GateFailed), and the whole message is in the task log just above the callback's line."""
    lines = str(exception).strip().splitlines() or [""]
    more = " (more in the exception above)" if len(lines) > 1 else ""
    return f"{type(exception).__name__}: {lines[0]}{more}"


def log_task_failure(context) -> None:
    log.error(describe_failure(context, will_retry=False))


def log_task_retry(context) -> None:
    log.warning(describe_failure(context, will_retry=True))


def default_args() -> dict:
    """Task defaults: owner, retries with exponential backoff (config.py), and failure logging."""
    s = settings()
    return {
        "owner": OWNER,
        "retries": s.airflow_retries,
        "retry_delay": timedelta(seconds=s.airflow_retry_delay_seconds),
        "retry_exponential_backoff": s.airflow_retry_backoff,
        "max_retry_delay": timedelta(seconds=s.airflow_max_retry_delay_seconds),
        "on_failure_callback": log_task_failure,
        "on_retry_callback": log_task_retry,
    }
