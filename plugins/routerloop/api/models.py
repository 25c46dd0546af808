"""Response bodies of the API (they make the OpenAPI spec that schemathesis checks the app against)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class Error(BaseModel):
    detail: str = Field(description="What went wrong.")


class Health(BaseModel):
    status: str = Field(description="ok, or unavailable when the warehouse cannot be reached.")


class Weight(BaseModel):
    strategy: str
    team_id: str
    tier: str
    weight: float
    previous_weight: float | None


class Weights(BaseModel):
    weights_version: str = Field(description="As-of date and the first 12 hex digits of the rows' SHA-256.")
    as_of_date: date
    generated_at: datetime
    published_at: datetime | None = Field(description="Newest publish or rollback to this version; null if never.")
    row_count: int = Field(description="Rows of the whole version (every page).")
    sha256: str
    current: bool = Field(description="Whether this is the version the router reads now.")
    weights: list[Weight]
    next_offset: int | None = Field(description="offset of the next page; null on the last page.")


class WeightChange(BaseModel):
    run_id: str = Field(description="dbt invocation that logged the change.")
    logged_at: datetime
    as_of_date: date
    strategy: str
    team_id: str
    tier: str
    previous_weight: float
    new_weight: float
    relative_change: float | None
    rules_fired: str | None = Field(description="Step rules that fired, comma-separated ('' when none).")
    rationale: dict[str, Any] = Field(description="formula, inputs, rules_fired and config of the new weight.")


class WeightChanges(BaseModel):
    changes: list[WeightChange]
    next_offset: int | None


class Experiment(BaseModel):
    experiment_id: str
    variant_kind: str | None
    first_as_of_date: date
    last_as_of_date: date
    variants: list[str]
    control_variant: str | None
    primary_metric: str | None


class Experiments(BaseModel):
    experiments: list[Experiment]
    next_offset: int | None


class ExperimentResult(BaseModel):
    metric: str
    variant: str
    variant_kind: str | None
    is_control: bool | None
    metric_role: str | None
    metric_kind: str | None
    metric_direction: str | None
    n: int
    mean: float | None
    sd: float | None
    lift_abs: float | None
    lift_abs_ci_low: float | None
    lift_abs_ci_high: float | None
    lift_rel: float | None
    lift_rel_ci_low: float | None
    lift_rel_ci_high: float | None
    p_value: float | None
    p_value_holm: float | None
    srm_p_value: float | None
    sample_status: str | None
    verdict: str | None
    verdict_reason: str | None


class ExperimentResults(BaseModel):
    experiment_id: str
    as_of_date: date
    newest_as_of_date: date
    results: list[ExperimentResult]
    next_offset: int | None


class TeamSummary(BaseModel):
    team_id: str
    in_roster: bool
    tickets: int | None
    attainment_rate: float | None
    breach_rate: float | None
    mttr_p50_minutes: float | None
    mttr_p90_minutes: float | None
    csat_responses: int | None
    csat_suppressed: bool | None = Field(description="CSAT of fewer than csat_suppression_k responses: null figures.")
    csat_mean: float | None
    csat_satisfied_pct: float | None


class RoutingQuality(BaseModel):
    label_kind: str = Field(description="tier or action.")
    support: int | None
    accuracy: float | None
    cohen_kappa: float | None
    quadratic_weighted_kappa: float | None
    under_triage_rate: float | None
    over_triage_rate: float | None
    mean_abs_tier_distance: float | None


class Summary(BaseModel):
    as_of_date: date | None = Field(description="Last day of the window; null before the marts hold a day.")
    window_days: int
    teams: list[TeamSummary]
    routing_quality: list[RoutingQuality] = Field(
        description="The router's classification quality over all teams (marts.classification_metrics); empty "
                    "for a window the quality marts do not compute.")
