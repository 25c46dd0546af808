"""DAG `router_backfill`: a manual backfill of a range of hours, with a dry run (the default)."""

from __future__ import annotations

from _common import CHECK_TASK_ARGS, START_DATE, Tag, default_args, pool_args, tags
from airflow.sdk import Asset, Param, dag, task

from routerloop.assets import RAW_ASSETS, table_asset
from routerloop.contract import STREAMS

DOCS = """
### router_backfill

Backfills the whole UTC hours `[start, end)`: lands them, rebuilds the marts downstream of the chosen
streams with that interval, gates, and offers the gated days to the export. Trigger it by hand with its
parameters (it has no schedule); each task calls `routerloop.backfill`, as `routerloop backfill` does.

* **Parameters:** `start`, `end` (ISO 8601 with a timezone; widened to whole hours), `streams` (default:
  all), `full_refresh` (rebuild the selected models from scratch), `dry_run` (**on by default**).
* **Dry run:** `plan` logs what would land (files per hour and stream, and which the ledger already
  holds) and what would be built (the dbt selection and interval), then skips every other task:
  nothing changes. Untick `dry_run` to carry the plan out.
* **Tasks:** `plan` -> `land_range` (`routerloop.landing.land`; re-landing a file is a no-op) ->
  `rebuild_marts` (`routerloop.build.build(start, end, select=@source:*.<stream>)`) -> `raw_gate` ->
  `marts_gate` (each day of the range not older than the router's current weights) -> `publish_weights`.
  Gates never retry. A backfill never moves the router back: the export records an older day without
  making it current (`routerloop.export`).
* **One at a time:** `max_active_runs=1`; its dbt build waits for any other one (`routerloop.build`'s
  advisory lock `DBT_BUILD`).
* Equivalent command: `routerloop backfill --start ... --end ... [--streams ...] [--full-refresh] [--dry-run]`.
"""

TIME_FORMAT = "ISO 8601 with a timezone, e.g. 2026-11-01T00:00:00+00:00"


def _plan(params):
    from routerloop.backfill import plan_backfill
    from routerloop.cli import parse_time

    return plan_backfill(parse_time(params["start"]), parse_time(params["end"]), streams=params["streams"],
                         full_refresh=params["full_refresh"])


@task.short_circuit
def plan(params=None) -> bool:
    """Log the plan; on a dry run, skip everything downstream."""
    described = _plan(params).describe()
    print(("DRY RUN, nothing changes:\n" if params["dry_run"] else "") + described)
    return not params["dry_run"]


@task
def land_range(params=None) -> dict:
    from routerloop.backfill import land_range as land

    return land(_plan(params))


@task
def rebuild_marts(params=None) -> dict:
    from routerloop.backfill import rebuild

    return rebuild(_plan(params))


@task
def raw_gate(params=None) -> list[dict]:
    from routerloop.backfill import gate_range

    return gate_range(_plan(params))


@task
def marts_gate(params=None) -> dict[str, list[dict]]:
    from routerloop.backfill import gate_days

    return gate_days(_plan(params))


@task
def publish_weights(gated: dict[str, list[dict]]) -> list[dict]:
    from routerloop.backfill import publish_gated

    published = publish_gated(gated)
    for outcome in published:
        print(f"{outcome['day']}: {outcome['action']} {outcome['weights_version']}; "
              f"the router reads {outcome['current_version']}")
    return published


@dag(
    dag_id="router_backfill",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    doc_md=DOCS,
    tags=tags(Tag.MANUAL, Tag.BACKFILL, Tag.LANDING, Tag.DBT, Tag.QUALITY_GATES, Tag.EXPORT),
    params={
        "start": Param(START_DATE.isoformat(), type="string", description=f"first hour; {TIME_FORMAT}"),
        "end": Param((START_DATE.replace(hour=1)).isoformat(), type="string",
                     description=f"end of the range, exclusive; {TIME_FORMAT}"),
        "streams": Param(list(STREAMS), type="array", items={"type": "string", "enum": list(STREAMS)},
                         description="streams to land and rebuild downstream of"),
        "full_refresh": Param(False, type="boolean", description="rebuild the selected models from scratch"),
        "dry_run": Param(True, type="boolean", description="only log what would be landed and built"),
    },
)
def router_backfill():
    raw_assets = [Asset(**RAW_ASSETS[stream].as_kwargs()) for stream in STREAMS]
    weights = Asset(**table_asset("router", "routing_weights").as_kwargs())
    gated = marts_gate.override(**CHECK_TASK_ARGS)()
    (
        plan()
        >> land_range.override(outlets=raw_assets, **pool_args("land_range"))()
        >> rebuild_marts.override(**pool_args("rebuild_marts"))()
        >> raw_gate.override(**CHECK_TASK_ARGS)()
        >> gated
    )
    publish_weights.override(outlets=[weights])(gated)


router_backfill()
