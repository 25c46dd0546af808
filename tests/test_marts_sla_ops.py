"""The SLA/CSAT and operations marts, proven against an independent recomputation in pandas.

Every mart is recomputed straight from the generated JSONL files (never from the warehouse) and compared
row by row: counts exactly, rates and averages within 1e-9 (numpy's linear percentile equals
percentile_cont). A second test lands a late file into an already-built day and checks that the next
incremental build equals a full refresh.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routerloop import db
from routerloop.build import run_dbt
from routerloop.config import dbt_var, settings

pytestmark = pytest.mark.slow

TOLERANCE = 1e-9
FAILED = {"error", "fail", "runtime error"}
SLA_OPS_MARTS = (
    "team_sla_csat_rolling",
    "agent_sla_csat_rolling",
    "decision_performance_daily",
    "rule_alerts",
    "review_queue_health_daily",
)
# The marts with their parents; built with cautious indirect selection (only tests whose parents are
# all selected), since some staging tests refer to models outside this part.
SLA_OPS_SELECT = [f"+{mart}" for mart in SLA_OPS_MARTS]


# --------------------------------------------------------------------------- reading the landing zone


def read_records(landing: Path, stream: str) -> list[dict]:
    """Every record of one stream in the landing zone, in file order (re-deliveries included)."""
    records = []
    for path in sorted((landing / stream).rglob("*.jsonl*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records


def read_stream(landing: Path, stream: str) -> pd.DataFrame:
    return pd.DataFrame.from_records(read_records(landing, stream))


def utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, format="ISO8601")


def utc_date(series: pd.Series) -> pd.Series:
    return utc(series).dt.date


def roster_file(name: str) -> pd.DataFrame:
    """A file of the reference folder (its agents hold one membership period each)."""
    return pd.read_csv(settings().reference_dir / f"{name}.csv", dtype=str)


def mart(url: str, name: str, order_by: str) -> pd.DataFrame:
    with db.connect(url) as conn:
        cursor = conn.execute(f"select * from marts.{name} order by {order_by}")
        columns = [c.name for c in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def dates_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --------------------------------------------------------------------------- reference computations


def sla_outcomes(landing: Path) -> pd.DataFrame:
    """Latest evaluation per ticket + policy, with the UTC date it counts on and its resolution time."""
    raw = read_stream(landing, "sla_outcomes")
    raw["evaluated_at"] = utc(raw["evaluatedAt"])
    raw = raw.sort_values("evaluated_at", kind="stable")
    latest = raw.drop_duplicates(["ticketId", "slaPolicy"], keep="last").copy()
    latest["day"] = latest["evaluated_at"].dt.date
    resolved = utc(latest["resolvedAt"]) if "resolvedAt" in latest else pd.Series(pd.NaT, index=latest.index)
    latest["resolve_minutes"] = (resolved - utc(latest["openedAt"])).dt.total_seconds() / 60.0
    if "agentId" not in latest:
        latest["agentId"] = None
    return latest[["ticketId", "teamId", "agentId", "outcome", "day", "resolve_minutes"]]


def csat_ratings(landing: Path) -> pd.DataFrame:
    raw = read_stream(landing, "csat_ratings").drop_duplicates("ratingId", keep="last").copy()
    raw["day"] = utc_date(raw["submittedAt"])
    if "agentId" not in raw:
        raw["agentId"] = None
    return raw[["ratingId", "teamId", "agentId", "rating", "day"]]


def expected_sla_csat_rolling(landing: Path, level: str) -> pd.DataFrame:
    """The rolling marts recomputed: every date x window x team (or agent) of the roster."""
    sla, csat = sla_outcomes(landing), csat_ratings(landing)
    key = "teamId" if level == "team" else "agentId"
    entities = roster_file("teams") if level == "team" else roster_file("agents")
    all_days = pd.concat([sla["day"], csat["day"]])
    days = dates_between(all_days.min(), all_days.max())
    k = int(dbt_var("csat_suppression_k"))
    satisfied_min = int(dbt_var("csat_satisfied_min_rating"))
    rows = []
    for entity in entities.itertuples(index=False):
        entity_id = entity.team_id if level == "team" else entity.agent_id
        own_sla = sla[sla[key] == entity_id]
        own_csat = csat[csat[key] == entity_id]
        for as_of in days:
            for window in dbt_var("rolling_windows"):
                start = as_of - timedelta(days=window - 1)
                in_sla = own_sla[(own_sla["day"] >= start) & (own_sla["day"] <= as_of)]
                in_csat = own_csat[(own_csat["day"] >= start) & (own_csat["day"] <= as_of)]
                tickets = len(in_sla)
                counts = in_sla["outcome"].value_counts()
                minutes = in_sla["resolve_minutes"].dropna().to_numpy()
                ratings = in_csat["rating"].astype(int).to_numpy()
                shown = len(ratings) >= k
                p50, p90 = np.percentile(minutes, [50, 90], method="linear") if len(minutes) else (None, None)
                rows.append(
                    {
                        "as_of_date": as_of,
                        "window_days": window,
                        "window_start_date": start,
                        "team_id": entity.team_id,
                        **({"agent_id": entity.agent_id} if level == "agent" else {}),
                        "tickets": tickets,
                        "attained": int(counts.get("attained", 0)),
                        "warn": int(counts.get("warn", 0)),
                        "breach": int(counts.get("breach", 0)),
                        "attainment_rate": counts.get("attained", 0) / tickets if tickets else None,
                        "warn_rate": counts.get("warn", 0) / tickets if tickets else None,
                        "breach_rate": counts.get("breach", 0) / tickets if tickets else None,
                        "resolved_tickets": len(minutes),
                        "mttr_p50_minutes": p50,
                        "mttr_p90_minutes": p90,
                        "csat_responses": len(ratings),
                        "csat_suppressed": not shown,
                        "csat_mean": ratings.mean() if shown else None,
                        "csat_satisfied_pct": 100 * (ratings >= satisfied_min).mean() if shown else None,
                    }
                )
    frame = pd.DataFrame(rows)
    return complementary_suppression(frame, csat, k) if level == "agent" else frame


def complementary_suppression(agents: pd.DataFrame, csat: pd.DataFrame, k: int) -> pd.DataFrame:
    """The rule read from README: in a team and window whose hidden cells with ratings are exactly one
    (an agent below k, or the team's ratings without an agent of the team) and that one is below k, the
    agent with the fewest responses at or above k (then the smallest agent_id) is suppressed too."""
    agents = agents.copy()
    for (as_of, window, team), group in agents.groupby(["as_of_date", "window_days", "team_id"]):
        start = as_of - timedelta(days=window - 1)
        team_responses = int(((csat["teamId"] == team) & (csat["day"] >= start) & (csat["day"] <= as_of)).sum())
        unassigned = team_responses - int(group["csat_responses"].sum())
        small = int(((group["csat_responses"] > 0) & (group["csat_responses"] < k)).sum())
        if small + (unassigned > 0) == 1 and (small == 1 or unassigned < k):
            shown = group[group["csat_responses"] >= k].sort_values(["csat_responses", "agent_id"])
            if len(shown):
                agents.loc[shown.index[0], ["csat_suppressed", "csat_mean", "csat_satisfied_pct"]] = [True, None, None]
    return agents


def latest_outcomes(landing: Path) -> pd.DataFrame:
    """A decision's outcome is its latest recorded one (no ties in generated data: asserted)."""
    outcomes = read_stream(landing, "decision_outcomes").drop_duplicates("outcomeId", keep="last").copy()
    outcomes["recorded_at"] = utc(outcomes["recordedAt"])
    assert not outcomes.duplicated(["decisionId", "recorded_at"]).any(), "tied outcomes make 'latest' ambiguous"
    outcomes = outcomes.sort_values(["decisionId", "recorded_at"])
    latest = outcomes.drop_duplicates("decisionId", keep="last")
    return latest.set_index("decisionId")[["outcomePositive", "outcomeValue"]]


def decisions_with_outcome(landing: Path) -> pd.DataFrame:
    decisions = read_stream(landing, "router_decisions").drop_duplicates("decisionId", keep="last").copy()
    decisions["decision_date"] = utc_date(decisions["createdAt"])
    joined = decisions.join(latest_outcomes(landing), on="decisionId")
    for column in ("confidence", "latencyMs", "outcomeValue"):
        joined[column] = pd.to_numeric(joined.get(column), errors="coerce").astype(float)
    positive = joined["outcomePositive"]
    joined["has_outcome"] = positive.notna() & positive.isin([True, False])
    joined["positive"] = positive.map(lambda v: v is True)
    return joined


def expected_decision_performance(landing: Path) -> pd.DataFrame:
    joined = decisions_with_outcome(landing)
    grouped = joined.groupby(["decision_date", "ruleVersion", "channelId"])
    frame = pd.DataFrame(
        {
            "total_decisions": grouped.size(),
            "with_outcome": grouped["has_outcome"].sum(),
            "positive_outcomes": grouped["positive"].sum(),
            "decisions_with_confidence": grouped["confidence"].count(),
            "avg_confidence": grouped["confidence"].mean(),
            "decisions_with_latency": grouped["latencyMs"].count(),
            "avg_latency_ms": grouped["latencyMs"].mean(),
            "outcomes_with_value": grouped["outcomeValue"].count(),
            "avg_outcome_value": grouped["outcomeValue"].mean(),
        }
    ).reset_index()
    frame = frame.rename(columns={"ruleVersion": "rule_version", "channelId": "channel_id"})
    frame["pending_outcomes"] = frame["total_decisions"] - frame["with_outcome"]
    frame["success_rate"] = (frame["positive_outcomes"] / frame["with_outcome"]).where(frame["with_outcome"] > 0)
    return frame


def expected_rule_alerts(landing: Path) -> pd.DataFrame:
    joined = decisions_with_outcome(landing)
    as_of = joined["decision_date"].max()
    window = int(dbt_var("rule_alert_window_days"))
    start = as_of - timedelta(days=window - 1)
    recent = joined[(joined["decision_date"] >= start) & (joined["decision_date"] <= as_of)]
    rows = []
    for rule_version, part in recent.groupby("ruleVersion"):
        total, with_outcome = len(part), int(part["has_outcome"].sum())
        success = part["positive"].sum() / with_outcome if with_outcome else None
        confidence = part["confidence"].mean() if part["confidence"].notna().any() else None
        pending = total - with_outcome
        checks = {
            "low_success_rate": (
                success,
                dbt_var("rule_alert_min_success_rate"),
                success is not None
                and with_outcome >= dbt_var("rule_alert_min_outcomes")
                and success < dbt_var("rule_alert_min_success_rate"),
            ),
            "low_avg_confidence": (
                confidence,
                dbt_var("rule_alert_min_avg_confidence"),
                confidence is not None and confidence < dbt_var("rule_alert_min_avg_confidence"),
            ),
            "pending_outcomes": (
                float(pending),
                dbt_var("rule_alert_max_pending_outcomes"),
                pending > dbt_var("rule_alert_max_pending_outcomes"),
            ),
        }
        for trigger, (measured, threshold, triggered) in checks.items():
            rows.append(
                {
                    "as_of_date": as_of,
                    "window_start_date": start,
                    "rule_version": rule_version,
                    "alert_trigger": trigger,
                    "measured_value": measured,
                    "threshold": float(threshold),
                    "triggered": bool(triggered),
                    "total_decisions": total,
                    "with_outcome": with_outcome,
                    "pending_outcomes": pending,
                }
            )
    return pd.DataFrame(rows)


def expected_review_queue_health(landing: Path) -> pd.DataFrame:
    states = read_stream(landing, "router_review_queue")
    states["created_at"] = utc(states["createdAt"])
    states["updated_at"] = utc(states["updatedAt"])
    states = states.drop_duplicates(["reviewId", "updated_at"], keep="last").sort_values(["reviewId", "updated_at"])
    resolved_at = utc(states["resolvedAt"]) if "resolvedAt" in states else pd.Series(pd.NaT, index=states.index)
    states["resolved_at"] = resolved_at.fillna(states["updated_at"]).where(states["status"] == "resolved")

    first_states = states.drop_duplicates("reviewId", keep="first")
    opened = first_states.groupby([first_states["created_at"].dt.date, "severity"]).size()
    resolutions = states.dropna(subset=["resolved_at"]).drop_duplicates(["reviewId", "resolved_at"], keep="first")
    resolutions = resolutions.assign(
        day=resolutions["resolved_at"].dt.date,
        hours=(resolutions["resolved_at"] - resolutions["created_at"]).dt.total_seconds() / 3600.0,
    )
    last_day = max(states["updated_at"].max(), states["resolved_at"].max()).date()
    rows = []
    for day in dates_between(states["created_at"].min().date(), last_day):
        end_of_day = pd.Timestamp(day + timedelta(days=1), tz=UTC)
        as_of_end = states[states["updated_at"] < end_of_day].drop_duplicates("reviewId", keep="last")
        still_open = as_of_end[as_of_end["status"] == "open"]
        age = end_of_day - still_open["created_at"]
        for severity in ("low", "medium", "high"):
            mask = still_open["severity"] == severity
            done = resolutions[(resolutions["day"] == day) & (resolutions["severity"] == severity)]
            rows.append(
                {
                    "report_date": day,
                    "severity": severity,
                    "open_at_end_of_day": int(mask.sum()),
                    "open_under_1h": int((mask & (age < pd.Timedelta(hours=1))).sum()),
                    "open_1h_to_24h": int(
                        (mask & (age >= pd.Timedelta(hours=1)) & (age <= pd.Timedelta(hours=24))).sum()
                    ),
                    "open_over_24h": int((mask & (age > pd.Timedelta(hours=24))).sum()),
                    "opened": int(opened.get((day, severity), 0)),
                    "resolved": len(done),
                    "median_hours_to_resolve": (
                        np.percentile(done["hours"].to_numpy(), 50, method="linear") if len(done) else None
                    ),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- comparison


def assert_frames_match(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same key set; equal integers, booleans and texts; floats within TOLERANCE; null where null."""
    assert len(expected) > 0, "the reference is empty: nothing was proven"
    assert not actual.duplicated(keys).any(), "duplicate grain rows in the mart"
    merged = actual.merge(expected, on=keys, how="outer", suffixes=("_mart", "_ref"), indicator=True)
    missing = merged[merged["_merge"] != "both"]
    assert missing.empty, f"rows only on one side:\n{missing[[*keys, '_merge']].head(20)}"
    for column in expected.columns:
        if column in keys:
            continue
        left = merged[f"{column}_mart"]
        right = merged[f"{column}_ref"]
        left_null, right_null = left.isna(), right.isna()
        bad = left_null != right_null
        both = ~left_null & ~right_null
        if both.any() and isinstance(right[both].iloc[0], float | np.floating):
            diff = np.abs(left[both].astype(float).to_numpy() - right[both].astype(float).to_numpy())
            bad.loc[both] = diff > TOLERANCE
        else:
            bad.loc[both] = left[both].astype(str).to_numpy() != right[both].astype(str).to_numpy()
        assert not bad.any(), f"{column} differs:\n{merged.loc[bad, [*keys, f'{column}_mart', f'{column}_ref']].head(20)}"


# --------------------------------------------------------------------------- tests


def test_rolling_sla_csat_marts_match_independent_recomputation(three_week_warehouse, three_week_url):
    for level in ("team", "agent"):
        keys = ["as_of_date", "window_days", "team_id"] + (["agent_id"] if level == "agent" else [])
        actual = mart(three_week_url, f"{level}_sla_csat_rolling", ", ".join(keys))
        expected = expected_sla_csat_rolling(three_week_warehouse, level)
        assert expected["tickets"].sum() > 0 and expected["csat_responses"].sum() > 0
        if level == "agent":  # the data exercises suppression both ways, complementary suppression too
            assert expected["csat_suppressed"].any() and not expected["csat_suppressed"].all()
            k = int(dbt_var("csat_suppression_k"))
            assert (expected["csat_suppressed"] & (expected["csat_responses"] >= k)).any()
        assert_frames_match(actual, expected, keys)


def test_dbt_docs_are_database_comments(three_week_url):
    """persist_docs: a BI tool reading the warehouse sees the dbt descriptions as comments (pg_description),
    on contracted incremental tables as on views."""
    documented = {
        # relation: (start of its description, a column, that column's description)
        "marts.team_sla_csat_rolling": (
            "SLA attainment, resolution time and CSAT per team", "as_of_date", "Last UTC date of the window."
        ),
        "intermediate.int_routing_weight_keys_enumerated": (
            "The keys of a day of marts.routing_weights", "strategy", "Weight strategy, a key of var weight_strategies."
        ),
    }
    with db.connect(three_week_url) as conn:
        for relation, (table_text, column, column_text) in documented.items():
            comments = dict(
                conn.execute(
                    """
                    select coalesce(attribute.attname, ''), description.description
                    from pg_description as description
                    left join pg_attribute as attribute
                        on attribute.attrelid = description.objoid and attribute.attnum = description.objsubid
                    where description.objoid = %s::regclass and description.classoid = 'pg_class'::regclass
                    """,
                    (relation,),
                ).fetchall()
            )
            assert comments.get("", "").startswith(table_text), relation
            assert comments.get(column) == column_text, relation


def test_decision_performance_matches_independent_recomputation(three_week_warehouse, three_week_url):
    keys = ["decision_date", "rule_version", "channel_id"]
    expected = expected_decision_performance(three_week_warehouse)
    assert expected["with_outcome"].sum() > 0
    assert_frames_match(mart(three_week_url, "decision_performance_daily", ", ".join(keys)), expected, keys)


def test_rule_alerts_match_independent_recomputation(three_week_warehouse, three_week_url):
    keys = ["rule_version", "alert_trigger"]
    actual = mart(three_week_url, "rule_alerts", ", ".join(keys))
    assert_frames_match(actual, expected_rule_alerts(three_week_warehouse), keys)


def test_review_queue_health_matches_independent_recomputation(three_week_warehouse, three_week_url):
    keys = ["report_date", "severity"]
    expected = expected_review_queue_health(three_week_warehouse)
    assert expected["opened"].sum() > 0 and expected["resolved"].sum() > 0
    assert_frames_match(mart(three_week_url, "review_queue_health_daily", ", ".join(keys)), expected, keys)


# --------------------------------------------------------------------------- late data


LATE_START = datetime(2026, 11, 1, tzinfo=UTC)
MART_KEYS = {
    "team_sla_csat_rolling": ["as_of_date", "window_days", "team_id"],
    "agent_sla_csat_rolling": ["as_of_date", "window_days", "team_id", "agent_id"],
    "decision_performance_daily": ["decision_date", "rule_version", "channel_id"],
    "rule_alerts": ["as_of_date", "rule_version", "alert_trigger"],
    "review_queue_health_daily": ["report_date", "severity"],
}


def land_hours(landing: Path, start: datetime, end: datetime) -> None:
    from routerloop.landing import land

    result = land(landing=landing, start=start, end=end, progress=False, url=os.environ["ROUTERLOOP_DATABASE_URL"])
    assert result.ok, result.error


def build_sla_ops(url: str, full_refresh: bool = False, start: datetime | None = None, end=None) -> None:
    args = ["build", "--select", *SLA_OPS_SELECT]
    args += ["--indirect-selection", "cautious", *(["--full-refresh"] if full_refresh else [])]
    result = run_dbt(args, url=url, quiet=True, start=start, end=end)
    failed = [f"{r.node.unique_id}: {r.message}" for r in result.result.results if str(r.status) in FAILED]
    assert result.success and not failed, "\n".join(failed)


def utc_moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def on_day(moment: str, day: date) -> bool:
    return utc_moment(moment).date() == day


def records_on(landing: Path, stream: str, time_field: str, day: date) -> list[dict]:
    return [r for r in read_records(landing, stream) if on_day(r[time_field], day)]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def write_late_partition(landing: Path, day: date, hour: int, first_day: date) -> dict[str, int]:
    """One extra file per stream in the already-landed partition dt=day/hr=hour.

    It re-evaluates tickets and records outcomes for decisions of `first_day` (older than the lookback
    of the next run), adds ratings, decisions and review resolutions on `day`.
    """
    at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)

    late: dict[str, list[dict]] = {}
    late["sla_outcomes"] = [
        {**r, "outcome": "breach", "evaluatedAt": iso(at + timedelta(minutes=30))}
        for r in records_on(landing, "sla_outcomes", "evaluatedAt", first_day)[:40]
    ]
    late["decision_outcomes"] = [
        {
            "outcomeId": f"late_{r['decisionId']}",
            "decisionId": r["decisionId"],
            "recordedAt": iso(at + timedelta(minutes=40)),
            "outcomePositive": False,
            "outcomeType": "error",
            "source": "manual",
        }
        for r in records_on(landing, "router_decisions", "createdAt", first_day)[:60]
    ]
    late["csat_ratings"] = [
        {**r, "ratingId": f"late_{r['ratingId']}", "submittedAt": iso(at + timedelta(minutes=20))}
        for r in records_on(landing, "csat_ratings", "submittedAt", day)[:15]
    ]
    late["router_decisions"] = [
        {**r, "decisionId": f"rd_late_{r['decisionId'][3:]}", "createdAt": iso(at + timedelta(minutes=5))}
        for r in records_on(landing, "router_decisions", "createdAt", day)[:30]
    ]
    current: dict[str, dict] = {}
    for state in sorted(read_records(landing, "router_review_queue"), key=lambda r: utc_moment(r["updatedAt"])):
        if utc_moment(state["updatedAt"]) < at:
            current[state["reviewId"]] = state
    late["router_review_queue"] = [
        {
            **r,
            "updatedAt": iso(at + timedelta(minutes=50)),
            "status": "resolved",
            "resolvedAt": iso(at + timedelta(minutes=50)),
            "resolution": "late",
        }
        for r in [state for state in current.values() if state["status"] == "open"][:10]
    ]
    for stream, records in late.items():
        assert records, f"no {stream} records to copy for the late partition"
        folder = landing / stream / f"dt={day.isoformat()}" / f"hr={hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "late-delivery.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
    return {stream: len(records) for stream, records in late.items()}


def snapshot(url: str) -> dict[str, pd.DataFrame]:
    return {name: mart(url, name, ", ".join(keys)) for name, keys in MART_KEYS.items()}


def test_late_partition_then_incremental_build_equals_full_refresh(tmp_path, own_database):
    from routerloop.simulation import generate

    landing = tmp_path / "landing"
    generate(out=landing, start=LATE_START, hours=96, seed=5, decisions_per_hour=40, bad_rate=0.0)
    hour = timedelta(hours=1)
    # History of 2.5 days by a full refresh, then two incremental half days.
    land_hours(landing, LATE_START, LATE_START + 60 * hour)
    build_sla_ops(own_database, full_refresh=True)
    for begin in (LATE_START + 60 * hour, LATE_START + 72 * hour):
        land_hours(landing, begin, begin + 12 * hour)
        build_sla_ops(own_database, start=begin, end=begin + 12 * hour)
    before = snapshot(own_database)

    # A late file for hour 10 of day 3 (already landed and built) touching day-0 tickets and decisions,
    # which lie before the next run's lookback window.
    late_day, first_day = (LATE_START + 72 * hour).date(), LATE_START.date()
    written = write_late_partition(landing, late_day, 10, first_day)
    next_hour = LATE_START + 84 * hour
    land_hours(landing, LATE_START + 82 * hour, LATE_START + 83 * hour)
    land_hours(landing, next_hour, next_hour + hour)
    with db.connect(own_database) as conn:
        landed = conn.execute("select count(*) from raw.decision_outcomes where outcome_id like 'late_%'").fetchone()
    assert landed[0] == written["decision_outcomes"]
    build_sla_ops(own_database, start=next_hour, end=next_hour + hour)
    incremental = snapshot(own_database)

    # The late data reached rows older than the lookback: day-0 decisions and day-0 tickets moved.
    def day_zero(frame, column, date_column):
        return frame.loc[frame[date_column] == first_day, column].sum()

    assert day_zero(incremental["decision_performance_daily"], "with_outcome", "decision_date") != day_zero(
        before["decision_performance_daily"], "with_outcome", "decision_date"
    ) or day_zero(incremental["decision_performance_daily"], "positive_outcomes", "decision_date") != day_zero(
        before["decision_performance_daily"], "positive_outcomes", "decision_date"
    )
    team_before, team_after = before["team_sla_csat_rolling"], incremental["team_sla_csat_rolling"]
    assert day_zero(team_after, "tickets", "as_of_date") < day_zero(team_before, "tickets", "as_of_date")

    build_sla_ops(own_database, full_refresh=True, start=next_hour, end=next_hour + hour)  # same vars
    full = snapshot(own_database)
    for name, keys in MART_KEYS.items():
        assert_frames_match(incremental[name], full[name], keys)
