"""A day's routing weights as the router receives them, and their digest.

The weights gate records the digest of the rows it validated; the export recomputes it from the same
rows and refuses to publish weights that changed after they were gated.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

from routerloop.config import dbt_var


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


def canonical_bytes(rows: list[dict]) -> bytes:
    return json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()


def rows_digest(rows: list[dict]) -> str:
    return hashlib.sha256(canonical_bytes(rows)).hexdigest()


def mart_digest(conn, as_of_date: date) -> str:
    """sha256 of a day's weights as they would be exported; the weights gate records it."""
    return rows_digest(mart_rows(conn, as_of_date))


def unweighted_teams(conn, as_of_date: date) -> list[str]:
    """Teams that telemetry named within the weights window ending at `as_of_date` but the roster does not
    know (marts.reference_gaps): the weights cover the roster's teams only, so these get no weight."""
    if not conn.execute("select to_regclass('marts.reference_gaps') is not null").fetchone()[0]:
        return []
    window_days = int(dbt_var("weights_window_days"))
    cursor = conn.execute(
        """
        select id from marts.reference_gaps
        where kind = 'team' and first_seen < %(day)s::date + 1 and last_seen >= %(day)s::date - %(window)s + 1
        order by id
        """,
        {"day": as_of_date, "window": window_days},
    )
    return [team for (team,) in cursor]


def day_is_built(conn, as_of_date: date) -> bool:
    """Whether the marts hold the day (its routing weights): a day never built has no data to gate or report."""
    return conn.execute(
        "select exists (select from marts.routing_weights where as_of_date = %s)", (as_of_date,)
    ).fetchone()[0]
