"""Right to erasure: remove one customer's CSAT ratings from the warehouse, rebuild what they fed, log it.

`erase()` removes, in ONE transaction (nothing is ever half-erased):
- from raw: the customer's rows of raw.csat_ratings (matched by the raw customer id, and by the rating
  ids staging holds under the customer's pseudonym, for rows whose id retention already nulled), and
  the bytes of quarantined csat_ratings lines that carry the id (emptied, as retention does; the
  quarantine row stays as the record that a line was refused, its message redacted);
- from everything derived per rating: every table outside raw and audit with a `customer_hash` or
  `rating_id` column (found in the catalog, so a new model is covered without a change here: staging
  today), and the per-rating models that name ratings otherwise (PER_RATING_UNITS);
- and appends the erasure to audit.erasures (pseudonym, rows removed per relation, who, how, why).

It holds the ERASURE lock (two erasures never interleave) and the DBT_BUILD lock (waits for a running
dbt build: a build that read raw before the deletion could otherwise stage the ratings again), both
transaction locks released at commit.

Kept on purpose: raw.csat_ratings_keys, the landing's dedupe keys (rating id, file, line; nothing
about the customer). While a rating's key is there, a re-delivery of that rating is a duplicate and is
never landed again.

`rebuild_marts()` then rebuilds every model downstream of stg_support__csat_ratings with a full refresh
(routerloop.build.build, under the DBT_BUILD lock): the incremental models recompute only what was
staged since their last run, and a deletion stages nothing, so only a full refresh of them drops the
erased ratings from their aggregates. Staging itself is not rebuilt (it was erased in place; a full
refresh would re-read all of raw). `erase_customer()` does both (`routerloop erase`); the DAG
`router_erasure` runs `erase_in_warehouse()` and `rebuild_marts()` as two tasks.

Running it again is harmless: it removes nothing, rebuilds the same marts, and logs a row of zeros.
"""

from __future__ import annotations

import getpass
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from psycopg import sql

from routerloop import contract, db
from routerloop.privacy import pseudonymize
from routerloop.warehouse import locks

log = logging.getLogger(__name__)

STREAM = "csat_ratings"
RAW_TABLE = f"raw.{STREAM}"
QUARANTINE = "raw.quarantine"
AUDIT_TABLE = "audit.erasures"
# Per-rating relations whose rating ids sit in a column of another name (relation -> column).
PER_RATING_UNITS = {"intermediate.int_experiment_observations_unioned": "unit_id"}
# Columns that mark a relation as holding per-rating rows or the pseudonym.
PER_RATING_COLUMNS = ("customer_hash", "rating_id")
# Schemas never erased from: raw is handled explicitly above; audit is the append-only trail.
NOT_DERIVED = ("raw", "audit")
# The rebuild: every model downstream of the staged ratings, from scratch; staging itself was erased.
REBUILD_SELECT = ("stg_support__csat_ratings+",)
REBUILD_EXCLUDE = ("stg_support__csat_ratings",)


class ErasureError(ValueError):
    """The erasure request itself is unusable (e.g. an empty customer id)."""


@dataclass(frozen=True)
class Erasure:
    erasure_id: int
    customer_hash: str
    rows_removed: dict[str, int]  # relation -> rows removed (raw.quarantine: lines emptied)
    requested_by: str
    requested_via: str
    reason: str | None
    erased_at: datetime

    @property
    def total(self) -> int:
        return sum(self.rows_removed.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "erased_at": self.erased_at.isoformat(), "total_rows_removed": self.total}


def current_user() -> str:
    """Who runs this process (the OS user), for the log when no one is named."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def check_customer_id(customer_id: str) -> str:
    """The id as given (surrounding blanks removed); an unusable one is an ErasureError."""
    value = (customer_id or "").strip()
    if not value:
        raise ErasureError("the customer id is empty: give the customerId as it appears in the CSAT telemetry")
    if len(value) > contract.MAX_ID_LENGTH:
        raise ErasureError(f"the customer id has {len(value)} characters, more than any id can have "
                           f"({contract.MAX_ID_LENGTH})")
    return value


def erase(conn, customer_id: str, requested_by: str | None = None, requested_via: str = "cli",
          reason: str | None = None) -> Erasure:
    """Delete the customer's ratings from raw and every per-rating relation, and log it; one transaction.

    `conn` may be in autocommit mode or not; the transaction is committed on return. The raw id is
    only ever compared, never stored or logged: the log holds its pseudonym.
    """
    customer_id = check_customer_id(customer_id)
    customer_hash = pseudonymize(customer_id)
    requested_by = (requested_by or "").strip() or current_user()
    with conn.transaction():
        _wait_for(conn, locks.ERASURE, "another erasure")
        _wait_for(conn, locks.DBT_BUILD, "the running dbt build")
        rating_ids = _rating_ids(conn, customer_id, customer_hash)
        removed = {RAW_TABLE: _delete_raw(conn, customer_id, rating_ids)}
        removed.update(_delete_derived(conn, customer_hash, rating_ids))
        removed[QUARANTINE] = _empty_quarantined_lines(conn, customer_id)
        erasure_id, erased_at = conn.execute(
            f"insert into {AUDIT_TABLE} (customer_hash, rows_removed, requested_by, requested_via, reason)"
            " values (%s, %s, %s, %s, %s) returning erasure_id, erased_at",
            (customer_hash, json.dumps(removed), requested_by, requested_via, reason),
        ).fetchone()
    if not conn.autocommit:
        conn.commit()
    return Erasure(erasure_id, customer_hash, removed, requested_by, requested_via, reason, erased_at)


def _wait_for(conn, key: int, holder: str) -> None:
    if not locks.try_xact_lock(conn, key):
        log.warning("erasure: waiting for %s to finish", holder)
        locks.xact_lock(conn, key)


def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _rating_ids(conn, customer_id: str, customer_hash: str) -> list[str]:
    """The customer's rating ids: raw rows with the id, and staged rows with the pseudonym (this
    catches raw rows whose id retention has nulled)."""
    ids = set()
    if _exists(conn, RAW_TABLE):
        ids |= {r for (r,) in conn.execute(f"select rating_id from {RAW_TABLE} where customer_id = %s",
                                           (customer_id,))}
    for relation in _relations_with(conn, "customer_hash"):
        if "rating_id" in _columns(conn, relation):
            ids |= {r for (r,) in conn.execute(
                sql.SQL("select rating_id from {} where customer_hash = %s").format(_identifier(relation)),
                (customer_hash,))}
    return sorted(ids)


def _delete_raw(conn, customer_id: str, rating_ids: list[str]) -> int:
    if not _exists(conn, RAW_TABLE):
        return 0
    return conn.execute(f"delete from {RAW_TABLE} where customer_id = %s or rating_id = any(%s)",
                        (customer_id, rating_ids)).rowcount


def derived_relations(conn) -> dict[str, list[str]]:
    """Relation -> the columns that identify the customer's rows in it: every table outside raw and
    audit holding `customer_hash` or `rating_id`, and PER_RATING_UNITS (those that exist)."""
    found: dict[str, list[str]] = {}
    for column in PER_RATING_COLUMNS:
        for relation in _relations_with(conn, column):
            found.setdefault(relation, []).append(column)
    for relation, column in PER_RATING_UNITS.items():
        if _exists(conn, relation):
            found.setdefault(relation, []).append(column)
    return dict(sorted(found.items()))


def _relations_with(conn, column: str) -> list[str]:
    return [f"{schema}.{name}" for schema, name in conn.execute(
        "select n.nspname, c.relname from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where a.attname = %s and a.attnum > 0 and not a.attisdropped"
        " and c.relkind in ('r', 'p') and not c.relispartition"
        " and n.nspname <> all(%s) and n.nspname not in ('pg_catalog', 'information_schema')"
        " and n.nspname not like 'pg\\_%%'"
        " order by 1, 2",
        (column, list(NOT_DERIVED)),
    )]


def _columns(conn, relation: str) -> set[str]:
    return {c for (c,) in conn.execute(
        "select attname::text from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped",
        (relation,))}


def _identifier(relation: str) -> sql.Identifier:
    return sql.Identifier(*relation.split(".", 1))


def _delete_derived(conn, customer_hash: str, rating_ids: list[str]) -> dict[str, int]:
    removed = {}
    for relation, columns in derived_relations(conn).items():
        matches = [sql.SQL("{} = %(hash)s").format(sql.Identifier(c)) if c == "customer_hash"
                   else sql.SQL("{} = any(%(ids)s)").format(sql.Identifier(c)) for c in columns]
        statement = sql.SQL("delete from {} where {}").format(_identifier(relation), sql.SQL(" or ").join(matches))
        removed[relation] = conn.execute(statement, {"hash": customer_hash, "ids": rating_ids}).rowcount
    return removed


def _empty_quarantined_lines(conn, customer_id: str) -> int:
    """Empty the stored bytes of quarantined csat_ratings lines that carry the id as a JSON string
    (quotes included, so `cus_1` does not match `cus_12`), and redact the id from their message."""
    needle = json.dumps(customer_id).encode()
    return conn.execute(
        f"update {QUARANTINE} set raw_bytes = ''::bytea, message = replace(message, %s, '[erased]')"
        " where stream = %s and length(raw_bytes) > 0 and position(%s::bytea in raw_bytes) > 0",
        (customer_id, STREAM, needle),
    ).rowcount


def rebuild_marts(url: str | None = None, quiet: bool = False) -> dict:
    """Full refresh of every model downstream of the staged ratings (not staging itself), with its data
    tests; the same build() as every other dbt run, so it waits for a running build."""
    from routerloop.build import build

    result = build(full_refresh=True, select=list(REBUILD_SELECT), exclude=list(REBUILD_EXCLUDE),
                   unit_tests=False, url=url, quiet=quiet)
    return {
        "ok": result["ok"],
        "select": list(REBUILD_SELECT),
        "exclude": list(REBUILD_EXCLUDE),
        "full_refresh": True,
        "invocation_id": result["invocation_id"],
        "models_built": result["models_built"],
        "tests_passed": result["tests_passed"],
        "failed": [f"{n['node']}: {n['message']}" for n in result["failed"]],
    }


def erase_in_warehouse(customer_id: str, requested_by: str | None = None, requested_via: str = "cli",
                       reason: str | None = None, url: str | None = None) -> Erasure:
    """erase() on a connection of its own to the (migrated) warehouse; logs the counts."""
    from routerloop.warehouse.migrations import migrate

    with db.connect(url or db.database_url(), autocommit=True, application_name="routerloop erasure") as conn:
        migrate(conn)
        erasure = erase(conn, customer_id, requested_by=requested_by, requested_via=requested_via, reason=reason)
    log.info("erasure %s: %s rows removed (%s)", erasure.erasure_id, erasure.total, erasure.rows_removed)
    return erasure


def erase_customer(customer_id: str, requested_by: str | None = None, reason: str | None = None,
                   url: str | None = None, quiet: bool = False) -> dict:
    """`routerloop erase`: erase_in_warehouse() then rebuild_marts(); the erasure and the rebuild's outcome."""
    erasure = erase_in_warehouse(customer_id, requested_by=requested_by, reason=reason, url=url)
    return {"erasure": erasure.to_dict(), "rebuild": rebuild_marts(url=url, quiet=quiet)}
