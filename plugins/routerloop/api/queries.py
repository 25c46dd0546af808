"""The API's reads: a connection pool, transactions under the caller's PostgreSQL role, and one
parameterised query per endpoint (the figures themselves are computed by dbt; these only select them).

Every read runs in a read-only transaction after `SET LOCAL ROLE <prefix>_<kind>` (auth.DATABASE_ROLE),
so the database, not this code, decides what a token can see: an analyst's request cannot read raw
or router, a router's cannot read marts. The API's own login (the URL's user) only looks up tokens and
appends to audit.api_requests; it must be a member of the three roles (superusers are).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import UTC, date, datetime

from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from routerloop import contract
from routerloop.config import settings
from routerloop.warehouse.roles import role_names


class Database:
    """A lazily opened connection pool to the warehouse (opened on first use: an app mounted in Airflow's
    API server gets no lifespan events)."""

    def __init__(self, url: str | None = None):
        self._url = url
        self._pool = None
        self._lock = threading.Lock()

    @property
    def pool(self):
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    from psycopg_pool import ConnectionPool

                    from routerloop import db

                    s = settings()
                    pool = ConnectionPool(self._url or db.database_url(), min_size=s.api_pool_min_size,
                                          max_size=s.api_pool_max_size, timeout=s.api_pool_timeout_seconds,
                                          kwargs={"autocommit": True}, open=False, name="routerloop-api")
                    pool.open(wait=False)
                    self._pool = pool
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextmanager
    def own(self):
        """A connection as the API's login (tokens, the audit trail), autocommit."""
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def reading_as(self, kind: str):
        """A read-only transaction as the PostgreSQL role of `kind` (router, analyst, pipeline); rows as dicts."""
        role = role_names()[kind]
        with self.pool.connection() as conn, conn.transaction():
            # one round trip: SET TRANSACTION must come first in the transaction
            conn.execute(sql.SQL("set transaction read only; set local role {}").format(sql.Identifier(role)))
            conn.row_factory = dict_row
            try:
                yield conn
            finally:
                conn.row_factory = tuple_row  # back to tuples for the next user of the pooled connection


def _page(rows: list[dict], limit: int, offset: int) -> tuple[list[dict], int | None]:
    """The first `limit` of `limit + 1` fetched rows, and the next page's offset if there is one."""
    return rows[:limit], (offset + limit if len(rows) > limit else None)


# --------------------------------------------------------------------------- weights (router schema)

_VERSION = (
    "select v.weights_version, v.as_of_date, v.generated_at, v.row_count, v.sha256,"
    " (select max(l.published_at) from router.publish_log as l"
    "  where l.weights_version = v.weights_version and l.action in ('publish', 'rollback')) as published_at"
    " from router.weight_versions as v where v.weights_version = %s"
)


def current_version(conn) -> str | None:
    row = conn.execute("select weights_version from router.routing_weights limit 1").fetchone()
    return row["weights_version"] if row else None


def weights(conn, version: str, current: bool, strategy: str | None, team_id: str | None,
            limit: int, offset: int) -> dict | None:
    """A version's manifest and one page of its rows (the current table or the history); None if unknown."""
    manifest = conn.execute(_VERSION, (version,)).fetchone()
    if manifest is None:
        return None
    table = "router.routing_weights" if current else "router.routing_weights_history"
    rows = conn.execute(
        f"select strategy, team_id, tier, weight, previous_weight from {table}"
        " where weights_version = %(version)s"
        " and (%(strategy)s::text is null or strategy = %(strategy)s)"
        " and (%(team_id)s::text is null or team_id = %(team_id)s)"
        " order by strategy, team_id, tier limit %(limit)s offset %(offset)s",
        {"version": version, "strategy": strategy, "team_id": team_id, "limit": limit + 1, "offset": offset},
    ).fetchall()
    page, next_offset = _page(rows, limit, offset)
    return {**manifest, "current": current, "weights": page, "next_offset": next_offset}


# --------------------------------------------------------------------------- marts (analyst)


def weight_changes(conn, since: date | None, team_id: str | None, strategy: str | None,
                   limit: int, offset: int) -> dict:
    """Logged weight changes (marts.weight_adjustment_log) from `since` on, each with its rationale."""
    rows = conn.execute(
        "select run_id, logged_at, as_of_date, strategy, team_id, tier, previous_weight, new_weight,"
        " relative_change, rules_fired, rationale from marts.weight_adjustment_log"
        " where (%(since)s::date is null or as_of_date >= %(since)s)"
        " and (%(team_id)s::text is null or team_id = %(team_id)s)"
        " and (%(strategy)s::text is null or strategy = %(strategy)s)"
        " order by as_of_date, strategy, team_id, tier, logged_at limit %(limit)s offset %(offset)s",
        {"since": since, "team_id": team_id, "strategy": strategy, "limit": limit + 1, "offset": offset},
    ).fetchall()
    page, next_offset = _page(rows, limit, offset)
    return {"changes": page, "next_offset": next_offset}


def experiments(conn, limit: int, offset: int) -> dict:
    rows = conn.execute(
        "select experiment_id, min(variant_kind) as variant_kind,"
        " min(as_of_date) as first_as_of_date, max(as_of_date) as last_as_of_date,"
        " array_agg(distinct variant order by variant) as variants,"
        " min(variant) filter (where is_control) as control_variant,"
        " min(metric) filter (where metric_role = 'primary') as primary_metric"
        " from marts.ab_results group by experiment_id order by experiment_id limit %s offset %s",
        (limit + 1, offset),
    ).fetchall()
    page, next_offset = _page(rows, limit, offset)
    return {"experiments": page, "next_offset": next_offset}


RESULT_COLUMNS = (
    "metric", "variant", "variant_kind", "is_control", "metric_role", "metric_kind", "metric_direction", "n",
    "mean", "sd", "lift_abs", "lift_abs_ci_low", "lift_abs_ci_high", "lift_rel", "lift_rel_ci_low",
    "lift_rel_ci_high", "p_value", "p_value_holm", "srm_p_value", "sample_status", "verdict", "verdict_reason",
)


def experiment_results(conn, experiment_id: str, as_of_date: date | None, limit: int, offset: int) -> dict | None:
    """One page of an experiment's results on `as_of_date` (default its newest); None if unknown."""
    newest = conn.execute(
        "select max(as_of_date) as newest from marts.ab_results where experiment_id = %s", (experiment_id,)
    ).fetchone()["newest"]
    if newest is None:
        return None
    day = as_of_date or newest
    rows = conn.execute(
        f"select {', '.join(RESULT_COLUMNS)} from marts.ab_results where experiment_id = %s and as_of_date = %s"
        " order by metric_role, metric, is_control desc, variant limit %s offset %s",
        (experiment_id, day, limit + 1, offset),
    ).fetchall()
    page, next_offset = _page(rows, limit, offset)
    return {"experiment_id": experiment_id, "as_of_date": day, "newest_as_of_date": newest, "results": page,
            "next_offset": next_offset}


TEAM_COLUMNS = (
    "team_id", "in_roster", "tickets", "attainment_rate", "breach_rate", "mttr_p50_minutes", "mttr_p90_minutes",
    "csat_responses", "csat_suppressed", "csat_mean", "csat_satisfied_pct",
)
QUALITY_COLUMNS = ("label_kind", "support", "accuracy", "cohen_kappa", "quadratic_weighted_kappa",
                   "under_triage_rate", "over_triage_rate", "mean_abs_tier_distance")


def summary(conn, window_days: int, as_of_date: date | None) -> dict:
    """Per team SLA and CSAT (marts.team_sla_csat_rolling) and the router's classification quality
    (marts.classification_metrics, overall rows) over the window ending `as_of_date` (default: newest)."""
    day = as_of_date or conn.execute(
        "select max(as_of_date) as newest from marts.team_sla_csat_rolling").fetchone()["newest"]
    teams = conn.execute(
        f"select {', '.join(TEAM_COLUMNS)} from marts.team_sla_csat_rolling"
        " where as_of_date = %s and window_days = %s order by team_id",
        (day, window_days),
    ).fetchall()
    quality = conn.execute(
        f"select {', '.join(QUALITY_COLUMNS)} from marts.classification_metrics"
        " where as_of_date = %s and window_days = %s and class = 'overall' order by label_kind",
        (day, window_days),
    ).fetchall()
    return {"as_of_date": day, "window_days": window_days, "teams": teams, "routing_quality": quality}


# --------------------------------------------------------------------------- /metrics (admin)


def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null as present", (relation,)).fetchone()["present"]


def metric_values(conn) -> dict:
    """Everything /metrics shows, read as the pipeline role (raw, audit, router, marts)."""
    from routerloop.freshness import _newest_event

    now = datetime.now(UTC)
    present = {name for name in contract.STREAMS if _exists(conn, f"raw.{name}")}
    conn.row_factory = tuple_row  # routerloop.freshness reads tuples
    newest = {name: (_newest_event(conn, stream, now) if name in present else None)
              for name, stream in contract.STREAMS.items()}
    conn.row_factory = dict_row
    quarantined = dict.fromkeys(contract.STREAMS, 0)
    if _exists(conn, "raw.quarantine"):
        for row in conn.execute("select stream, count(*) as n from raw.quarantine group by stream"):
            quarantined[row["stream"]] = row["n"]
    gates = conn.execute(
        "select distinct on (suite) suite, success, validated_at from audit.gate_results"
        " order by suite, validated_at desc, gate_result_id desc"
    ).fetchall()
    version = current_version(conn)
    exported = conn.execute(_VERSION, (version,)).fetchone() if version else None
    changes = None
    if _exists(conn, "marts.weight_adjustment_log"):
        changes = conn.execute(
            "select count(*) as n, max(logged_at) as logged_at from marts.weight_adjustment_log"
            " where run_id = (select run_id from marts.weight_adjustment_log order by logged_at desc limit 1)"
        ).fetchone()
    marts = {}
    for row in conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'marts' and c.relkind in ('r', 'p') and not c.relispartition order by c.relname"
    ).fetchall():
        marts[row["relname"]] = conn.execute(
            sql.SQL("select count(*) as n from marts.{}").format(sql.Identifier(row["relname"]))).fetchone()["n"]
    return {"newest_event": newest, "quarantined": quarantined, "gates": gates, "exported": exported,
            "changes": changes, "mart_rows": marts}


# --------------------------------------------------------------------------- the audit trail


def record_request(conn, principal, method: str, path: str, query: str, status: int) -> None:
    """Append one row to audit.api_requests (as the API's login; the reading roles cannot write it)."""
    conn.execute(
        "insert into audit.api_requests (principal, role, method, path, query, status) values (%s, %s, %s, %s, %s, %s)",
        (principal.token_id if principal else None, principal.role if principal else None, method, path,
         query or None, status),
    )


def healthy(conn) -> bool:
    return conn.execute("select 1").fetchone()[0] == 1
