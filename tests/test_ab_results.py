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
  sequential  the asymptotic confidence sequences (Waudby-Smith et al.) written out from the paper's
              formulas here, and separately GrowthBook's gbstats SequentialTwoSidedTTest (in a venv of its
              own, tests/oracles/gbstats_reference.py) on the same sums, agreeing within 1e-6
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
from oracles.gbstats_reference import sequential_figures
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
    "p_value_seq", "p_value_seq_holm", "lift_abs_seq_ci_low", "lift_abs_seq_ci_high", "lift_rel_seq_ci_low",
    "lift_rel_seq_ci_high", "noninferiority_margin",
)
TEXT_COLUMNS = ("variant_kind", "metric_role", "metric_kind", "metric_direction", "sample_status", "verdict",
                "analysis_phase", "noninferiority_status", "decided_by", "verdict_basis")
GBSTATS_TOL = 1e-6
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
    out.update(sequential(n1, n0, m1, m0, var1, var0, alpha))
    out["gbstats_case"] = {"kind": kind, "n_a": n0, "sum_a": float(x0.sum()), "ss_a": float((x0 * x0).sum()),
                           "n_b": n1, "sum_b": float(x1.sum()), "ss_b": float((x1 * x1).sum())}
    if not np.isnan(var0):
        out["mde"] = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * math.sqrt(var0) * math.sqrt(1 / n0 + 1 / n1)
        if m0 != 0:
            out["mde_rel"] = out["mde"] / abs(m0)
    return out


def sequential(n1: int, n0: int, m1: float, m0: float, var1: float, var0: float, alpha: float) -> dict:
    """Always-valid p-value and confidence sequences: Waudby-Smith et al. 2023 (arXiv 2103.06476v7),
    eq. 9 (the half-width), eq. 155 (the p-value, from the e-value) and eq. 161 (rho for N*)."""
    big_n = n1 + n0
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / dbt_var("ab_sequential_tuning_parameter")
    scale = big_n * rho2 + 1

    def half_width(v: float) -> float:
        return math.sqrt(v * big_n) * math.sqrt(2 * scale * math.log(math.sqrt(scale) / alpha) / (big_n**2 * rho2))

    out = {}
    v_abs = var1 / n1 + var0 / n0
    if not np.isnan(v_abs) and v_abs > 0:
        d = m1 - m0
        out["p_value_seq"] = min(1.0, math.sqrt(scale) * math.exp(-rho2 * (d * d * big_n / v_abs) / (2 * scale)))
        out["lift_abs_seq_ci_low"], out["lift_abs_seq_ci_high"] = d - half_width(v_abs), d + half_width(v_abs)
        if m0 != 0:
            v_rel = var1 / (m0**2 * n1) + var0 * m1**2 / (m0**4 * n0)
            if v_rel > 0:
                rel = (m1 - m0) / m0
                out["lift_rel_seq_ci_low"], out["lift_rel_seq_ci_high"] = rel - half_width(v_rel), rel + half_width(v_rel)
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
            phase = "running" if day <= last_window_day else "final"
            rows += experiment_day(e, day, observed, tickets, kinds, directions, alpha, power, srm_alpha, phase)
            day += timedelta(days=1)
    return pd.DataFrame(rows)


def experiment_day(e, day, observed, tickets, kinds, directions, alpha, power, srm_alpha, phase) -> list[dict]:
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
                "noninferiority_margin": dbt_var("ab_noninferiority_margins")[metric] if role == "guardrail" else None,
            }
            if not v.is_control:
                row.update(compare_to_control(kinds[metric], x, values[e.control.name], alpha, power))
            rows.append(row)
    for p_column, holm_column in (("p_value", "p_value_holm"), ("p_value_seq", "p_value_seq_holm")):
        family = [r for r in rows if not r["is_control"] and r["metric_role"] != "guardrail"
                  and r.get(p_column) is not None and not np.isnan(r[p_column])]
        if family:
            adjusted = multipletests([r[p_column] for r in family], method="holm")[1]
            for r, p in zip(family, adjusted, strict=True):
                r[holm_column] = p
    decide(e, rows, alpha, srm_alpha, phase)
    return rows


def decide(e, rows, alpha, srm_alpha, phase: str) -> None:
    """The decision rule of ab_results.yml, written out again: noninferiority_status on guardrail rows,
    verdict and decided_by on the primary row of each non-control variant."""
    sign = {"higher": 1, "lower": -1}
    seq = "_seq" if phase == "running" else ""
    for r in rows:
        r["analysis_phase"] = phase
        if r["metric_role"] == "guardrail" and not r["is_control"]:
            low, high = r.get(f"lift_rel{seq}_ci_low"), r.get(f"lift_rel{seq}_ci_high")
            if low is None or high is None:
                r["noninferiority_status"] = "not_computable"
                continue
            s, margin = sign[r["metric_direction"]], r["noninferiority_margin"]
            worst, best = min(s * low, s * high), max(s * low, s * high)
            r["noninferiority_status"] = ("non_inferior" if worst > -margin else "inferior" if best < -margin
                                          else "undecided")
    control = next(r for r in rows if r["is_control"] and r["metric_role"] == "primary")
    for v in e.variants:
        if v.is_control:
            continue
        primary = next(r for r in rows if r["variant"] == v.name and r["metric_role"] == "primary")
        guardrails = [r for r in rows if r["variant"] == v.name and r["metric_role"] == "guardrail"]
        s = sign[primary["metric_direction"]]
        p_holm = primary.get(f"p_value{seq}_holm")
        significant = p_holm is not None and p_holm < alpha
        low, high = primary.get(f"lift_rel{seq}_ci_low"), primary.get(f"lift_rel{seq}_ci_high")
        srm = primary["srm_p_value"]
        if srm is not None and srm < srm_alpha:
            rule = "sample_ratio_mismatch"
        elif primary["n"] < e.min_sample_per_variant or control["n"] < e.min_sample_per_variant:
            rule = "min_sample"
        elif significant and s * primary["lift_abs"] < 0:
            rule = "primary_worse"
        elif any(g["noninferiority_status"] == "inferior" for g in guardrails):
            rule = "guardrail_inferior"
        elif significant and s * primary["lift_abs"] > 0 and s * primary.get("lift_rel", -math.inf) >= e.min_relative_lift:
            unproven = any(g["noninferiority_status"] != "non_inferior" for g in guardrails)
            rule = "guardrail_unproven" if unproven else "primary_better"
        elif low is not None and max(s * low, s * high) < e.min_relative_lift:
            rule = "primary_below_min_lift"
        elif significant and s * primary["lift_abs"] > 0:
            rule = "primary_better_below_min_lift"
        else:
            rule = "primary_not_significant"
        primary["decided_by"] = rule
        primary["verdict_basis"] = "sequential" if phase == "running" else "fixed_horizon"
        primary["verdict"] = {"sample_ratio_mismatch": "invalid_srm", "primary_worse": "keep_control",
                              "guardrail_inferior": "keep_control", "primary_better": "ship",
                              "primary_below_min_lift": "keep_control"}.get(rule, "inconclusive")


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


def test_sequential_figures_match_gbstats(ab):
    """The mart's always-valid p-value and confidence sequences are gbstats' SequentialTwoSidedTTest on the
    same sums (n, sum, sum of squares per arm), within 1e-6. gbstats returns no result when either arm has
    zero variance or the control mean is 0; the mart then still gives what is defined (checked above)."""
    actual, expected = ab
    merged = actual.merge(expected[[*KEY, "gbstats_case"]], on=KEY)
    merged = merged[merged["gbstats_case"].notna()].reset_index(drop=True)
    alpha, n_star = dbt_var("ab_alpha"), dbt_var("ab_sequential_tuning_parameter")
    reference = sequential_figures(list(merged["gbstats_case"]), alpha, n_star)
    compared, problems = 0, []
    for (_, row), figures in zip(merged.iterrows(), reference, strict=True):
        absolute, relative = figures["absolute"], figures["relative"]
        if absolute["p_value"] is None:
            continue
        pairs = [("p_value_seq", absolute["p_value"]), ("lift_abs_seq_ci_low", absolute["ci"][0]),
                 ("lift_abs_seq_ci_high", absolute["ci"][1]), ("lift_rel_seq_ci_low", relative["ci"][0]),
                 ("lift_rel_seq_ci_high", relative["ci"][1])]
        for column, want in pairs:
            got = row[column]
            if got is None or not math.isclose(float(got), want, rel_tol=GBSTATS_TOL, abs_tol=1e-12):
                problems.append(f"{column} {row[KEY].to_dict()}: ours {got!r}, gbstats {want!r}")
        compared += 1
    assert not problems, "\n".join(problems[:10])
    assert compared >= 0.9 * len(merged) and compared >= 15, (compared, len(merged))
    # not vacuous: the figures vary, some p-values are small and the sequences are wider than the fixed CIs
    treated = actual[actual["p_value_seq"].notna()]
    assert treated["p_value_seq"].min() < 0.5
    assert ((treated["lift_abs_seq_ci_high"] - treated["lift_abs_seq_ci_low"])
            > (treated["lift_abs_ci_high"] - treated["lift_abs_ci_low"])).all()


def test_verdict_only_on_the_verdict_row(ab):
    actual, _ = ab
    verdict_rows = actual[actual["verdict"].notna()]
    assert (verdict_rows["metric_role"] == "primary").all() and (~verdict_rows["is_control"]).all()
    assert verdict_rows["decided_by"].notna().all() and verdict_rows["verdict_reason"].notna().all()
    others = actual[(actual["metric_role"] != "primary") | actual["is_control"]]
    assert others[["verdict", "decided_by", "verdict_basis", "verdict_reason"]].isna().all().all()
    # the generated experiment is still running: the verdict reads the sequential figures
    assert set(verdict_rows["verdict_basis"]) == {"sequential"}
    guardrails = actual[(actual["metric_role"] == "guardrail") & ~actual["is_control"]]
    assert guardrails["noninferiority_status"].notna().all() and guardrails["noninferiority_margin"].notna().all()
