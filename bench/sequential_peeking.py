"""False positives under daily looking: the fixed-horizon test against the sequential one (issue 13 §2).

A/A experiments (both arms share one true breach rate, so every `ship` is a false positive), looked at
once a day for --days days, cumulative like marts.ab_results. Counts the share of experiments in which
at least one daily look has p < alpha: with the fixed-horizon two-proportion z-test (the mart's
`p_value`), and with the always-valid p-value (`p_value_seq`: gbstats' asymptotic confidence sequences,
the formula of int_experiment_variants_compared.sql with N* = dbt var ab_sequential_tuning_parameter).
Also prints the half-width of the confidence sequence against the fixed CI on the last day.

    PYTHONPATH=plugins .venv/bin/python bench/sequential_peeking.py [--runs 4000] [--days 14]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from routerloop.config import dbt_var


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=150, help="units per arm and day")
    parser.add_argument("--rate", type=float, default=0.2, help="true breach rate of both arms")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    alpha, n_star = float(dbt_var("ab_alpha")), float(dbt_var("ab_sequential_tuning_parameter"))
    rng = np.random.default_rng(args.seed)
    days = np.arange(1, args.days + 1)
    n = days * args.per_day  # units per arm after each day
    s1 = rng.binomial(args.per_day, args.rate, size=(args.runs, args.days)).cumsum(axis=1)
    s0 = rng.binomial(args.per_day, args.rate, size=(args.runs, args.days)).cumsum(axis=1)
    m1, m0 = s1 / n, s0 / n
    diff = m1 - m0
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (s1 + s0) / (2 * n)
        p_fixed = 2 * stats.norm.sf(np.abs(diff) / np.sqrt(pooled * (1 - pooled) * 2 / n))
        v = (m1 * (1 - m1) + m0 * (1 - m0)) / n
        big_n = 2 * n
        rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / n_star
        scale = big_n * rho2 + 1
        p_seq = np.minimum(1.0, np.sqrt(scale) * np.exp(-rho2 * diff**2 * big_n / v / (2 * scale)))
    fixed_fp = np.nanmin(p_fixed, axis=1) < alpha
    seq_fp = np.nanmin(p_seq, axis=1) < alpha
    last_fixed_fp = p_fixed[:, -1] < alpha
    half_fixed = stats.norm.ppf(1 - alpha / 2)
    half_seq = np.sqrt(big_n[-1]) * np.sqrt(2 * scale[-1] * np.log(np.sqrt(scale[-1]) / alpha)
                                           / (big_n[-1] ** 2 * rho2))
    print(f"A/A experiments: {args.runs}, {args.days} daily looks, {args.per_day} units per arm and day, "
          f"rate {args.rate}, alpha {alpha}, N* {n_star:g}")
    print(f"fixed horizon, one look on the last day:  false-positive rate {last_fixed_fp.mean():.3f}")
    print(f"fixed horizon, ship on the first p<alpha: false-positive rate {fixed_fp.mean():.3f}")
    print(f"sequential,    ship on the first p<alpha: false-positive rate {seq_fp.mean():.3f}")
    print(f"last day (N = {big_n[-1]}): confidence sequence / fixed CI half-width = {half_seq / half_fixed:.2f}")


if __name__ == "__main__":
    main()
