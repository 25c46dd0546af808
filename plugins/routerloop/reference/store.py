"""Load the validated reference folder into schema `reference`, in one transaction, keeping history.

Each load replaces the current snapshot of every file (reference.teams, agents, sla_policies,
experiments) and records itself in reference.loads (who, when, from where, the files' sha256). A load
that fails leaves the previous snapshot as it was: validation runs before the transaction, and any
error inside it rolls everything back.

History (reference.agent_memberships, what dbt's stg_reference__agents reads): which agent was in which
team on which days. A load never changes the past: days before its `effective_from` (default: today,
UTC) keep the team earlier loads recorded, and take the file's periods only where no earlier load said
anything (a new agent, or a period before the first load). From `effective_from` on, the file decides.
So editing an agent's team in place moves the agent from the load's day on, and last month's marts keep
last month's team. `rewrite_history=True` (a correction) replaces the whole history with the file.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from routerloop import db
from routerloop.reference.files import Problem, Roster, RosterError, read_roster
from routerloop.warehouse import locks

OPEN_END = date.max  # an open period (active_to null) in the timeline arithmetic below

# Snapshot tables and the columns loaded into them, in order.
SNAPSHOT_COLUMNS = {
    "teams": ("team_id", "team_name", "active_from", "active_to"),
    "agents": ("agent_id", "team_id", "active_from", "active_to"),
    "sla_policies": ("sla_policy", "tier", "first_response_minutes", "resolve_minutes", "warn_at_share"),
    "experiments": (
        "experiment_id", "variant", "variant_kind", "traffic_share", "is_control", "starts_at", "ends_at",
        "primary_metric", "secondary_metrics", "guardrail_metrics", "min_sample_per_variant",
        "min_relative_lift", "enabled",
    ),
}


class ReferenceNotLoaded(RuntimeError):
    """The warehouse has no roster yet: the models would have no team, agent or SLA policy to report on."""


Period = tuple[str, date, date]  # (team_id, first day, last day inclusive; OPEN_END when open)


def load(
    directory: Path | None = None,
    *,
    url: str | None = None,
    effective_from: date | None = None,
    rewrite_history: bool = False,
    loaded_by: str | None = None,
) -> dict:
    """Validate the folder, then load it in one transaction; returns what was loaded.

    Raises routerloop.reference.RosterError (nothing loaded) when the folder breaks a rule. A folder
    equal to the last load (same checksum) is not loaded again unless it rewrites history.
    """
    from routerloop.warehouse.migrations import migrate

    roster = read_roster(directory)
    effective_from = effective_from or datetime.now(UTC).date()
    with db.connect(url or db.database_url()) as conn:
        migrate(conn)
        with conn.transaction():
            locks.xact_lock(conn, locks.REFERENCE_LOAD)
            last = conn.execute(
                "select load_id, checksum from reference.loads order by load_id desc limit 1"
            ).fetchone()
            if last and last[1] == roster.checksum and not rewrite_history:
                return {"loaded": False, "load_id": last[0], "checksum": roster.checksum,
                        "reason": f"unchanged since load {last[0]}", **roster.summary()}
            previous = {} if rewrite_history else _timeline_in(conn)
            timeline = merge_timeline(previous, file_periods(roster), effective_from)
            _check_history_teams(roster, timeline)
            load_id = conn.execute(
                "insert into reference.loads (loaded_by, source_dir, checksum, files, effective_from, rewrite_history)"
                " values (%s, %s, %s, %s, %s, %s) returning load_id",
                (loaded_by or _user(), str(roster.directory.resolve()), roster.checksum,
                 json.dumps(roster.files), effective_from, rewrite_history),
            ).fetchone()[0]
            rows = {"teams": roster.teams, "agents": roster.agents, "sla_policies": roster.sla_policies,
                    "experiments": roster.experiment_rows}
            for table, columns in SNAPSHOT_COLUMNS.items():
                _replace(conn, table, columns, [[r[c] for c in columns] for r in rows[table]], load_id)
            membership_rows = [
                [agent_id, team, first, None if last_day == OPEN_END else last_day]
                for agent_id, periods in sorted(timeline.items()) for team, first, last_day in periods
            ]
            _replace(conn, "agent_memberships", ("agent_id", "team_id", "valid_from", "valid_to"),
                     membership_rows, load_id, origins=previous)
    return {"loaded": True, "load_id": load_id, "checksum": roster.checksum, "effective_from": effective_from,
            "rewrite_history": rewrite_history, **roster.summary(), "membership_history_periods": len(membership_rows)}


def _replace(conn, table: str, columns: tuple[str, ...], rows: list[list], load_id: int, *,
             origins: dict | None = None) -> None:
    """Delete and re-insert a table's rows inside the load's transaction (readers see old or new, never half).

    `origins` (the recorded membership history): a period an earlier load recorded keeps that load's id.
    """
    conn.execute(f"delete from reference.{table}")
    origin = {(a, t, f): lid for a, periods in (origins or {}).items() for t, f, _, lid in periods}
    rows = [[*r, origin.get((r[0], r[1], r[2]), load_id)] for r in rows]
    if not rows:
        return
    names = ", ".join((*columns, "load_id"))
    with conn.cursor() as cursor, cursor.copy(f"copy reference.{table} ({names}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _check_history_teams(roster: Roster, timeline: dict[str, list[Period]]) -> None:
    """Past memberships keep their team: a team they name must stay in teams.csv (retired by active_to)."""
    known = {t["team_id"] for t in roster.teams}
    last_named: dict[str, date] = {}
    for periods in timeline.values():
        for team, _, end in periods:
            if team not in known:
                last_named[team] = max(end, last_named.get(team, end))
    if last_named:
        raise RosterError(roster.directory, [
            Problem("teams.csv", 0, "team_in_history",
                    f"team {team!r} is not in teams.csv, but the membership history names it until {end}: keep its "
                    "row and set active_to to retire it (or load with --rewrite-history to correct the past)")
            for team, end in sorted(last_named.items())
        ])


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --------------------------------------------------------------------------- the membership timeline


def file_periods(roster: Roster) -> dict[str, list[Period]]:
    periods: dict[str, list[Period]] = {}
    for row in roster.agents:
        periods.setdefault(row["agent_id"], []).append(
            (row["team_id"], row["active_from"], row["active_to"] or OPEN_END)
        )
    return periods


def _timeline_in(conn) -> dict[str, list[tuple]]:
    """The recorded history: agent -> [(team, first day, last day, load_id)]."""
    history: dict[str, list[tuple]] = {}
    for agent_id, team_id, first, last_day, load_id in conn.execute(
        "select agent_id, team_id, valid_from, valid_to, load_id from reference.agent_memberships order by 1, 3"
    ):
        history.setdefault(agent_id, []).append((team_id, first, last_day or OPEN_END, load_id))
    return history


def merge_timeline(previous: dict[str, list[tuple]], new: dict[str, list[Period]], effective_from: date
                   ) -> dict[str, list[Period]]:
    """History after a load: before `effective_from`, what earlier loads recorded, filled in by the new
    file where they recorded nothing; from `effective_from` on, the new file. Adjacent periods in the
    same team are joined."""
    before = effective_from - timedelta(days=1)
    merged: dict[str, list[Period]] = {}
    for agent_id in sorted(set(previous) | set(new)):
        old = [p[:3] for p in previous.get(agent_id, [])]
        old_past = _clip(old, date.min, before)
        new_past = _clip(new.get(agent_id, []), date.min, before)
        new_future = _clip(new.get(agent_id, []), effective_from, OPEN_END)
        periods = _joined(sorted(old_past + _minus(new_past, old_past) + new_future, key=lambda p: p[1]))
        if periods:
            merged[agent_id] = periods
    return merged


def _clip(periods: list[Period], first: date, last: date) -> list[Period]:
    if first > last:
        return []
    clipped = [(team, max(start, first), min(end, last)) for team, start, end in periods]
    return [p for p in clipped if p[1] <= p[2]]


def _minus(periods: list[Period], covered: list[Period]) -> list[Period]:
    """The days of `periods` that no period of `covered` holds."""
    pieces = list(periods)
    for _, cover_start, cover_end in covered:
        rest = []
        for team, start, end in pieces:
            if end < cover_start or start > cover_end:
                rest.append((team, start, end))
                continue
            if start < cover_start:
                rest.append((team, start, cover_start - timedelta(days=1)))
            if end > cover_end:
                rest.append((team, cover_end + timedelta(days=1), end))
        pieces = rest
    return pieces


def _joined(periods: list[Period]) -> list[Period]:
    joined: list[Period] = []
    for team, start, end in periods:
        if joined and joined[-1][0] == team and joined[-1][2] != OPEN_END and joined[-1][2] + timedelta(days=1) >= start:
            joined[-1] = (team, joined[-1][1], max(end, joined[-1][2]))
        else:
            joined.append((team, start, end))
    return joined


# --------------------------------------------------------------------------- reading back


def require_loaded(conn) -> None:
    """Raise ReferenceNotLoaded when the warehouse holds no roster (no team, agent or SLA policy)."""
    empty = conn.execute(
        """
        select table_name from (values ('teams'), ('agent_memberships'), ('sla_policies')) as t (table_name)
        where to_regclass('reference.' || table_name) is null
        """
    ).fetchall()
    if not empty:
        empty = [
            (table,) for table in ("teams", "agent_memberships", "sla_policies")
            if conn.execute(f"select not exists (select from reference.{table})").fetchone()[0]
        ]
    if empty:
        tables = ", ".join(f"reference.{t}" for (t,) in empty)
        raise ReferenceNotLoaded(
            f"the warehouse has no roster ({tables} empty): run `routerloop reference load` first"
            " (it loads the reference folder, setting reference_dir)"
        )


def show(*, url: str | None = None, as_of: date | None = None, agent_id: str | None = None) -> dict:
    """The last loads, the current snapshot's counts, and on request the roster on a day or an agent's history."""
    from routerloop.warehouse.migrations import migrate

    with db.connect(url or db.database_url()) as conn:
        migrate(conn)
        cursor = conn.execute(
            "select load_id, loaded_at, loaded_by, source_dir, checksum, effective_from, rewrite_history"
            " from reference.loads order by load_id desc limit 5"
        )
        names = [c.name for c in cursor.description]
        loads = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        counts = {
            table: conn.execute(f"select count(*) from reference.{table}").fetchone()[0]
            for table in (*SNAPSHOT_COLUMNS, "agent_memberships")
        }
        result: dict = {"loads": loads, "rows": counts}
        if as_of is not None:
            teams: dict[str, list[str]] = {}
            for team_id, member in conn.execute(
                """
                select teams.team_id, memberships.agent_id
                from reference.teams as teams
                left join reference.agent_memberships as memberships
                    on memberships.team_id = teams.team_id
                    and %(day)s between memberships.valid_from and coalesce(memberships.valid_to, 'infinity')
                order by 1, 2
                """,
                {"day": as_of},
            ):
                teams.setdefault(team_id, [])
                if member:
                    teams[team_id].append(member)
            result["as_of"] = as_of
            result["teams"] = teams
        if agent_id is not None:
            result["agent"] = agent_id
            result["memberships"] = [
                {"team_id": t, "valid_from": f, "valid_to": u, "load_id": lid}
                for t, f, u, lid in conn.execute(
                    "select team_id, valid_from, valid_to, load_id from reference.agent_memberships"
                    " where agent_id = %s order by valid_from",
                    (agent_id,),
                )
            ]
    return result
