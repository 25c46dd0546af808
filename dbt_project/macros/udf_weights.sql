{#-
    The daily step of the capped routing weights (marts.routing_weights), in schema `udf`. Created by
    an on-run-start hook like the statistics functions (create or replace, under an advisory lock).
    tests/oracles/weights.py is the Python reference of the same step; tests/test_routing_weights.py
    checks both against each other and their properties on adversarial histories.

    udf.routing_weight_step(previous, target, outcomes, base, deadband, step_cap, floor_ratio,
                            ceiling_ratio, min_outcomes, half_life_days) -> (weight, rules)
    Rules are applied in this order; `rules` lists those that fired:
      first_day    previous is null: the weight is base (nothing else applies).
      decay        outcomes < min_outcomes, or no target: candidate = base + (previous - base) * 2^(-1/half_life)
      snap_to_base (with decay) the candidate is within the deadband of base
                   (base * (1 - deadband) < candidate < base * (1 + deadband)): candidate = base
      deadband     (with a target) |target / previous - 1| < deadband, i.e.
                   previous * (1 - deadband) < target < previous * (1 + deadband): the previous weight stays
      step_cap     the candidate is more than step_cap * previous away from previous: moved to the cap
      floor        the result is below floor_ratio * base: raised to it
      ceiling      the result is above ceiling_ratio * base: lowered to it
    With previous inside [floor, ceiling] (always, once the chain starts at base) the floor and the
    ceiling move the weight back toward previous, so the step cap still holds.
-#}
{% macro create_weight_udfs() %}
{{ routerloop_lock('udf_weights') }};

create schema if not exists udf;

create or replace function udf.routing_weight_step(
    previous double precision,
    target double precision,
    outcomes bigint,
    base double precision,
    deadband double precision,
    step_cap double precision,
    floor_ratio double precision,
    ceiling_ratio double precision,
    min_outcomes bigint,
    half_life_days double precision,
    out weight double precision,
    out rules text []
)
language plpgsql immutable parallel safe
as $$
declare
    lower_bound double precision;
    upper_bound double precision;
    candidate double precision;
begin
    -- Sane limits (as in tests/oracles/weights.py WeightParams.validate), inside which no product below can
    -- overflow or underflow (PostgreSQL raises on both). PostgreSQL sorts NaN above every number, so
    -- each upper bound rejects it; `is not true` rejects nulls.
    if (base >= 1e-9 and base <= 1e9) is not true
        or (deadband >= 0.0 and deadband < 1.0) is not true
        or (step_cap > 0.0 and step_cap < 1.0) is not true
        or (floor_ratio >= 1e-9 and floor_ratio <= 1.0) is not true
        or (ceiling_ratio >= 1.0 and ceiling_ratio <= 1e9) is not true
        or min_outcomes is null
        or (half_life_days >= 0.01 and half_life_days <= 1e9) is not true then
        raise exception 'udf.routing_weight_step: invalid configuration (base %, deadband %, step_cap %, floor_ratio %, ceiling_ratio %, min_outcomes %, half_life_days %)',
            base, deadband, step_cap, floor_ratio, ceiling_ratio, min_outcomes, half_life_days;
    end if;
    if previous is not null and (previous > 0.0 and previous < 'Infinity') is not true then
        raise exception 'udf.routing_weight_step: previous weight % is not a positive finite number', previous;
    end if;
    rules := array[]::text [];
    if previous is null then
        weight := base;
        rules := array['first_day'];
        return;
    end if;
    if target = 'NaN'::double precision then
        target := null;  -- no usable score: treated like missing data
    end if;
    if coalesce(outcomes, 0) < min_outcomes or target is null then
        candidate := base + (previous - base) * power(2.0::double precision, -1.0 / half_life_days);
        rules := rules || 'decay'::text;
        if candidate > base * (1.0 - deadband) and candidate < base * (1.0 + deadband) then
            candidate := base;
            rules := rules || 'snap_to_base'::text;
        end if;
    -- |target / previous - 1| < deadband, without a division that could overflow
    elsif target > previous * (1.0 - deadband) and target < previous * (1.0 + deadband) then
        candidate := previous;
        rules := rules || 'deadband'::text;
    else
        candidate := target;
    end if;
    upper_bound := previous * (1.0 + step_cap);
    lower_bound := previous * (1.0 - step_cap);
    if candidate > upper_bound then
        candidate := upper_bound;
        rules := rules || 'step_cap'::text;
    elsif candidate < lower_bound then
        candidate := lower_bound;
        rules := rules || 'step_cap'::text;
    end if;
    if candidate < base * floor_ratio then
        candidate := base * floor_ratio;
        rules := rules || 'floor'::text;
    elsif candidate > base * ceiling_ratio then
        candidate := base * ceiling_ratio;
        rules := rules || 'ceiling'::text;
    end if;
    weight := candidate;
end
$$;
{% endmacro %}

{#- `dbt run-operation install_weight_udfs`: the same function without a dbt run. -#}
{% macro install_weight_udfs() %}
    {% do run_query(create_weight_udfs()) %}
    {% do log('routing weight functions installed in schema udf', info=true) %}
{% endmacro %}

{#- A call of udf.routing_weight_step with the configured settings (vars weights_*). -#}
{% macro weight_step(previous, target, outcomes) -%}
    udf.routing_weight_step(
        {{ previous }}, {{ target }}, {{ outcomes }},
        {{ var('weights_base') | float }}::double precision,
        {{ var('weights_deadband') | float }}::double precision,
        {{ var('weights_step_cap') | float }}::double precision,
        {{ var('weights_floor_ratio') | float }}::double precision,
        {{ var('weights_ceiling_ratio') | float }}::double precision,
        {{ var('weights_min_outcomes') | int }}::bigint,
        {{ var('weights_half_life_days') | float }}::double precision
    )
{%- endmacro %}

{#- The formula of marts.routing_weights as text, for the rationale of every row. -#}
{% macro weights_formula_text() -%}
    '{{ "w(age) = 2^(-age_days / half_life_days) over the last window_days days; "
        ~ "component = (sum(w * x) + m * prior) / (sum(w) + m) [sla: " ~ sla_points_text() ~ "; "
        ~ "csat: rating >= satisfied_min_rating; mttr: median / (median + resolve_minutes)]; "
        ~ "score = sum(share * component) / sum(share); target = base * (score / tier_mean_score)^alpha; "
        ~ "n < min_outcomes: decay toward base (previous - base) * 2^(-1 / half_life_days), snap to base "
        ~ "within the deadband; else |target / previous - 1| < deadband keeps previous; "
        ~ "change capped at step_cap * previous; then clamp to [floor_ratio, ceiling_ratio] * base; "
        ~ "first day: base" }}'
{%- endmacro %}

{#- The settings behind every weight, as a jsonb object for the rationale. -#}
{% macro weights_config_json() -%}
    jsonb_build_object(
        'base', {{ var('weights_base') | float }},
        'alpha', {{ var('weights_alpha') | float }},
        'window_days', {{ var('weights_window_days') | int }},
        'half_life_days', {{ var('weights_half_life_days') | float }},
        'prior_pseudo_count', {{ var('weights_prior_pseudo_count') | float }},
        'satisfied_min_rating', {{ var('csat_satisfied_min_rating') | int }},
        'deadband', {{ var('weights_deadband') | float }},
        'step_cap', {{ var('weights_step_cap') | float }},
        'floor_ratio', {{ var('weights_floor_ratio') | float }},
        'ceiling_ratio', {{ var('weights_ceiling_ratio') | float }},
        'min_outcomes', {{ var('weights_min_outcomes') | int }}
    )
{%- endmacro %}
