"""The audit trail: append-only tables in schema `audit` (migration "append-only audit trail").

A trigger refuses UPDATE, DELETE and TRUNCATE on each of them, for every role, so a row once written
stays. Who writes what: routerloop.gates (gate_results), routerloop.export (weight_exports,
weight_changes); erasures and api_requests are for the erasure command and the API. `tail()` reads the
newest entries of all of them (`routerloop audit tail`).
"""

from __future__ import annotations

# kind -> (table, time column, the columns shown), newest first in tail().
TRAIL = {
    "gate_result": ("audit.gate_results", "validated_at",
                    ("gate_result_id", "suite", "batch", "success")),
    "weight_export": ("audit.weight_exports", "performed_at",
                      ("weights_version", "action", "replaced_version", "gate_result_id", "performed_by")),
    "weight_change": ("audit.weight_changes", "recorded_at",
                      ("weights_version", "strategy", "team_id", "tier", "previous_weight", "weight", "rules_fired",
                       "performed_by")),
    "erasure": ("audit.erasures", "erased_at",
                ("erasure_id", "customer_hash", "rows_removed", "requested_by", "requested_via", "reason")),
    "api_request": ("audit.api_requests", "requested_at", ("principal", "role", "method", "path", "status")),
}
APPEND_ONLY_TABLES = tuple(table for table, _, _ in TRAIL.values())


def tail(conn, limit: int = 20, kinds: list[str] | None = None) -> list[dict]:
    """The newest `limit` entries of the trail (of `kinds`, default all), newest first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    unknown = set(kinds or ()) - set(TRAIL)
    if unknown:
        raise ValueError(f"unknown audit kinds {sorted(unknown)}; known: {sorted(TRAIL)}")
    parts = []
    for kind, (table, at, columns) in TRAIL.items():
        if kinds and kind not in kinds:
            continue
        detail = ", ".join(f"'{c}', {c}" for c in columns)
        parts.append(f"select {at} as at, '{kind}' as kind, jsonb_build_object({detail}) as detail from {table}")
    rows = conn.execute(
        f"select at, kind, detail from ({' union all '.join(parts)}) as trail order by at desc limit %s", (limit,)
    ).fetchall()
    return [{"at": at.isoformat(), "kind": kind, **detail} for at, kind, detail in rows]
