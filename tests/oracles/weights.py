"""Test oracle: a reference implementation of the capped routing weights, pure Python (no database).

marts.routing_weights computes the same in SQL: the daily step is udf.routing_weight_step
(dbt_project/macros/udf_weights.sql), the score and the target are in
int_team_tier_performance_scored and routing_weights.sql. tests/test_routing_weights.py drives both
with adversarial histories and compares them. The settings are the dbt vars weights_* (dbt_project.yml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from routerloop.config import dbt_var

# Rule names, in the order the step applies them (they appear in rationale.rules_fired).
FIRST_DAY, DECAY, SNAP_TO_BASE, DEADBAND, STEP_CAP, FLOOR, CEILING = (
    "first_day", "decay", "snap_to_base", "deadband", "step_cap", "floor", "ceiling",
)


@dataclass(frozen=True)
class WeightParams:
    base: float
    deadband: float
    step_cap: float
    floor_ratio: float
    ceiling_ratio: float
    min_outcomes: int
    half_life_days: float

    @classmethod
    def from_dbt_vars(cls, overrides: dict | None = None) -> WeightParams:
        """The configured settings; `overrides` are --vars given to dbt on top of dbt_project.yml."""
        overrides = overrides or {}

        def var(name: str):
            return overrides[name] if name in overrides else dbt_var(name)

        return cls(
            base=float(var("weights_base")),
            deadband=float(var("weights_deadband")),
            step_cap=float(var("weights_step_cap")),
            floor_ratio=float(var("weights_floor_ratio")),
            ceiling_ratio=float(var("weights_ceiling_ratio")),
            min_outcomes=int(var("weights_min_outcomes")),
            half_life_days=float(var("weights_half_life_days")),
        )

    @property
    def floor(self) -> float:
        return self.base * self.floor_ratio

    @property
    def ceiling(self) -> float:
        return self.base * self.ceiling_ratio

    @property
    def decay_factor(self) -> float:
        """The share of the distance to base kept after one day: 2^(-1 / half-life)."""
        return 2.0 ** (-1.0 / self.half_life_days)

    def validate(self) -> None:
        """The same limits as udf.routing_weight_step: inside them no step can overflow or underflow."""
        if not (
            1e-9 <= self.base <= 1e9 and 0.0 <= self.deadband < 1.0 and 0.0 < self.step_cap < 1.0
            and 1e-9 <= self.floor_ratio <= 1.0 and 1.0 <= self.ceiling_ratio <= 1e9
            and 0.01 <= self.half_life_days <= 1e9
        ):
            raise ValueError(f"invalid routing weight configuration: {self}")


@dataclass(frozen=True)
class Step:
    weight: float
    rules: tuple[str, ...]


def step(previous: float | None, target: float | None, outcomes: int | None, params: WeightParams) -> Step:
    """One day of one (strategy, team, tier): the same rules, in the same order, as udf.routing_weight_step."""
    params.validate()
    if previous is not None and not (previous > 0 and math.isfinite(previous)):
        raise ValueError(f"previous weight {previous!r} is not a positive finite number")
    if previous is None:
        return Step(params.base, (FIRST_DAY,))
    if target is not None and math.isnan(target):
        target = None
    rules: list[str] = []
    if (outcomes or 0) < params.min_outcomes or target is None:
        candidate = params.base + (previous - params.base) * params.decay_factor
        rules.append(DECAY)
        if params.base * (1.0 - params.deadband) < candidate < params.base * (1.0 + params.deadband):
            candidate = params.base
            rules.append(SNAP_TO_BASE)
    elif previous * (1.0 - params.deadband) < target < previous * (1.0 + params.deadband):
        candidate = previous
        rules.append(DEADBAND)
    else:
        candidate = target
    upper, lower = previous * (1.0 + params.step_cap), previous * (1.0 - params.step_cap)
    if candidate > upper:
        candidate = upper
        rules.append(STEP_CAP)
    elif candidate < lower:
        candidate = lower
        rules.append(STEP_CAP)
    if candidate < params.floor:
        candidate = params.floor
        rules.append(FLOOR)
    elif candidate > params.ceiling:
        candidate = params.ceiling
        rules.append(CEILING)
    return Step(candidate, tuple(rules))


def decay_weight(age_days: float, half_life_days: float) -> float:
    """Weight of an outcome age_days old in the score: 2^(-age / half-life)."""
    return 2.0 ** (-age_days / half_life_days)


def shrink(weighted_sum: float, weight_total: float, prior: float | None, pseudo_count: float) -> float | None:
    """Empirical-Bayes shrinkage of a decayed mean toward the tier-wide prior with pseudo-count m."""
    if prior is None:
        return None if weight_total <= 0 else weighted_sum / weight_total
    return (weighted_sum + pseudo_count * prior) / (weight_total + pseudo_count)


def mttr_speed(resolve_minutes: float, tier_median_minutes: float) -> float:
    """Resolution time relative to the tier median, made 'higher is better' and bounded:
    median / (median + minutes) = 1 / (1 + minutes / median): 1 when instant, 0.5 at the median, -> 0 when slow."""
    minutes = max(resolve_minutes, 0.0)
    if minutes == 0.0:
        return 1.0
    return tier_median_minutes / (tier_median_minutes + minutes)


def blend(components: dict[str, float | None], mix: dict[str, float]) -> float | None:
    """A strategy's score: the configured weighted mean of the components that have a value."""
    present = {name: share for name, share in mix.items() if components.get(name) is not None and share > 0}
    total = sum(present.values())
    if total <= 0:
        return None
    return sum(share * components[name] for name, share in present.items()) / total


def target_weight(score: float | None, tier_mean_score: float | None, base: float, alpha: float) -> float | None:
    """base * (score / tier-mean score)^alpha; a tier whose scores are all 0 gives every team base."""
    if score is None or tier_mean_score is None:
        return None
    if tier_mean_score <= 0:
        return base
    return base * (score / tier_mean_score) ** alpha
