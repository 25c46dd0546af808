"""Capped routing weights: the step function, the marts and the adjustment log.

- Property tests (hypothesis) drive udf.routing_weight_step (dbt_project/macros/udf_weights.sql, through
  the database) and its Python reference (tests/oracles/weights.py) with adversarial histories: zero counts, a
  single outcome, extreme scores, long gaps, huge volumes. Both must agree (weights within 1e-12
  relative, the same rules) and hold the invariants: first day base; finite, positive, inside floor and
  ceiling; day-to-day change within the step cap; the deadband keeps the previous weight; decay moves
  monotonically toward base.
- On the three-week warehouse: every component of int_team_tier_performance_scored is recomputed in
  pandas from the staging rows, and the weights from those scores with the Python reference; every date
  has every strategy x team x tier, bounds and caps hold; weight_adjustment_log is append-only across runs.
- In a database of its own: day-by-day incremental builds give the same weights as a full refresh.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from oracles import weights
from oracles.weights import WeightParams

from routerloop import db
from routerloop.build import run_dbt
from routerloop.config import dbt_var

REL_TOL = 1e-12  # the SQL and the Python step do the same IEEE operations in the same order
FAILED = {"error", "fail", "runtime error"}
TIERS = ("T1", "T2", "T3", "T4")
# The keys model holds the strategies of var weight_strategies: rebuilt with the weights when the var changes.
WEIGHT_MODELS = [
    "int_routing_weight_keys_enumerated", "int_team_tier_performance_scored", "routing_weights", "weight_adjustment_log"
]

# --------------------------------------------------------------------------- the step, SQL and Python

CHAIN_SQL = """
with recursive days as (
    select * from unnest(%(targets)s::float8[], %(outcomes)s::bigint[]) with ordinality as d (target, outcomes, day)
),
chain as (
    select d.day, s.weight, s.rules
    from days as d
    cross join lateral udf.routing_weight_step(
        %(start)s::float8, d.target, d.outcomes, %(base)s, %(deadband)s, %(step_cap)s,
        %(floor_ratio)s, %(ceiling_ratio)s, %(min_outcomes)s, %(half_life_days)s) as s
    where d.day = 1
    union all
    select d.day, s.weight, s.rules
    from chain as c
    inner join days as d on d.day = c.day + 1
    cross join lateral udf.routing_weight_step(
        c.weight, d.target, d.outcomes, %(base)s, %(deadband)s, %(step_cap)s,
        %(floor_ratio)s, %(ceiling_ratio)s, %(min_outcomes)s, %(half_life_days)s) as s
)
select weight, rules from chain order by day
"""


@pytest.fixture(scope="module")
def udf_conn(database_url, tmp_path_factory):
    """The session database with udf.routing_weight_step installed by the project's own macro."""
    target = tmp_path_factory.mktemp("weights_dbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(target / "target"))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        result = run_dbt(["run-operation", "install_weight_udfs"], url=database_url, quiet=True)
    assert result.success
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def sql_chain(conn, days, params: WeightParams, start: float | None = None) -> list[weights.Step]:
    """The chain of udf.routing_weight_step over days of (target, outcomes), from `start` (None: first day)."""
    rows = conn.execute(
        CHAIN_SQL,
        {
            "targets": [t for t, _ in days], "outcomes": [n for _, n in days], "start": start,
            "base": params.base, "deadband": params.deadband, "step_cap": params.step_cap,
            "floor_ratio": params.floor_ratio, "ceiling_ratio": params.ceiling_ratio,
            "min_outcomes": params.min_outcomes, "half_life_days": params.half_life_days,
        },
    ).fetchall()
    assert len(rows) == len(days), "the recursive chain lost days"
    return [weights.Step(w, tuple(r)) for w, r in rows]


def python_chain(days, params: WeightParams, start: float | None = None) -> list[weights.Step]:
    steps, previous = [], start
    for target, outcomes in days:
        result = weights.step(previous, target, outcomes, params)
        steps.append(result)
        previous = result.weight
    return steps


def close(a: float, b: float, tol: float = REL_TOL) -> bool:
    return abs(a - b) <= tol * max(abs(a), abs(b))


def assert_invariants(days, steps: list[weights.Step], params: WeightParams, start: float | None) -> None:
    """The properties of the issue, checked day by day on one chain."""
    slack = 1e-12
    previous = start
    for day, ((target, outcomes), result) in enumerate(zip(days, steps, strict=True)):
        w = result.weight
        where = f"day {day}: previous {previous!r}, target {target!r}, outcomes {outcomes}, {result}"
        assert math.isfinite(w) and w > 0, where
        assert params.floor * (1 - slack) <= w <= params.ceiling * (1 + slack), where
        if previous is None:
            assert w == params.base and result.rules == (weights.FIRST_DAY,), where
        else:
            assert abs(w / previous - 1.0) <= params.step_cap * (1 + slack) + slack, where
            thin = outcomes < params.min_outcomes or target is None or math.isnan(target)
            if thin:
                # decay: between previous and base (inclusive), never past base
                assert min(previous, params.base) * (1 - slack) <= w <= max(previous, params.base) * (1 + slack), where
                assert abs(w - params.base) <= abs(previous - params.base) * (1 + slack), where
                assert weights.DECAY in result.rules, where
                if abs(previous - params.base) > 1e-9 * params.base and params.base != previous:
                    assert abs(w - params.base) < abs(previous - params.base), where  # strictly closer
            elif previous * (1 - params.deadband) < target < previous * (1 + params.deadband):
                assert w == previous, where
                assert weights.DEADBAND in result.rules, where
            else:
                # otherwise the weight moves toward the target and never past it
                assert min(previous, target) * (1 - slack) <= w or weights.FLOOR in result.rules, where
                assert w <= max(previous, target) * (1 + slack) or weights.CEILING in result.rules, where
        previous = w


def assert_sql_matches_python(conn, days, params: WeightParams, start: float | None = None) -> list[weights.Step]:
    ours, reference = sql_chain(conn, days, params, start), python_chain(days, params, start)
    for day, (a, b) in enumerate(zip(ours, reference, strict=True)):
        assert close(a.weight, b.weight) and a.rules == b.rules, f"day {day}: SQL {a} != Python {b}"
    assert_invariants(days, reference, params, start)
    return ours


# Adversarial inputs. Targets: missing, zero, tiny, extreme, non-finite; outcome counts: none, one, the
# threshold and its neighbours, huge volumes.
TARGETS = st.one_of(
    st.none(),
    st.just(0.0),
    st.just(float("inf")),
    st.just(float("nan")),
    st.sampled_from([1e-300, 5e-324, 1e-9, 0.2, 0.98, 1.0, 1.0199999, 1.02, 1.15, 3.0, 1e9, 1e300]),
    st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
    st.floats(min_value=0.0, max_value=1e308, allow_nan=False, allow_infinity=False),
)
OUTCOMES = st.one_of(
    st.just(0), st.just(1), st.integers(min_value=0, max_value=200),
    st.sampled_from([29, 30, 31, 10**6, 10**12, 2**62]),
)
DAY = st.tuples(TARGETS, OUTCOMES)
GAP = st.integers(min_value=1, max_value=150).map(lambda n: [(None, 0)] * n)  # days without outcomes
SEGMENT = st.one_of(DAY.map(lambda d: [d]), GAP, st.tuples(DAY, st.integers(1, 40)).map(lambda t: [t[0]] * t[1]))
HISTORIES = st.lists(SEGMENT, min_size=1, max_size=25).map(lambda segments: [d for s in segments for d in s])

PARAMS = st.builds(
    WeightParams,
    base=st.one_of(st.just(1.0), st.floats(min_value=1e-3, max_value=1e3)),
    deadband=st.one_of(st.just(0.0), st.just(0.02), st.floats(min_value=0.0, max_value=0.3)),
    step_cap=st.one_of(st.just(0.15), st.floats(min_value=1e-3, max_value=0.9)),
    floor_ratio=st.one_of(st.just(0.2), st.just(1.0), st.floats(min_value=1e-3, max_value=1.0)),
    ceiling_ratio=st.one_of(st.just(3.0), st.just(1.0), st.floats(min_value=1.0, max_value=100.0)),
    min_outcomes=st.one_of(st.just(30), st.just(0), st.just(1), st.integers(min_value=0, max_value=10**7)),
    half_life_days=st.one_of(st.just(7.0), st.floats(min_value=0.05, max_value=365.0)),
)


def configured_params() -> WeightParams:
    return WeightParams.from_dbt_vars()


@settings(max_examples=250, deadline=None)
@given(days=HISTORIES, params=PARAMS)
@example(days=[(None, 0)] * 200, params=WeightParams(1.0, 0.02, 0.15, 0.2, 3.0, 30, 7.0))  # zero counts
@example(days=[(3.0, 1)] * 30, params=WeightParams(1.0, 0.02, 0.15, 0.2, 3.0, 1, 7.0))  # a single outcome
@example(days=[(1e300, 2**62)] * 40 + [(None, 0)] * 120, params=WeightParams(1.0, 0.02, 0.15, 0.2, 3.0, 30, 7.0))
@example(days=[(0.0, 10**12)] * 40 + [(None, 0)] * 120, params=WeightParams(1.0, 0.02, 0.15, 0.2, 3.0, 30, 7.0))
def test_step_chain_sql_matches_reference_and_holds_invariants(udf_conn, days, params):
    assert_sql_matches_python(udf_conn, days, params)


@settings(max_examples=200, deadline=None)
@given(
    days=HISTORIES,
    params=PARAMS,
    start_share=st.floats(min_value=0.0, max_value=1.0),
)
def test_step_from_any_weight_inside_bounds(udf_conn, days, params, start_share):
    """Chains that start mid-history from any weight inside [floor, ceiling] (as an incremental run would)."""
    start = params.floor + (params.ceiling - params.floor) * start_share
    assert_sql_matches_python(udf_conn, days, params, start=min(max(start, params.floor), params.ceiling))


@settings(max_examples=150, deadline=None)
@given(
    start_share=st.floats(min_value=0.0, max_value=1.0),
    gap=st.integers(min_value=1, max_value=400),
    params=PARAMS,
)
def test_decay_is_monotone_and_reaches_base(udf_conn, start_share, gap, params):
    """Without data the distance to base never grows, never changes sign, and with a deadband it ends at base."""
    start = min(max(params.floor + (params.ceiling - params.floor) * start_share, params.floor), params.ceiling)
    steps = assert_sql_matches_python(udf_conn, [(None, 0)] * gap, params, start=start)
    distances = [start - params.base] + [s.weight - params.base for s in steps]
    for before, after in zip(distances, distances[1:], strict=False):
        assert abs(after) <= abs(before) and before * after >= 0, distances
    # A day either multiplies the distance by the decay factor, or (capped) takes at least
    # step_cap * floor off it, or snaps to base once the decayed distance is inside the deadband: so after
    # this many days the weight must be exactly base.
    if params.deadband > 0 and distances[0] != 0:
        factor, d0 = params.decay_factor, abs(distances[0])
        geometric = max(0.0, math.log(params.deadband * params.base * factor / d0) / math.log(factor))
        needed = geometric + d0 / (params.step_cap * params.floor) + 2
        if gap > needed:
            assert steps[-1].weight == params.base, (needed, steps[-5:])


@settings(max_examples=150, deadline=None)
@given(
    histories=st.lists(
        st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9)), min_size=1, max_size=45),
        min_size=2, max_size=4,
    ),
    gaps=st.lists(st.integers(0, 60), min_size=0, max_size=3),
)
def test_outcome_histories_to_weights(udf_conn, histories, gaps):
    """Outcome counts (attained, warn, breach) per day for 2-4 teams of one tier, through the reference score
    (28-day decayed window, shrinkage, tier mean, target) and the SQL step with the configured settings."""
    params = configured_params()
    window, half_life = int(dbt_var("weights_window_days")), float(dbt_var("weights_half_life_days"))
    m, alpha = float(dbt_var("weights_prior_pseudo_count")), float(dbt_var("weights_alpha"))
    points_of = {outcome: float(p) for outcome, p in dbt_var("sla_points").items()}
    length = max(len(h) for h in histories) + sum(gaps)
    teams = []
    for history in histories:  # gaps of silent days inside every team's history, then padding
        days = list(history)
        for position, gap in zip(range(5, 10**6, 7), gaps, strict=False):
            days[position:position] = [(0, 0, 0)] * gap
        teams.append((days + [(0, 0, 0)] * length)[:length])
    targets: list[list[tuple[float | None, int]]] = [[] for _ in teams]
    for day in range(length):
        sums = []
        for days in teams:
            weight_sum = points = count = 0.0
            for age in range(min(window, day + 1)):
                attained, warn, breach = days[day - age]
                w = weights.decay_weight(age, half_life)
                weight_sum += w * (attained + warn + breach)
                points += w * (attained * points_of["attained"] + warn * points_of["warn"]
                               + breach * points_of["breach"])
                count += attained + warn + breach
            sums.append((points, weight_sum, int(count)))
        total = sum(s[1] for s in sums)
        prior = sum(s[0] for s in sums) / total if total > 0 else None
        scores = [weights.shrink(p, w, prior, m) if prior is not None else None for p, w, _ in sums]
        present = [s for s in scores if s is not None]
        tier_mean = sum(present) / len(present) if present else None
        for i, (score, (_, _, n)) in enumerate(zip(scores, sums, strict=True)):
            target = weights.target_weight(score, tier_mean, params.base, alpha)
            assert target is None or (math.isfinite(target) and target >= 0)
            targets[i].append((target, n))
    for team_days in targets:
        assert_sql_matches_python(udf_conn, team_days, params)


def test_step_rejects_invalid_settings_and_weights(udf_conn):
    good = configured_params()
    bad_settings = [
        dict(base=0.0), dict(base=float("nan")), dict(step_cap=1.0), dict(step_cap=0.0), dict(floor_ratio=0.0),
        dict(floor_ratio=1.5), dict(ceiling_ratio=0.5), dict(half_life_days=0.0),
        dict(half_life_days=0.001), dict(deadband=-0.1), dict(deadband=1.0), dict(base=1e-12), dict(ceiling_ratio=1e12),
    ]
    for change in bad_settings:
        params = WeightParams(**{**good.__dict__, **change})
        with pytest.raises(ValueError):
            weights.step(1.0, 1.0, 100, params)
        with pytest.raises(psycopg.errors.RaiseException):
            sql_chain(udf_conn, [(1.0, 100)], params, start=1.0)
    for previous in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            weights.step(previous, 1.0, 100, good)
        with pytest.raises(psycopg.errors.RaiseException):
            sql_chain(udf_conn, [(1.0, 100)], good, start=previous)


# --------------------------------------------------------------------------- the marts on three weeks


def query_frame(url: str, sql: str, params=None) -> pd.DataFrame:
    with db.connect(url) as conn:
        cursor = conn.execute(sql, params)
        return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])


def reference_grid(url: str) -> tuple[list[str], list[str]]:
    teams = query_frame(url, "select team_id from reference.teams order by team_id")["team_id"].tolist()
    tiers = query_frame(url, "select distinct tier from reference.sla_policies order by tier")["tier"].tolist()
    return teams, tiers


def test_weights_cover_every_day_within_bounds_and_caps(three_week_url):
    params = configured_params()
    strategies = list(dbt_var("weight_strategies"))
    teams, tiers = reference_grid(three_week_url)
    assert tiers == list(TIERS)
    frame = query_frame(three_week_url, "select * from marts.routing_weights order by as_of_date, strategy, team_id, tier")
    assert len(frame) > 0
    days = sorted(frame["as_of_date"].unique())
    assert days == [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    assert len(days) >= 21
    per_day = frame.groupby("as_of_date").size()
    assert (per_day == len(strategies) * len(teams) * len(tiers)).all(), per_day
    keys = frame.groupby(["as_of_date", "strategy", "team_id", "tier"]).size()
    assert (keys == 1).all()
    assert set(frame["strategy"]) == set(strategies) and set(frame["team_id"]) == set(teams)

    w = frame["weight"].to_numpy(dtype=float)
    assert np.isfinite(w).all() and (w > 0).all()
    assert (w >= params.floor * (1 - 1e-12)).all() and (w <= params.ceiling * (1 + 1e-12)).all()
    assert (frame.loc[frame["strategy"] == "static", "weight"] == params.base).all()
    assert (frame.loc[frame["as_of_date"] == days[0], "weight"] == params.base).all()
    assert frame.loc[frame["as_of_date"] == days[0], "previous_weight"].isna().all()

    # previous_weight is the previous day's weight, and the day-to-day change stays inside the cap
    indexed = frame.set_index(["as_of_date", "strategy", "team_id", "tier"])["weight"]
    later = frame[frame["as_of_date"] > days[0]]
    yesterday = indexed.reindex(
        list(zip(later["as_of_date"] - timedelta(days=1), later["strategy"], later["team_id"], later["tier"], strict=True))
    ).to_numpy(dtype=float)
    assert np.array_equal(yesterday, later["previous_weight"].to_numpy(dtype=float))
    change = np.abs(later["weight"].to_numpy(dtype=float) / yesterday - 1.0)
    assert change.max() <= params.step_cap * (1 + 1e-12), change.max()

    # the weights actually move for the strategies that have a score (the test could fail)
    moved = later[(later["strategy"] != "static") & (later["weight"] != later["previous_weight"])]
    assert len(moved) > 0
    # rationale on every row: formula, inputs, rules
    for rationale, rules in zip(frame["rationale"], frame["rules_fired"], strict=True):
        assert rationale["formula"] and set(rationale["inputs"]) >= {
            "n", "components", "score", "tier_mean_score", "target", "previous",
        }
        assert rationale["rules_fired"] == [r for r in rules.split(",") if r]
        assert set(rationale["inputs"]["components"]) == {"sla", "csat", "mttr"}
        for component in rationale["inputs"]["components"].values():
            assert {"raw", "prior", "shrunk", "n", "effective_n"} <= set(component)


def var(name: str, overrides: dict | None = None):
    """A dbt var as a run with --vars `overrides` sees it."""
    return (overrides or {}).get(name, dbt_var(name))


def recompute_scores(url: str, overrides: dict | None = None) -> pd.DataFrame:
    """int_team_tier_performance_scored recomputed in pandas from the staging views (not from the model)."""
    window, half_life = int(var("weights_window_days", overrides)), float(var("weights_half_life_days", overrides))
    m = float(var("weights_prior_pseudo_count", overrides))
    satisfied_min = int(var("csat_satisfied_min_rating", overrides))
    teams, tiers = reference_grid(url)
    sla = query_frame(
        url,
        "select ticket_id, sla_policy, team_id, tier, outcome, evaluated_at, evaluated_date, resolve_minutes"
        " from staging.stg_support__sla_outcomes",
    )
    csat = query_frame(url, "select ticket_id, team_id, rating, submitted_date from staging.stg_support__csat_ratings")
    latest = sla.sort_values(["ticket_id", "evaluated_at", "sla_policy"], ascending=[True, False, True])
    ticket_tier = latest.drop_duplicates("ticket_id").set_index("ticket_id")["tier"]
    csat = csat.assign(tier=csat["ticket_id"].map(ticket_tier)).dropna(subset=["tier"])
    sla["points"] = sla["outcome"].map({outcome: float(p) for outcome, p in dbt_var("sla_points").items()})
    csat["satisfied"] = (csat["rating"] >= satisfied_min).astype(float)
    first = min(sla["evaluated_date"].min(), csat["submitted_date"].min())
    last = max(sla["evaluated_date"].max(), csat["submitted_date"].max())
    rows = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)

        def in_window(frame, column, day=day):
            age = frame[column].map(lambda d, day=day: (day - d).days)
            part = frame[(age >= 0) & (age < window)].copy()
            part["w"] = [weights.decay_weight(a, half_life) for a in age[(age >= 0) & (age < window)]]
            return part

        s, c = in_window(sla, "evaluated_date"), in_window(csat, "submitted_date")
        resolved = s.dropna(subset=["resolve_minutes"]).copy()
        medians = resolved.groupby("tier")["resolve_minutes"].median()
        resolved["speed"] = [
            weights.mttr_speed(minutes, medians[tier]) for minutes, tier in zip(resolved["resolve_minutes"], resolved["tier"], strict=True)
        ]
        for tier in tiers:
            def prior(frame, value, tier=tier):
                part = frame[frame["tier"] == tier]
                return (part["w"] * part[value]).sum() / part["w"].sum() if part["w"].sum() > 0 else None

            priors = {"sla": prior(s, "points"), "csat": prior(c, "satisfied"), "mttr": prior(resolved, "speed")}
            for team in teams:
                row = {"as_of_date": day, "team_id": team, "tier": tier}
                for name, frame, value in (("sla", s, "points"), ("csat", c, "satisfied"), ("mttr", resolved, "speed")):
                    part = frame[(frame["tier"] == tier) & (frame["team_id"] == team)]
                    weighted, total = float((part["w"] * part[value]).sum()), float(part["w"].sum())
                    row[f"{name}_raw"] = weighted / total if total > 0 else None
                    row[f"{name}_prior"] = priors[name]
                    row[f"{name}_shrunk"] = None if priors[name] is None else weights.shrink(weighted, total, priors[name], m)
                    row[f"{name}_n"] = len(part)
                row["tier_median_resolve_minutes"] = medians.get(tier)
                rows.append(row)
    return pd.DataFrame(rows)


def assert_close_columns(ours: pd.DataFrame, reference: pd.DataFrame, columns: list[str], tol: float = 1e-9) -> None:
    for column in columns:
        a, b = ours[column].to_numpy(dtype=float), reference[column].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{column}: null pattern differs"
        mask = ~np.isnan(a)
        error = np.abs(a[mask] - b[mask]) / np.maximum(1.0, np.abs(b[mask]))
        assert error.size == 0 or error.max() <= tol, f"{column}: max relative error {error.max()}"


# Settings under which the window, the decay, the shrinkage, the thin-data rule and alpha all bind on
# three weeks of data (with the defaults the 28-day window never cuts anything off).
SHORT_WINDOW = {
    "weights_window_days": 5, "weights_half_life_days": 2.5, "weights_prior_pseudo_count": 3,
    "weights_alpha": 1.5, "weights_min_outcomes": 60, "weights_step_cap": 0.1, "weights_deadband": 0.01,
    "weight_strategies": {"static": {}, "csat": {"csat": 1.0}, "mttr_sla": {"mttr": 0.7, "sla": 0.3}},
}


@pytest.mark.slow
def test_scores_and_weights_match_python_reference(three_week_url, private_artifacts):
    assert_marts_match_reference(three_week_url)
    try:
        build_weights(three_week_url, SHORT_WINDOW)
        assert_marts_match_reference(three_week_url, SHORT_WINDOW)
        rules = query_frame(three_week_url, "select distinct rules_fired from marts.routing_weights")["rules_fired"]
        fired = {r for text in rules for r in text.split(",") if r}
        assert {"decay", "step_cap", "deadband", "first_day"} <= fired, fired
    finally:
        build_weights(three_week_url)


def assert_marts_match_reference(url: str, overrides: dict | None = None) -> None:
    keys = ["as_of_date", "team_id", "tier"]
    reference = recompute_scores(url, overrides).sort_values(keys).reset_index(drop=True)
    scored = query_frame(
        url, "select * from intermediate.int_team_tier_performance_scored order by as_of_date, team_id, tier"
    )
    assert scored[keys].equals(reference[keys])
    assert (scored["outcomes"].to_numpy() == reference["sla_n"].to_numpy()).all()
    assert (scored["csat_responses"].to_numpy() == reference["csat_n"].to_numpy()).all()
    assert (scored["resolved_outcomes"].to_numpy() == reference["mttr_n"].to_numpy()).all()
    assert_close_columns(
        scored, reference,
        [f"{c}_{k}" for c in ("sla", "csat", "mttr") for k in ("raw", "prior", "shrunk")] + ["tier_median_resolve_minutes"],
    )
    assert scored["csat_responses"].sum() > 0 and scored["resolved_outcomes"].sum() > 0

    # Scores, targets and the whole chain of weights from those scores with the Python reference.
    params, alpha = WeightParams.from_dbt_vars(overrides), float(var("weights_alpha", overrides))
    marts = query_frame(url, "select * from marts.routing_weights order by strategy, team_id, tier, as_of_date")
    by_key = scored.set_index(keys)
    strategies = var("weight_strategies", overrides)
    assert set(marts["strategy"]) == set(strategies)
    for strategy, mix in strategies.items():
        mix = mix or {}
        part = marts[marts["strategy"] == strategy]
        for (team, tier), rows in part.groupby(["team_id", "tier"], sort=False):
            days = []
            for day, score, tier_mean in zip(rows["as_of_date"], rows["score"], rows["tier_mean_score"], strict=True):
                components = {c: nan_to_none(by_key.loc[(day, team, tier), f"{c}_shrunk"]) for c in ("sla", "csat", "mttr")}
                expected_score = weights.blend(components, mix) if mix else None
                assert (expected_score is None and pd.isna(score)) or close(expected_score, score, 1e-12)
                if mix:
                    day_scores = [
                        weights.blend({c: nan_to_none(by_key.loc[(day, t, tier), f"{c}_shrunk"]) for c in components}, mix)
                        for t in scored["team_id"].unique()
                    ]
                    present = [s for s in day_scores if s is not None]
                    expected_mean = sum(present) / len(present) if present else None
                    assert (expected_mean is None and pd.isna(tier_mean)) or close(expected_mean, tier_mean, 1e-12)
                    target = weights.target_weight(nan_to_none(score), nan_to_none(tier_mean), params.base, alpha)
                else:
                    target = params.base
                days.append((target, int(by_key.loc[(day, team, tier), "outcomes"])))
            expected = python_chain(days, params)
            got = rows["weight"].to_numpy(dtype=float)
            for i, (result, rules) in enumerate(zip(expected, rows["rules_fired"], strict=True)):
                assert close(result.weight, got[i]), (strategy, team, tier, i, result, got[i])
                assert ",".join(result.rules) == rules, (strategy, team, tier, i, result, rules)
            targets = rows["target_weight"].to_numpy(dtype=float)
            for (target, _), got_target in zip(days, targets, strict=True):
                assert (target is None and math.isnan(got_target)) or close(target, got_target)


def nan_to_none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def adjustment_log(url: str) -> pd.DataFrame:
    frame = query_frame(url, "select * from marts.weight_adjustment_log")
    frame["rationale"] = frame["rationale"].map(lambda r: json.dumps(r, sort_keys=True))
    return frame.sort_values(["run_id", "as_of_date", "strategy", "team_id", "tier"]).reset_index(drop=True)


def build_weights(url: str, extra_vars: dict | None = None, full_refresh: bool = False) -> None:
    """dbt build of the weight models (with their data tests and unit tests)."""
    args = ["build", "--select", *WEIGHT_MODELS, "--vars", json.dumps(extra_vars or {})]
    result = run_dbt([*args, *(["--full-refresh"] if full_refresh else [])], url=url, quiet=True)
    failed = [f"{r.node.unique_id}: {r.message}" for r in result.result.results if str(r.status) in FAILED]
    assert result.success and not failed, "\n".join(failed)


def assert_rows_kept(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Every row of `before` is still in `after`, unchanged."""
    merged = before.merge(after, how="left", indicator=True, on=list(before.columns))
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]


@pytest.fixture
def private_artifacts(monkeypatch, tmp_path):
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt-logs"))


@pytest.mark.slow
def test_adjustment_log_is_append_only_across_runs(three_week_url, private_artifacts):
    key = ["as_of_date", "strategy", "team_id", "tier"]
    weights_before = query_frame(three_week_url, "select * from marts.routing_weights").sort_values(key)
    first = adjustment_log(three_week_url)
    # Every current change of weight is logged: the newest log row of its key holds it.
    changes = weights_before[weights_before["weight"] != weights_before["previous_weight"]].dropna(subset=["previous_weight"])
    newest = first.sort_values("logged_at").drop_duplicates(key, keep="last")
    logged = changes.merge(newest, on=key, how="left")
    assert len(changes) > 0 and logged["new_weight"].notna().all()
    assert np.allclose(logged["new_weight"], logged["weight"], rtol=1e-12, atol=0)
    assert np.allclose(logged["previous_weight_y"], logged["previous_weight_x"], rtol=1e-12, atol=0)
    assert (first["relative_change"].abs() <= float(dbt_var("weights_step_cap")) * (1 + 1e-12)).all()
    runs_before = first["run_id"].nunique()
    try:
        # A run with another alpha changes weights: their corrections are appended with the new run id.
        build_weights(three_week_url, {"weights_alpha": 2.0})
        second = adjustment_log(three_week_url)
        assert_rows_kept(first, second)
        appended = second[~second["run_id"].isin(first["run_id"])]
        assert appended["run_id"].nunique() == 1 and len(appended) > 0
        alpha_two = query_frame(three_week_url, "select * from marts.routing_weights")
        changed = alpha_two[alpha_two["weight"] != alpha_two["previous_weight"]].dropna(subset=["previous_weight"])
        assert len(appended) <= len(changed)
    finally:
        # Back to the configured settings (other tests read these weights); --full-refresh must not
        # rebuild the log.
        build_weights(three_week_url, full_refresh=True)
    third = adjustment_log(three_week_url)
    assert_rows_kept(second, third)
    assert third["run_id"].nunique() == runs_before + 2
    restored = query_frame(three_week_url, "select * from marts.routing_weights").sort_values(key)
    assert np.allclose(restored["weight"], weights_before["weight"], rtol=1e-12, atol=0)
    # Same weights again: nothing new to log.
    build_weights(three_week_url)
    assert len(adjustment_log(three_week_url)) == len(third)


# --------------------------------------------------------------------------- day by day == full refresh

DAILY_START = datetime(2026, 11, 1, tzinfo=UTC)
DAILY_DAYS = 5


def build_upstream_and_weights(url: str, start=None, end=None, full_refresh: bool = False) -> None:
    args = ["build", "--select", "+weight_adjustment_log", "--resource-type", "model"]
    # The interval as vars, the way a data engineer calls dbt by hand (routerloop passes it in the
    # environment, macros/incremental_window.sql): both must give the same weights.
    interval = {name: moment.isoformat() for name, moment in (("start", start), ("end", end)) if moment}
    args += ["--vars", json.dumps(interval)]
    result = run_dbt([*args, *(["--full-refresh"] if full_refresh else [])], url=url, quiet=True)
    failed = [f"{r.node.unique_id}: {r.message}" for r in result.result.results if str(r.status) in FAILED]
    assert result.success and not failed, "\n".join(failed)


@pytest.mark.slow
def test_day_by_day_runs_equal_full_refresh(tmp_path, own_database):
    from routerloop.landing import land
    from routerloop.simulation import generate

    landing = tmp_path / "landing"
    generate(out=landing, start=DAILY_START, hours=24 * DAILY_DAYS, seed=13, decisions_per_hour=30, bad_rate=0.0)
    logs = []
    for day in range(DAILY_DAYS):
        begin, end = DAILY_START + timedelta(days=day), DAILY_START + timedelta(days=day + 1)
        landed = land(landing=landing, start=begin, end=end, progress=False, url=own_database)
        assert landed.ok, landed.error
        build_upstream_and_weights(own_database, start=begin, end=end, full_refresh=day == 0)
        logs.append(adjustment_log(own_database))
        if day:
            assert_rows_kept(logs[-2], logs[-1])
    key = "as_of_date, strategy, team_id, tier"
    incremental = query_frame(own_database, f"select * from marts.routing_weights order by {key}")
    assert incremental["as_of_date"].nunique() >= DAILY_DAYS
    build_upstream_and_weights(own_database, full_refresh=True)
    full = query_frame(own_database, f"select * from marts.routing_weights order by {key}")
    assert incremental[key.split(", ")].equals(full[key.split(", ")])
    for column in ("weight", "previous_weight", "target_weight", "score"):
        a, b = incremental[column].to_numpy(dtype=float), full[column].to_numpy(dtype=float)
        assert np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True), column
    assert (incremental["rules_fired"] == full["rules_fired"]).all()
    # The full refresh rebuilt the weights but not the log, and logged nothing new (same weights).
    assert_rows_kept(logs[-1], adjustment_log(own_database))
    assert len(adjustment_log(own_database)) == len(logs[-1])
    assert date(2026, 11, 1) in set(full["as_of_date"])
