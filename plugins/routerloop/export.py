"""Publish gated routing weights to the router: a table it reads and a versioned file export.

Atomicity:
- the database side is one transaction: `router.routing_weights` (the current version) is replaced with
  DELETE + INSERT (not TRUNCATE, which would block readers), `router.routing_weights_history` and
  `router.weight_versions` are appended, `router.publish_log` records what happened. Under MVCC a reader
  sees the whole old version or the whole new one;
- files are written to a temporary name, fsynced and renamed over the target: `<version>.json` and
  `latest.json` in settings().export_dir / "routing_weights". Each holds the manifest and the rows.

A version is the as-of date plus a hash of its rows, so exporting the same weights twice is a no-op.
The export refuses a day whose newest weights gate result did not pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from routerloop import db
from routerloop.config import settings

ROUTER_ROLE = "routerloop_router"
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
exception when duplicate_object then null;
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


def _mart_rows(conn, as_of_date: date) -> list[dict]:
    cursor = conn.execute(
        """
        select strategy, team_id, tier, weight, previous_weight
        from marts.routing_weights where as_of_date = %s
        order by strategy, team_id, tier
        """,
        (as_of_date,),
    )
    return [
        {"strategy": s, "team_id": team, "tier": tier, "weight": float(w),
         "previous_weight": None if p is None else float(p)}
        for s, team, tier, w, p in cursor
    ]


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


def publish(as_of_date: date | None = None, dbt_invocation_id: str | None = None, url: str | None = None) -> dict:
    """Publish the gated weights of `as_of_date` (default: the newest day) and return the manifest."""
    from routerloop.build import _invocation_id
    from routerloop.gates import WEIGHTS_SUITE, latest_passing_gate

    with db.connect(url or db.database_url()) as conn:
        ensure_router_schema(conn)
        as_of_date = as_of_date or _latest_weights_date(conn)
        batch_id = f"routing_weights[{as_of_date.isoformat()}]"
        gate_result_id = latest_passing_gate(conn, WEIGHTS_SUITE, batch_id)
        if gate_result_id is None:
            raise ExportRefused(
                f"no passing {WEIGHTS_SUITE} gate result for {batch_id}: run `routerloop gates marts` first;"
                " the router keeps its current version"
            )
        rows = _mart_rows(conn, as_of_date)
        if not rows:
            raise ExportRefused(f"marts.routing_weights has no rows for {as_of_date}")
        previous = {
            (s, t, tier): w
            for s, t, tier, w in conn.execute("select strategy, team_id, tier, weight from router.routing_weights")
        }
        for r in rows:  # previous_weight = what the router has now; the mart's previous day if nothing yet
            r["previous_weight"] = previous.get((r["strategy"], r["team_id"], r["tier"]), r["previous_weight"])
        digest = hashlib.sha256(_canonical_rows(rows)).hexdigest()
        version = f"{as_of_date:%Y%m%d}-{digest[:12]}"
        existing = conn.execute(
            "select generated_at, dbt_invocation_id, gate_result_id from router.weight_versions"
            " where weights_version = %s",
            (version,),
        ).fetchone()
        generated_at = existing[0] if existing else datetime.now(UTC)
        manifest = {
            "weights_version": version,
            "as_of_date": as_of_date.isoformat(),
            "generated_at": generated_at.isoformat(),
            "row_count": len(rows),
            "sha256": digest,
            "dbt_invocation_id": existing[1] if existing else (dbt_invocation_id or _invocation_id()),
            "gate_result_id": existing[2] if existing else gate_result_id,
        }
        document = _document(manifest, rows)
        _write_atomically(export_dir() / f"{version}.json", document)
        replaced = _current_version(conn)
        if replaced == version:
            conn.rollback()
            manifest["action"] = "unchanged"
        else:
            if not existing:
                conn.execute(
                    "insert into router.weight_versions values (%s, %s, %s, %s, %s, %s, %s)",
                    (version, as_of_date, generated_at, len(rows), digest, manifest["dbt_invocation_id"],
                     gate_result_id),
                )
                with conn.cursor().copy(
                    "copy router.routing_weights_history (weights_version, strategy, team_id, tier, weight,"
                    " previous_weight, generated_at) from stdin"
                ) as copy:
                    for r in rows:
                        copy.write_row((version, r["strategy"], r["team_id"], r["tier"], r["weight"],
                                        r["previous_weight"], generated_at))
            _replace_current(conn, version, rows, generated_at)
            conn.execute(
                "insert into router.publish_log (weights_version, action, replaced_version) values (%s, %s, %s)",
                (version, "publish", replaced),
            )
            conn.commit()
            manifest["action"] = "published"
        manifest["replaced_version"] = replaced
    _write_atomically(export_dir() / "latest.json", document)
    manifest["path"] = str(export_dir() / f"{version}.json")
    return manifest


def rollback(version: str, url: str | None = None) -> dict:
    """Re-publish an earlier version as the current one; the rollback is logged in router.publish_log."""
    with db.connect(url or db.database_url()) as conn:
        ensure_router_schema(conn)
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
        if hashlib.sha256(_canonical_rows(rows)).hexdigest() != digest or len(rows) != row_count:
            raise ExportRefused(f"history of {version} does not match its recorded sha256; not re-published")
        replaced = _current_version(conn)
        _replace_current(conn, version, rows, generated_at)
        conn.execute(
            "insert into router.publish_log (weights_version, action, replaced_version) values (%s, %s, %s)",
            (version, "rollback", replaced),
        )
        conn.commit()
    manifest = {
        "weights_version": version, "as_of_date": as_of_date.isoformat(), "generated_at": generated_at.isoformat(),
        "row_count": row_count, "sha256": digest, "dbt_invocation_id": invocation_id,
        "gate_result_id": gate_result_id,
    }
    _write_atomically(export_dir() / "latest.json", _document(manifest, rows))
    return {**manifest, "action": "rollback", "replaced_version": replaced,
            "path": str(export_dir() / f"{version}.json")}
