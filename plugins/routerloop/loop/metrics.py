"""The read-out of a simulation, from the truth of every ticket (loop.world.TicketLog).

Per strategy, per day (the day a ticket was routed) and overall: breach rate, MTTR p50 and p90
(minutes to resolve), CSAT satisfied share (ratings >= dbt var csat_satisfied_min_rating).

Against `static`, tickets are paired by id (both strategies met the same tickets):
- breach rate: the mean of the paired differences, a normal 95 % CI and a two-sided z-test p-value;
- MTTR p50 / p90: the difference of the quantiles, a 95 % percentile CI from a paired bootstrap
  (`bootstrap` resamples of the ticket pairs) and a two-sided bootstrap p-value, reported as
  1 / bootstrap when no resample crosses 0 (i.e. p < that);
- CSAT satisfied share: ratings are not paired (who rates depends on the ticket's course): a
  two-proportion difference, normal 95 % CI and z-test p-value.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def _p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def ticket_arrays(log, satisfied_min: int) -> dict:
    """Arrays of the log's tickets in id order: day, minutes, breached; and the rated ones."""
    ids = sorted(log.tickets)
    rows = [log.tickets[i] for i in ids]
    rated = [i for i in ids if i in log.ratings]
    return {
        "ids": np.array(ids),
        "day": np.array([r[0] for r in rows], dtype=int),
        "minutes": np.array([r[3] for r in rows], dtype=float),
        "breached": np.array([r[4] for r in rows], dtype=float),
        "rated_day": np.array([log.tickets[i][0] for i in rated], dtype=int),
        "satisfied": np.array([log.ratings[i] >= satisfied_min for i in rated], dtype=float),
    }


def _figures(a: dict, days: np.ndarray | None, rated_days: np.ndarray | None) -> dict:
    minutes = a["minutes"] if days is None else a["minutes"][days]
    breached = a["breached"] if days is None else a["breached"][days]
    satisfied = a["satisfied"] if rated_days is None else a["satisfied"][rated_days]
    return {
        "tickets": int(minutes.size),
        "breach_rate": float(breached.mean()) if minutes.size else None,
        "mttr_p50": float(np.quantile(minutes, 0.5)) if minutes.size else None,
        "mttr_p90": float(np.quantile(minutes, 0.9)) if minutes.size else None,
        "csat_ratings": int(satisfied.size),
        "csat_satisfied": float(satisfied.mean()) if satisfied.size else None,
    }


def figures(a: dict, n_days: int) -> dict:
    """{"overall": {...}, "days": [{...} per day]} of one strategy."""
    return {
        "overall": _figures(a, None, None),
        "days": [_figures(a, a["day"] == d, a["rated_day"] == d) for d in range(1, n_days + 1)],
    }


def _paired_mean(d: np.ndarray) -> dict:
    n = d.size
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    p = _p_two_sided(mean / se) if se > 0 else (1.0 if mean == 0 else 0.0)
    return {"diff": mean, "ci": [mean - Z95 * se, mean + Z95 * se], "p": p, "n": n}


def _two_proportions(x: np.ndarray, y: np.ndarray) -> dict:
    if not (x.size and y.size):
        return {"diff": None, "ci": [None, None], "p": None, "n": int(x.size + y.size)}
    px, py = float(x.mean()), float(y.mean())
    se = math.sqrt(px * (1 - px) / x.size + py * (1 - py) / y.size)
    pooled = (x.sum() + y.sum()) / (x.size + y.size)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / x.size + 1 / y.size))
    diff = px - py
    p = _p_two_sided(diff / se0) if se0 > 0 else 1.0
    return {"diff": diff, "ci": [diff - Z95 * se, diff + Z95 * se], "p": p, "n": int(x.size + y.size)}


def _quantile_diff(x: np.ndarray, y: np.ndarray, q: float, resamples: int, rng) -> dict:
    """Paired: x[i] and y[i] are the same ticket under the two strategies."""
    diff = float(np.quantile(x, q) - np.quantile(y, q))
    boot = np.empty(resamples)
    for b in range(resamples):
        idx = rng.integers(0, x.size, x.size)
        boot[b] = np.quantile(x[idx], q) - np.quantile(y[idx], q)
    low, high = np.quantile(boot, [0.025, 0.975])
    crossing = min(float((boot <= 0).mean()), float((boot >= 0).mean()))
    p = max(2.0 * crossing, 1.0 / resamples)
    return {"diff": diff, "ci": [float(low), float(high)], "p": min(p, 1.0), "n": int(x.size)}


def _compare(a: dict, b: dict, resamples: int, rng, day: int | None) -> dict:
    common, ia, ib = np.intersect1d(a["ids"], b["ids"], return_indices=True)
    if day is not None:
        keep = a["day"][ia] == day
        ia, ib = ia[keep], ib[keep]
    rated_a = a["satisfied"] if day is None else a["satisfied"][a["rated_day"] == day]
    rated_b = b["satisfied"] if day is None else b["satisfied"][b["rated_day"] == day]
    if ia.size < 2:
        return {"tickets": int(ia.size)}
    return {
        "tickets": int(ia.size),
        "breach_rate": _paired_mean(a["breached"][ia] - b["breached"][ib]),
        "mttr_p50": _quantile_diff(a["minutes"][ia], b["minutes"][ib], 0.5, resamples, rng),
        "mttr_p90": _quantile_diff(a["minutes"][ia], b["minutes"][ib], 0.9, resamples, rng),
        "csat_satisfied": _two_proportions(rated_a, rated_b),
    }


def compare(a: dict, baseline: dict, n_days: int, resamples: int, seed: int) -> dict:
    """Differences strategy - baseline, overall and per day (see the module)."""
    rng = np.random.default_rng(seed)
    return {
        "overall": _compare(a, baseline, resamples, rng, None),
        "days": [_compare(a, baseline, resamples, rng, d) for d in range(1, n_days + 1)],
    }
