"""Publish gated routing weights to the router: a table it reads and a versioned file export.

Atomicity:
- the database side is one transaction: `router.routing_weights` (the current version) is replaced with
  DELETE + INSERT (not TRUNCATE, which would block readers), `router.routing_weights_history` and
  `router.weight_versions` are appended, `router.publish_log` records what happened, and the append-only
  `audit.weight_exports` / `audit.weight_changes` (each changed weight with its rationale) keep the trail. Under MVCC a reader
  sees the whole old version or the whole new one;
- files are written to a temporary name, fsynced and renamed over the target: `<version>.json` and
  `latest.json` in settings().export_dir / "routing_weights". Each holds the manifest and the rows.

A version is the as-of date plus the sha256 of its rows (canonical JSON of the `weights` list, as
`mart_digest` computes it), so exporting the same weights twice is a no-op. The export refuses a day
whose gate result did not pass, or whose weights changed after they were gated (the gate records the
same digest). The gate result is the one named by the caller (the daily DAG passes its own run's) or,
without one, the day's newest.

Nothing older replaces what the router reads: a version whose as-of date is older than the current
one's (a backfill) is recorded in history, with its `<version>.json` and a 'recorded' log row, but the
table and latest.json keep the current version. Only `rollback` moves the router back. A changed
version of the same as-of date (a rebuild of that day, gated again) does replace the current one. Publishers hold a session advisory lock (warehouse.locks.PUBLISH) from the start of the transaction
until latest.json is written, so the table and latest.json always name the same version.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from routerloop import db, gate_results
from routerloop.build import last_invocation_id
from routerloop.config import settings
from routerloop.files import write_atomically
from routerloop.warehouse import locks
from routerloop.warehouse.migrations import migrate
from routerloop.weight_rows import mart_rows, rows_digest, unweighted_teams

log = logging.getLogger(__name__)

# router.publish_log.action (the check constraint of migration "publish log records older versions")
LOG_ACTIONS = ("publish", "rollback", "recorded")
_NOT_IN_MANIFEST = ("action", "replaced_version", "path", "current_version", "teams_without_weight")


class ExportRefused(RuntimeError):
    """The weights may not be published (no passing gate, unknown version, no weights)."""


@dataclass(frozen=True)
class PublishResult:
    """What a publish or rollback did: the version's manifest, the action and the file written."""

    weights_version: str
    as_of_date: str
    generated_at: str
    row_count: int
    sha256: str
    dbt_invocation_id: str | None
    gate_result_id: int
    action: str  # published | unchanged | recorded_older | rollback
    replaced_version: str | None  # the version this one replaced as the router's current (none if not)
    path: str
    current_version: str | None = None  # the version the router reads after this call
    # Teams telemetry named in the weights window that the roster does not know: no weight (reported only).
    teams_without_weight: tuple[str, ...] = ()

    def manifest(self) -> dict:
        """The manifest written at the top of every exported file."""
        return {k: v for k, v in asdict(self).items() if k not in _NOT_IN_MANIFEST}

    def to_dict(self) -> dict:
        return asdict(self)


def export_dir() -> Path:
    return settings().export_dir / "routing_weights"


def _document(manifest: dict, rows: list[dict]) -> bytes:
    return (json.dumps({"manifest": manifest, "weights": rows}, indent=2, sort_keys=True) + "\n").encode()


def _latest_weights_date(conn) -> date:
    row = conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()
    if not row or row[0] is None:
        raise ExportRefused("marts.routing_weights is empty: build the marts first")
    return row[0]


def _current_version(conn) -> tuple[str | None, date | None]:
    """The version the router reads now and its as-of date (none before the first publish)."""
    row = conn.execute(
        "select w.weights_version, v.as_of_date from router.routing_weights as w"
        " inner join router.weight_versions as v using (weights_version) limit 1"
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _copy_rows(conn, table: str, version: str, rows: list[dict], generated_at: datetime) -> None:
    with conn.cursor().copy(
        f"copy {table} (weights_version, strategy, team_id, tier, weight, previous_weight, generated_at)"
        " from stdin"
    ) as copy:
        for r in rows:
            copy.write_row((version, r["strategy"], r["team_id"], r["tier"], r["weight"],
                            r["previous_weight"], generated_at))


def _replace_current(conn, version: str, rows: list[dict], generated_at: datetime) -> None:
    _audit_changes(conn, version)
    conn.execute("delete from router.routing_weights")
    _copy_rows(conn, "router.routing_weights", version, rows, generated_at)


def _audit_changes(conn, version: str) -> None:
    """Append to audit.weight_changes every weight of `version` that differs from what the router reads
    now (before the replacement), with its rationale from marts.routing_weights when the mart still has it."""
    conn.execute(
        """
        insert into audit.weight_changes
            (weights_version, as_of_date, strategy, team_id, tier, previous_weight, weight, rules_fired, rationale)
        select h.weights_version, v.as_of_date, h.strategy, h.team_id, h.tier, cur.weight, h.weight,
               m.rules_fired, m.rationale
        from router.routing_weights_history as h
        inner join router.weight_versions as v using (weights_version)
        left join router.routing_weights as cur using (strategy, team_id, tier)
        left join marts.routing_weights as m
            on m.as_of_date = v.as_of_date and m.strategy = h.strategy and m.team_id = h.team_id and m.tier = h.tier
        where h.weights_version = %s and cur.weight is distinct from h.weight
        order by h.strategy, h.team_id, h.tier
        """,
        (version,),
    )


def _log(conn, version: str, action: str, replaced: str | None, gate_result_id: int | None) -> None:
    """router.publish_log (what the router sees) and the append-only audit.weight_exports."""
    conn.execute(
        "insert into router.publish_log (weights_version, action, replaced_version) values (%s, %s, %s)",
        (version, action, replaced),
    )
    conn.execute(
        "insert into audit.weight_exports (weights_version, action, replaced_version, gate_result_id)"
        " values (%s, %s, %s, %s)",
        (version, action, replaced, gate_result_id),
    )


@contextmanager
def _publishing(url: str | None):
    """A connection holding the publish lock until the files are written (then released, then closed)."""
    with db.connect(url or db.database_url()) as conn:
        locks.session_lock(conn, locks.PUBLISH)
        conn.commit()
        try:
            migrate(conn)
            yield conn
        finally:
            # Rollback is a no-op after commit and ends a failed transaction so the unlock can run; on a
            # broken connection closing it releases the lock, and the original error is what matters.
            with suppress(Exception):
                conn.rollback()
                locks.session_unlock(conn, locks.PUBLISH)
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


def _passing_gate(conn, as_of_date: date, gate_result_id: int | None) -> gate_results.RecordedGate:
    """The gate result `gate_result_id` (or the day's newest) if it passed the day's weights; else refuse."""
    batch_id = gate_results.weights_batch_id(as_of_date)
    if gate_result_id is None:
        gate = gate_results.latest(conn, gate_results.WEIGHTS_SUITE, batch_id)
        which = f"{gate_results.WEIGHTS_SUITE} gate result for {batch_id} as the newest"
    else:
        gate = gate_results.get(conn, gate_result_id)
        which = f"gate result {gate_result_id}"
        if gate is not None and (gate.suite, gate.batch) != (gate_results.WEIGHTS_SUITE, batch_id):
            raise ExportRefused(
                f"gate result {gate_result_id} is {gate.suite} of {gate.batch}, not {gate_results.WEIGHTS_SUITE}"
                f" of {batch_id}; the router keeps its current version"
            )
    if gate is None or not gate.success:
        state = "no" if gate is None else f"a failed (gate_result_id {gate.id})"
        raise ExportRefused(
            f"{state} {which}: run `routerloop gates marts` first; the router keeps its current version"
        )
    return gate


def _append_version(conn, result: PublishResult, rows: list[dict], generated_at: datetime) -> None:
    conn.execute(
        "insert into router.weight_versions values (%s, %s, %s, %s, %s, %s, %s)",
        (result.weights_version, result.as_of_date, generated_at, result.row_count, result.sha256,
         result.dbt_invocation_id, result.gate_result_id),
    )
    _copy_rows(conn, "router.routing_weights_history", result.weights_version, rows, generated_at)


def _action(version: str, as_of_date: date, current: str | None, current_as_of: date | None) -> str:
    if current == version:
        return "unchanged"
    if current_as_of is not None and as_of_date < current_as_of:
        return "recorded_older"
    return "published"


def publish(as_of_date: date | None = None, dbt_invocation_id: str | None = None,
            url: str | None = None, gate_result_id: int | None = None) -> PublishResult:
    """Publish the gated weights of `as_of_date` (default: the newest day); return what was done.

    `gate_result_id` names the weights gate result to check (a daily run's own); without it, the
    day's newest. Weights older than the router's current version are only recorded (see the module).
    """
    with _publishing(url) as conn:
        as_of_date = as_of_date or _latest_weights_date(conn)
        gate = _passing_gate(conn, as_of_date, gate_result_id)
        rows = mart_rows(conn, as_of_date)
        if not rows:
            raise ExportRefused(f"marts.routing_weights has no rows for {as_of_date}")
        digest = rows_digest(rows)
        if gate.batch_sha256 != digest:
            raise ExportRefused(
                f"the weights of {as_of_date} changed after gate result {gate.id} passed: gate them again;"
                " the router keeps its current version"
            )
        version = f"{as_of_date:%Y%m%d}-{digest[:12]}"
        existing = conn.execute(
            "select generated_at, dbt_invocation_id, gate_result_id from router.weight_versions"
            " where weights_version = %s",
            (version,),
        ).fetchone()
        if existing:
            generated_at, invocation_id, recorded_gate_id = existing
        else:
            generated_at, recorded_gate_id = datetime.now(UTC), gate.id
            invocation_id = dbt_invocation_id or newest_dbt_invocation(conn) or last_invocation_id()
        current, current_as_of = _current_version(conn)
        action = _action(version, as_of_date, current, current_as_of)
        replaces = action == "published"
        result = PublishResult(
            weights_version=version, as_of_date=as_of_date.isoformat(), generated_at=generated_at.isoformat(),
            row_count=len(rows), sha256=digest, dbt_invocation_id=invocation_id, gate_result_id=recorded_gate_id,
            action=action, replaced_version=current if replaces else None,
            path=str(export_dir() / f"{version}.json"), current_version=version if replaces else current,
            teams_without_weight=tuple(unweighted_teams(conn, as_of_date)),
        )
        if result.teams_without_weight:
            log.warning("weights of %s: teams not in the roster get no weight: %s (see marts.reference_gaps)",
                        as_of_date, ", ".join(result.teams_without_weight))
        document = _document(result.manifest(), rows)
        # The version file first: once the table names a version, its file exists.
        write_atomically(Path(result.path), document)
        if not existing:
            _append_version(conn, result, rows, generated_at)
            if not replaces:
                _log(conn, version, "recorded", None, recorded_gate_id)
        if replaces:
            _replace_current(conn, version, rows, generated_at)
            _log(conn, version, "publish", current, recorded_gate_id)
        conn.commit()
        if replaces:
            write_atomically(export_dir() / "latest.json", document)
    return result


def rollback(version: str, url: str | None = None) -> PublishResult:
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
        replaced, _ = _current_version(conn)
        result = PublishResult(
            weights_version=version, as_of_date=as_of_date.isoformat(), generated_at=generated_at.isoformat(),
            row_count=row_count, sha256=digest, dbt_invocation_id=invocation_id, gate_result_id=gate_result_id,
            action="rollback", replaced_version=replaced, path=str(export_dir() / f"{version}.json"),
            current_version=version,
        )
        document = _document(result.manifest(), rows)
        if not Path(result.path).exists():  # e.g. a fresh export folder: the version file is rebuilt from history
            write_atomically(Path(result.path), document)
        _replace_current(conn, version, rows, generated_at)
        _log(conn, version, "rollback", replaced, gate_result_id)
        conn.commit()
        write_atomically(export_dir() / "latest.json", document)
    return result
