"""DAG `router_erasure`: the right to erasure of one customer's CSAT ratings, triggered by hand."""

from __future__ import annotations

from _common import START_DATE, Tag, default_args, tags
from airflow.sdk import Asset, Param, dag, task

from routerloop.assets import RAW_ASSETS
from routerloop.contract import MAX_ID_LENGTH

DOCS = """
### router_erasure

Erases one customer's CSAT ratings (the right to erasure). Trigger it by hand with the customer's id;
it has no schedule. Each task calls `routerloop.erasure`, as `routerloop erase --customer-id ID` does.

* **Parameters:** `customer_id` (the `customerId` of the CSAT telemetry), `reason` (optional, logged).
* **Tasks:** `erase_ratings` deletes the customer's ratings from `raw.csat_ratings` and from every
  relation derived per rating (staging, the A/B observations), empties the customer's quarantined
  lines, and appends the erasure to the append-only `audit.erasures` (the customer's HMAC pseudonym,
  never the id; rows removed per relation; who: the user who triggered the run): one transaction, under
  the advisory locks `ERASURE` and `DBT_BUILD`. It logs the counts. Then `rebuild_marts` rebuilds every
  model downstream of `stg_support__csat_ratings` with a full refresh (`routerloop.build`).
* **Retries:** both tasks are idempotent: erasing again removes nothing (and logs a row of zeros), the
  rebuild is a full refresh of the same models.
* **Privacy of the request:** Airflow keeps the run's parameters, the raw customer id among them, in
  its metadata database. Delete the run once it has succeeded (the run's page in the UI, or the REST
  API's `DELETE /api/v2/dags/router_erasure/dagRuns/{run_id}`).
* Equivalent command: `routerloop erase --customer-id ID [--reason TEXT]`.
"""


@task
def erase_ratings(params=None, dag_run=None) -> dict:
    from routerloop.erasure import erase_in_warehouse

    who = getattr(dag_run, "triggering_user_name", None) or "unknown"
    erasure = erase_in_warehouse(params["customer_id"], requested_by=f"airflow:{who}",
                                 requested_via=f"airflow {dag_run.dag_id} {dag_run.run_id}", reason=params["reason"])
    print(f"erasure {erasure.erasure_id} of {erasure.customer_hash}: {erasure.total} rows removed")
    for relation, rows in erasure.rows_removed.items():
        print(f"  {relation}: {rows}")
    return erasure.to_dict()


@task
def rebuild_marts(erasure: dict) -> dict:
    from routerloop.erasure import rebuild_marts as rebuild

    result = rebuild()
    if not result["ok"]:
        raise RuntimeError(f"the rebuild after erasure {erasure['erasure_id']} failed: " + "; ".join(result["failed"]))
    print(f"rebuilt {result['models_built']} models (dbt build --full-refresh --select {' '.join(result['select'])}"
          f" --exclude {' '.join(result['exclude'])}), {result['tests_passed']} tests passed")
    return result


@dag(
    dag_id="router_erasure",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    doc_md=DOCS,
    tags=tags(Tag.MANUAL, Tag.PRIVACY, Tag.DBT),
    params={
        "customer_id": Param(type="string", minLength=1, maxLength=MAX_ID_LENGTH, pattern=r"\S",
                             description="the customerId whose CSAT ratings are erased"),
        "reason": Param(None, type=["null", "string"], description="why, e.g. the request's reference (logged)"),
    },
)
def router_erasure():
    erased = erase_ratings.override(outlets=[Asset(**RAW_ASSETS["csat_ratings"].as_kwargs())])()
    rebuild_marts(erased)


router_erasure()
