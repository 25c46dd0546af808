"""Publish gated routing weights to the router: a table it reads and a versioned file export.

Atomicity:
- the database side is one transaction: `router.routing_weights` (the current version) is replaced with
  DELETE + INSERT (not TRUNCATE, which would block readers), `router.routing_weights_history` and
  `router.weight_versions` are appended, `router.publish_log` records what happened. Under MVCC a reader
  sees the whole old version or the whole new one;
- files are written to a temporary name, fsynced and renamed over the target: `<version>.json` and
  `latest.json` in settings().export_dir / "routing_weights". Each holds the manifest and the rows.

A version is the as-of date plus the sha256 of its rows (canonical JSON of the `weights` list, as
`mart_digest` computes it), so exporting the same weights twice is a no-op. The export refuses a day
whose newest weights gate result did not pass, or whose weights changed after they were gated (the gate
records the same digest). Publishers hold a session advisory lock from the start of the transaction
until latest.json is written, so the table and latest.json always name the same version.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path

from routerloop import db
from routerloop.config import settings

ROUTER_ROLE = "routerloop_router"
# Exported files are readable by everyone (they hold no secret), writable by routerloop only.
EXPORT_FILE_MODE = 0o644
# Serialises publishers; readers never wait on it.
PUBLISH_LOCK_KEY = 7_301_001

ROUTER_DDL = """
create schema if not exists router;
create table if not exists router.weight_versions (
    weights_version text primary key,
    as_of_date date not null,
    generated_at timestamptz not null,
    row_count integer not null,
    sha256 text not null,
    dbt_invocation_id text,
    gate_result_id bigint not null
);
create table if not exists router.routing_weights (
    weights_version text not null,
    strategy text not null,
    team_id text not null,
    tier text not null,
    weight double precision not null,
    previous_weight double precision,
    generated_at timestamptz not null,
    primary key (strategy, team_id, tier)
);
create table if not exists router.routing_weights_history (
    weights_version text not null references router.weight_versions,
    strategy text not null,
    team_id text not null,
    tier text not null,
    weight double precision not null,
    previous_weight double precision,
    generated_at timestamptz not null,
    primary key (weights_version, strategy, team_id, tier)
);
create table if not exists router.publish_log (
    publish_id bigserial primary key,
    weights_version text not null references router.weight_versions,
    action text not null check (action in ('publish', 'rollback')),
    replaced_version text,
    published_at timestamptz not null default now()
);
"""

ROLE_DDL = f"""
do $$
begin
    create role {ROUTER_ROLE} nologin;
-- roles are cluster-wide: another database may create it at the same moment
exception when duplicate_object or unique_violation then null;
end $$;
grant usage on schema router to {ROUTER_ROLE};
grant select on all tables in schema router to {ROUTER_ROLE};
alter default privileges in schema router grant select on tables to {ROUTER_ROLE};
"""


class ExportRefused(RuntimeError):
    """The weights may not be published (no passing gate, unknown version, no weights)."""


def ensure_router_schema(conn) -> None:
    """Create the router schema and the read-only router role (idempotent; serialised by a lock)."""
    conn.execute("select pg_advisory_xact_lock(%s)", (PUBLISH_LOCK_KEY,))
    conn.execute(ROUTER_DDL)
    conn.execute(ROLE_DDL)


def export_dir() -> Path:
    return settings().export_dir / "routing_weights"


def _canonical_rows(rows: list[dict]) -> bytes:
    return json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), EXPORT_FILE_MODE)  # mkstemp makes 0600; the router may be another user
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _document(manifest: dict, rows: list[dict]) -> bytes:
    return (json.dumps({"manifest": manifest, "weights": rows}, indent=2, sort_keys=True) + "\n").encode()


def _latest_weights_date(conn) -> date:
    row = conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()
    if not row or row[0] is None:
        raise ExportRefused("marts.routing_weights is empty: build the marts first")
    return row[0]


def mart_rows(conn, as_of_date: date) -> list[dict]:
    """The weights of one day as exported: previous_weight is the mart's (the weight of the day before)."""
    cursor = conn.execute(
        """
        select strategy, team_id, tier, weight, previous_weight
        from marts.routing_weights where as_of_date = %s
        order by strategy, team_id, tier
        """,
        (as_of_date,),
    )
    return [
        {"strategy": s, "team_id": team, "tier": tier, "weight": None if w is None else float(w),
         "previous_weight": None if p is None else float(p)}
        for s, team, tier, w, p in cursor
    ]


def rows_digest(rows: list[dict]) -> str:
    return hashlib.sha256(_canonical_rows(rows)).hexdigest()


def mart_digest(conn, as_of_date: date) -> str:
    """sha256 of a day's weights as they would be exported; the weights gate records it."""
    return rows_digest(mart_rows(conn, as_of_date))


def _current_version(conn) -> str | None:
    row = conn.execute("select weights_version from router.routing_weights limit 1").fetchone()
    return row[0] if row else None


def _replace_current(conn, version: str, rows: list[dict], generated_at: datetime) -> None:
    conn.execute("delete from router.routing_weights")
    with conn.cursor().copy(
        "copy router.routing_weights (weights_version, strategy, team_id, tier, weight, previous_weight,"
        " generated_at) from stdin"
    ) as copy:
        for r in rows:
            copy.write_row((version, r["strategy"], r["team_id"], r["tier"], r["weight"],
                            r["previous_weight"], generated_at))


def _log(conn, version: str, action: str, replaced: str | None) -> None:
    conn.execute(
        "insert into router.publish_log (weights_version, action, replaced_version) values (%s, %s, %s)",
        (version, action, replaced),
    )


@contextmanager
def _publishing(url: str | None):
    """A connection holding the publish lock until the files are written (then released, then closed)."""
    with db.connect(url or db.database_url()) as conn:
        conn.execute("select pg_advisory_lock(%s)", (PUBLISH_LOCK_KEY,))
        conn.commit()
        try:
            ensure_router_schema(conn)
            yield conn
        finally:
            # Rollback is a no-op after commit and ends a failed transaction so the unlock can run; on a
            # broken connection closing it releases the lock, and the original error is what matters.
            with suppress(Exception):
                conn.rollback()
                conn.execute("select pg_advisory_unlock(%s)", (PUBLISH_LOCK_KEY,))
                conn.commit()


def newest_dbt_invocation(conn, model: str = "routing_weights") -> str | None:
    """The dbt invocation that last built `model` successfully (recorded by the on-run-end hook)."""
    exists = conn.execute("select to_regclass('audit.dbt_model_runs') is not null").fetchone()[0]
    if not exists:
        return None
    row = conn.execute(
        "select invocation_id from audit.dbt_model_runs where model = %s and status = 'success'"
        " order by completed_at desc limit 1",
        (model,),
    ).fetchone()
    return row[0] if row else None


def publish(as_of_date: date | None = None, dbt_invocation_id: str | None = None, url: str | None = None) -> dict:
    """Publish the gated weights of `as_of_date` (default: the newest day) and return the manifest."""
    from routerloop.gates import WEIGHTS_SUITE, latest_gate_result, weights_batch_id

    with _publishing(url) as conn:
        as_of_date = as_of_date or _latest_weights_date(conn)
        batch_id = weights_batch_id(as_of_date)
        gate = latest_gate_result(conn, WEIGHTS_SUITE, batch_id)
        if gate is None or not gate["success"]:
            state = "no" if gate is None else f"a failed (gate_result_id {gate['id']})"
            raise ExportRefused(
                f"{state} {WEIGHTS_SUITE} gate result for {batch_id} as the newest: run `routerloop gates marts`"
                " first; the router keeps its current version"
            )
        rows = mart_rows(conn, as_of_date)
        if not rows:
            raise ExportRefused(f"marts.routing_weights has no rows for {as_of_date}")
        digest = rows_digest(rows)
        if gate["batch_sha256"] != digest:
            raise ExportRefused(
                f"the weights of {as_of_date} changed after gate result {gate['id']} passed: gate them again;"
                " the router keeps its current version"
            )
        version = f"{as_of_date:%Y%m%d}-{digest[:12]}"
        existing = conn.execute(
            "select generated_at, dbt_invocation_id, gate_result_id from router.weight_versions"
            " where weights_version = %s",
            (version,),
        ).fetchone()
        if existing:
            generated_at, invocation_id, gate_result_id = existing
        else:
            generated_at, gate_result_id = datetime.now(UTC), gate["id"]
            invocation_id = dbt_invocation_id or newest_dbt_invocation(conn) or _invocation_id_from_artifacts()
        manifest = {
            "weights_version": version,
            "as_of_date": as_of_date.isoformat(),
            "generated_at": generated_at.isoformat(),
            "row_count": len(rows),
            "sha256": digest,
            "dbt_invocation_id": invocation_id,
            "gate_result_id": gate_result_id,
        }
        document = _document(manifest, rows)
        # The version file first: once the table names a version, its file exists.
        _write_atomically(export_dir() / f"{version}.json", document)
        replaced = _current_version(conn)
        if replaced == version:
            action = "unchanged"
        else:
            if not existing:
                conn.execute(
                    "insert into router.weight_versions values (%s, %s, %s, %s, %s, %s, %s)",
                    (version, as_of_date, generated_at, len(rows), digest, invocation_id, gate_result_id),
                )
                with conn.cursor().copy(
                    "copy router.routing_weights_history (weights_version, strategy, team_id, tier, weight,"
                    " previous_weight, generated_at) from stdin"
                ) as copy:
                    for r in rows:
                        copy.write_row((version, r["strategy"], r["team_id"], r["tier"], r["weight"],
                                        r["previous_weight"], generated_at))
            _replace_current(conn, version, rows, generated_at)
            _log(conn, version, "publish", replaced)
            action = "published"
        conn.commit()
        _write_atomically(export_dir() / "latest.json", document)
    return {**manifest, "action": action, "replaced_version": replaced,
            "path": str(export_dir() / f"{version}.json")}


def _invocation_id_from_artifacts() -> str | None:
    from routerloop.build import _invocation_id

    return _invocation_id()


def rollback(version: str, url: str | None = None) -> dict:
    """Re-publish an earlier version as the current one; the rollback is logged in router.publish_log."""
    with _publishing(url) as conn:
        meta = conn.execute(
            "select as_of_date, generated_at, row_count, sha256, dbt_invocation_id, gate_result_id"
            " from router.weight_versions where weights_version = %s",
            (version,),
        ).fetchone()
        if meta is None:
            raise ExportRefused(f"unknown weights version {version!r}; see router.weight_versions")
        as_of_date, generated_at, row_count, digest, invocation_id, gate_result_id = meta
        rows = [
            {"strategy": s, "team_id": t, "tier": tier, "weight": w, "previous_weight": p}
            for s, t, tier, w, p in conn.execute(
                "select strategy, team_id, tier, weight, previous_weight from router.routing_weights_history"
                " where weights_version = %s order by strategy, team_id, tier",
                (version,),
            )
        ]
        if rows_digest(rows) != digest or len(rows) != row_count:
            raise ExportRefused(f"history of {version} does not match its recorded sha256; not re-published")
        manifest = {
            "weights_version": version, "as_of_date": as_of_date.isoformat(),
            "generated_at": generated_at.isoformat(), "row_count": row_count, "sha256": digest,
            "dbt_invocation_id": invocation_id, "gate_result_id": gate_result_id,
        }
        document = _document(manifest, rows)
        path = export_dir() / f"{version}.json"
        if not path.exists():  # e.g. a fresh export folder: the version file is rebuilt from history
            _write_atomically(path, document)
        replaced = _current_version(conn)
        _replace_current(conn, version, rows, generated_at)
        _log(conn, version, "rollback", replaced)
        conn.commit()
        _write_atomically(export_dir() / "latest.json", document)
    return {**manifest, "action": "rollback", "replaced_version": replaced, "path": str(path)}
