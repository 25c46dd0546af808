"""marts.ab_results on generated data, recomputed independently with pandas, scipy and statsmodels.

Generate -> land -> `dbt build --select +ab_results` into a database of this module's own; then every
figure of every row is recomputed from the staging views (units, windows, latest evaluations and
outcomes re-derived here, resolve minutes from the timestamps) and compared within 1e-9 (relative):
  binary      statsmodels proportions_ztest (pooled) and confint_proportions_2indep(method='wald')
  continuous  scipy.stats.ttest_ind(equal_var=False): statistic, df, pvalue, confidence_interval()
  relative    the delta-method CI, lift_rel +- q sqrt(se1^2/m0^2 + m1^2 se0^2/m0^4) (formula, q as above)
  Holm        statsmodels multipletests(method='holm') per experiment and date
  SRM         scipy.stats.chisquare on assigned tickets against the configured shares
  MDE         closed-form normal (norm.ppf(1 - alpha/2) + norm.ppf(power)) * sd0 * sqrt(1/n0 + 1/n1);
              statsmodels NormalIndPower agrees to ~2e-4 (it also counts the far rejection tail and
              solves for the effect numerically)
The verdict rule is re-implemented here too; dbt's own unit tests force each verdict on hand-built rows.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import fresh_database, pointed_at
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from routerloop import experiments
from routerloop.build import run_dbt
from routerloop.config import dbt_var

pytestmark = pytest.mark.slow

START = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = 96
DECISIONS_PER_HOUR = 80
REL_TOL = 1e-9
NUMERIC_COLUMNS = (
    "n", "mean", "sd", "se", "lift_abs", "lift_abs_ci_low", "lift_abs_ci_high", "lift_rel", "lift_rel_ci_low",
    "lift_rel_ci_high", "test_statistic", "degrees_of_freedom", "p_value", "p_value_holm", "mde", "mde_rel",
    "traffic_share", "assigned_tickets", "srm_p_value", "min_sample_per_variant", "min_relative_lift",
)
TEXT_COLUMNS = ("variant_kind", "metric_role", "metric_kind", "metric_direction", "sample_status", "verdict")
KEY = ["experiment_id", "as_of_date", "metric", "variant"]


# --------------------------------------------------------------------------- build


@pytest.fixture(scope="module")
def ab_database(database_url, tmp_path_factory):
    """A database of this module's own with a generated, landed and built A/B mart."""
    from routerloop.landing import land
    from routerloop.reference import load as load_reference
    from routerloop.simulation import generate

    work = tmp_path_factory.mktemp("ab_results")
    with fresh_database(database_url, "ab") as url:
        with pointed_at(url, work):
            generate(out=work / "landing", start=START, hours=HOURS, seed=23,
                     decisions_per_hour=DECISIONS_PER_HOUR, bad_rate=0.0, progress=False)
            load_reference(url=url)
            landed = land(landing=work / "landing", progress=False, url=url)
            assert landed.ok, landed
            # cautious: tests of staging models outside the selection (e.g. feedback relationships) stay out
            result = run_dbt(["build", "--select", "+ab_results", "--indirect-selection", "cautious"], url=url,
                             quiet=True)
            nodes = {r.node.unique_id: str(r.status) for r in result.result.results}
        yield url, result.success, nodes


@pytest.fixture(scope="module")
def ab(ab_database):
    url, success, nodes = ab_database
    assert success, {k: v for k, v in nodes.items() if v not in ("success", "pass")}
    with psycopg.connect(url) as conn:
        actual = frame(conn, "select * from marts.ab_results")
        expected = reference_results(conn)
    return actual, expected


def frame(conn, sql: str) -> pd.DataFrame:
    cursor = conn.execute(sql)
    return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])


# --------------------------------------------------------------------------- the reference computation


def utc_date(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.date


def observations(conn, config: dict[str, experiments.Experiment]) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """(observations, assigned tickets, last data date), derived from the staging views."""
    decisions = frame(conn, "select decision_id, ticket_id, experiment_id, variant, created_at"
                            " from staging.stg_router__decisions")
    decisions["decision_date"] = utc_date(decisions["created_at"])
    last_decision_date = decisions["decision_date"].max()
    windows = pd.DataFrame(
        [(e.experiment_id, v.name, e.starts_at, e.ends_at) for e in config.values() for v in e.variants],
        columns=["experiment_id", "variant", "starts_at", "ends_at"],
    )
    matched = decisions.merge(windows, on=["experiment_id", "variant"])
    created = pd.to_datetime(matched["created_at"], utc=True)
    matched = matched[(created >= matched["starts_at"]) & (created < matched["ends_at"])]

    tickets = (
        matched[matched["ticket_id"].notna()]
        .sort_values(["created_at", "decision_id"])
        .drop_duplicates(["experiment_id", "ticket_id"], keep="first")
        .rename(columns={"decision_date": "assigned_date"})[["experiment_id", "ticket_id", "variant", "assigned_date"]]
    )

    sla = frame(conn, "select ticket_id, sla_policy, outcome, opened_at, resolved_at, evaluated_at"
                      " from staging.stg_support__sla_outcomes")
    sla = sla.sort_values(["evaluated_at", "sla_policy"], ascending=[False, True]).drop_duplicates("ticket_id")
    sla["evaluated_date"] = utc_date(sla["evaluated_at"])
    resolved = sla["resolved_at"].notna()
    sla["resolve_minutes"] = np.nan
    sla.loc[resolved, "resolve_minutes"] = [
        (r - o).total_seconds() / 60.0 for r, o in zip(sla.loc[resolved, "resolved_at"], sla.loc[resolved, "opened_at"],
                                                       strict=True)
    ]
    ticket_sla = tickets.merge(sla, on="ticket_id")
    ticket_sla["observed_date"] = np.maximum(ticket_sla["assigned_date"], ticket_sla["evaluated_date"])

    ratings = frame(conn, "select rating_id, ticket_id, rating, submitted_at from staging.stg_support__csat_ratings")
    ticket_ratings = tickets.merge(ratings, on="ticket_id")
    ticket_ratings["observed_date"] = np.maximum(ticket_ratings["assigned_date"], utc_date(ticket_ratings["submitted_at"]))

    outcomes = frame(conn, "select outcome_id, decision_id, outcome_positive, recorded_at"
                           " from staging.stg_router__decision_outcomes where outcome_positive is not null")
    latest_outcome = outcomes.sort_values(["recorded_at", "outcome_id"], ascending=False).drop_duplicates("decision_id")
    decided = matched.merge(latest_outcome, on="decision_id")
    decided["observed_date"] = np.maximum(decided["decision_date"], utc_date(decided["recorded_at"]))

    satisfied_min = dbt_var("csat_satisfied_min_rating")
    parts = [
        ticket_sla.assign(metric="sla_breach", unit_id=ticket_sla["ticket_id"],
                          value=(ticket_sla["outcome"] == "breach").astype(float)),
        ticket_sla[ticket_sla["resolve_minutes"].notna()].assign(
            metric="mttr_minutes", unit_id=lambda f: f["ticket_id"], value=lambda f: f["resolve_minutes"]),
        ticket_ratings.assign(metric="csat_rating", unit_id=ticket_ratings["rating_id"],
                              value=ticket_ratings["rating"].astype(float)),
        ticket_ratings.assign(metric="csat_satisfied", unit_id=ticket_ratings["rating_id"],
                              value=(ticket_ratings["rating"] >= satisfied_min).astype(float)),
        decided.assign(metric="outcome_success", unit_id=decided["decision_id"],
                       value=decided["outcome_positive"].astype(bool).astype(float)),
    ]
    columns = ["experiment_id", "variant", "metric", "unit_id", "observed_date", "value"]
    observed = pd.concat([p[columns] for p in parts], ignore_index=True)
    last_data_date = max(last_decision_date, observed["observed_date"].max())
    return observed, tickets, last_data_date


def compare_to_control(kind: str, x1: np.ndarray, x0: np.ndarray, alpha: float, power: float) -> dict:
    """The comparison figures of one variant (values x1) against the control (values x0)."""
    n1, n0 = len(x1), len(x0)
    if n1 == 0 or n0 == 0:
        return {}
    m1, m0 = x1.mean(), x0.mean()
    if kind == "binary":
        var1, var0 = m1 * (1 - m1), m0 * (1 - m0)
    else:
        var1 = x1.var(ddof=1) if n1 > 1 else np.nan
        var0 = x0.var(ddof=1) if n0 > 1 else np.nan
    out = {"lift_abs": m1 - m0}
    q = stats.norm.ppf(1 - alpha / 2)
    if kind == "binary":
        s1, s0 = int(round(x1.sum())), int(round(x0.sum()))
        pooled = (s1 + s0) / (n1 + n0)
        if 0 < pooled < 1:
            z, p = proportions_ztest([s1, s0], [n1, n0])
            out.update(test_statistic=z, p_value=p)
        low, high = confint_proportions_2indep(s1, n1, s0, n0, method="wald", compare="diff", alpha=alpha)
        out.update(lift_abs_ci_low=low, lift_abs_ci_high=high)
    elif n1 > 1 and n0 > 1 and var1 + var0 > 0:
        test = stats.ttest_ind(x1, x0, equal_var=False)
        ci = test.confidence_interval(confidence_level=1 - alpha)
        out.update(test_statistic=test.statistic, p_value=test.pvalue, degrees_of_freedom=test.df,
                   lift_abs_ci_low=ci.low, lift_abs_ci_high=ci.high)
        q = stats.t.ppf(1 - alpha / 2, test.df)
    if m0 != 0:
        out["lift_rel"] = (m1 - m0) / m0
        if "lift_abs_ci_low" in out:
            se_rel = math.sqrt(var1 / n1 / m0**2 + m1**2 * (var0 / n0) / m0**4)
            out.update(lift_rel_ci_low=out["lift_rel"] - q * se_rel, lift_rel_ci_high=out["lift_rel"] + q * se_rel)
    if not np.isnan(var0):
        out["mde"] = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * math.sqrt(var0) * math.sqrt(1 / n0 + 1 / n1)
        if m0 != 0:
            out["mde_rel"] = out["mde"] / abs(m0)
    return out


def reference_results(conn) -> pd.DataFrame:
    config = experiments.load_experiments()
    observed, tickets, last_data_date = observations(conn, config)
    alpha, power, srm_alpha = dbt_var("ab_alpha"), dbt_var("ab_power"), dbt_var("ab_srm_alpha")
    directions = experiments.metric_directions()
    kinds = {"sla_breach": "binary", "csat_satisfied": "binary", "outcome_success": "binary",
             "mttr_minutes": "continuous", "csat_rating": "continuous"}
    rows = []
    for e in config.values():
        if not (e.enabled or (tickets["experiment_id"] == e.experiment_id).any()):
            continue
        last_window_day = (e.ends_at - timedelta(microseconds=1)).astimezone(UTC).date()
        last = min(last_window_day + timedelta(days=dbt_var("ab_settle_days")), last_data_date)
        day = e.starts_at.astimezone(UTC).date()
        while day <= last:
            rows += experiment_day(e, day, observed, tickets, kinds, directions, alpha, power, srm_alpha)
            day += timedelta(days=1)
    return pd.DataFrame(rows)


def experiment_day(e, day, observed, tickets, kinds, directions, alpha, power, srm_alpha) -> list[dict]:
    mine = observed[(observed["experiment_id"] == e.experiment_id) & (observed["observed_date"] <= day)]
    assigned = tickets[(tickets["experiment_id"] == e.experiment_id) & (tickets["assigned_date"] <= day)]
    counts = [int((assigned["variant"] == v.name).sum()) for v in e.variants]
    total = sum(counts)
    srm = stats.chisquare(counts, [total * v.traffic_share for v in e.variants]).pvalue if total else None
    rows = []
    for metric, role in e.metric_roles().items():
        values = {v.name: mine.loc[(mine["metric"] == metric) & (mine["variant"] == v.name), "value"].to_numpy()
                  for v in e.variants}
        for v, count in zip(e.variants, counts, strict=True):
            x = values[v.name]
            n = len(x)
            if kinds[metric] == "binary":
                sd = math.sqrt(x.mean() * (1 - x.mean())) if n else None
            else:
                sd = float(np.std(x, ddof=1)) if n > 1 else None
            row = {
                "experiment_id": e.experiment_id, "as_of_date": day, "metric": metric, "variant": v.name,
                "variant_kind": v.kind, "is_control": v.is_control, "metric_role": role,
                "metric_kind": kinds[metric], "metric_direction": directions[metric], "n": n,
                "mean": x.mean() if n else None, "sd": sd, "se": sd / math.sqrt(n) if sd is not None else None,
                "traffic_share": v.traffic_share, "assigned_tickets": count, "srm_p_value": srm,
                "min_sample_per_variant": e.min_sample_per_variant, "min_relative_lift": e.min_relative_lift,
                "sample_status": "sufficient" if n >= e.min_sample_per_variant else "insufficient",
            }
            if not v.is_control:
                row.update(compare_to_control(kinds[metric], x, values[e.control.name], alpha, power))
            rows.append(row)
    holm_family = [r for r in rows if not r["is_control"] and r["metric_role"] != "guardrail"
                   and r.get("p_value") is not None and not np.isnan(r["p_value"])]
    if holm_family:
        adjusted = multipletests([r["p_value"] for r in holm_family], method="holm")[1]
        for r, p in zip(holm_family, adjusted, strict=True):
            r["p_value_holm"] = p
    for v in e.variants:
        verdict = verdict_of(e, v, rows, alpha, srm_alpha)
        for r in rows:
            if r["variant"] == v.name:
                r["verdict"] = verdict
    return rows


def verdict_of(e, v, rows, alpha, srm_alpha) -> str | None:
    """The decision rule of ab_results.yml, written out again."""
    srm = rows[0]["srm_p_value"]
    if srm is not None and srm < srm_alpha:
        return "invalid_srm"
    if v.is_control:
        return None
    sign = {"higher": 1, "lower": -1}
    primary = next(r for r in rows if r["variant"] == v.name and r["metric_role"] == "primary")
    control = next(r for r in rows if r["is_control"] and r["metric_role"] == "primary")
    if primary["n"] < e.min_sample_per_variant or control["n"] < e.min_sample_per_variant:
        return "inconclusive"
    s = sign[primary["metric_direction"]]
    significant = primary.get("p_value_holm") is not None and primary["p_value_holm"] < alpha
    guardrail_worse = any(
        r["variant"] == v.name and r["metric_role"] == "guardrail" and r.get("p_value") is not None
        and r["p_value"] < alpha and sign[r["metric_direction"]] * r["lift_abs"] < 0
        for r in rows
    )
    if (significant and s * primary["lift_abs"] < 0) or guardrail_worse:
        return "keep_control"
    if significant and s * primary["lift_abs"] > 0 and s * primary.get("lift_rel", -math.inf) >= e.min_relative_lift:
        return "ship"
    if primary.get("lift_rel_ci_low") is not None and max(
        s * primary["lift_rel_ci_low"], s * primary["lift_rel_ci_high"]
    ) < e.min_relative_lift:
        return "keep_control"
    return "inconclusive"


# --------------------------------------------------------------------------- tests


def test_build_passes_with_unit_tests(ab_database):
    _, success, nodes = ab_database
    assert success, {k: v for k, v in nodes.items() if v not in ("success", "pass")}
    unit_tests = {k: v for k, v in nodes.items() if k.startswith("unit_test.") and ".ab_results." in k}
    assert len(unit_tests) == 2 and set(unit_tests.values()) == {"pass"}, unit_tests
    assert nodes["model.routerloop.ab_results"] == "success"


def test_rows_are_every_experiment_date_metric_variant(ab):
    actual, expected = ab
    assert len(expected) > 0
    assert len(actual) == len(expected)
    merged = actual[KEY].merge(expected[KEY], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert actual["as_of_date"].nunique() >= 3, "the generated data should span several dates"


def test_every_figure_matches_scipy_and_statsmodels(ab):
    actual, expected = ab
    merged = actual.merge(expected, on=KEY, suffixes=("", "_ref"))
    problems = []
    for column in NUMERIC_COLUMNS:
        ours = pd.to_numeric(merged[column], errors="coerce").astype(float).to_numpy()
        ref = pd.to_numeric(merged[f"{column}_ref"], errors="coerce").astype(float).to_numpy()
        both_null = np.isnan(ours) & np.isnan(ref)
        close = np.isclose(ours, ref, rtol=REL_TOL, atol=1e-15)
        bad = ~(both_null | close)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"{column}: {bad.sum()} rows differ, e.g. {merged.loc[i, KEY].to_dict()}: "
                            f"ours {ours[i]!r}, reference {ref[i]!r}")
    for column in TEXT_COLUMNS:
        differ = merged[column].fillna("") != merged[f"{column}_ref"].fillna("")
        if differ.any():
            i = differ.idxmax()
            problems.append(f"{column}: {differ.sum()} rows differ, e.g. {merged.loc[i, KEY].to_dict()}: "
                            f"{merged.loc[i, column]!r} vs {merged.loc[i, f'{column}_ref']!r}")
    assert not problems, "\n".join(problems)


def test_figures_are_not_vacuous(ab):
    actual, _ = ab
    treated = actual[~actual["is_control"]]
    assert treated["p_value"].notna().all(), "every comparison on a week of data should have a p-value"
    assert treated["p_value_holm"].notna().sum() == (treated["metric_role"] != "guardrail").sum()
    assert set(actual["metric_kind"]) == {"binary", "continuous"}
    assert actual["srm_p_value"].notna().all() and (actual["srm_p_value"] > dbt_var("ab_srm_alpha")).all()
    # The generator's treatment arm resolves faster and satisfies more: on the last day the primary
    # metric (sla_breach, lower is better) improves.
    last = treated[treated["as_of_date"] == treated["as_of_date"].max()]
    assert (last.loc[last["metric"] == "sla_breach", "lift_abs"] < 0).all()


def test_mde_closed_form_agrees_with_statsmodels_power(ab):
    actual, _ = ab
    alpha, power = dbt_var("ab_alpha"), dbt_var("ab_power")
    rows = actual[~actual["is_control"] & actual["mde"].notna()]
    controls = actual[actual["is_control"]].set_index(["experiment_id", "as_of_date", "metric"])
    for _, r in rows.head(20).iterrows():
        control = controls.loc[(r["experiment_id"], r["as_of_date"], r["metric"])]
        effect = NormalIndPower().solve_power(nobs1=r["n"], ratio=control["n"] / r["n"], alpha=alpha, power=power)
        assert r["mde"] == pytest.approx(effect * control["sd"], rel=1e-3)


def test_control_rows_carry_no_comparison(ab):
    actual, _ = ab
    controls = actual[actual["is_control"]]
    comparison = ["lift_abs", "lift_rel", "lift_abs_ci_low", "lift_rel_ci_high", "p_value", "p_value_holm", "mde"]
    assert controls[comparison].isna().all().all()
    assert controls["verdict"].isna().all()  # no SRM on generated data
