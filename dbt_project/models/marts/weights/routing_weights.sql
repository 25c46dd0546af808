{#-
    Capped routing weights: one row per as-of date x key of int_routing_weight_keys_enumerated
    (strategy of var weight_strategies x team of reference.teams x tier), every date of
    int_team_tier_performance_scored.

    score  = a strategy's configured blend of the shrunk components (weighted mean of those present);
             a strategy without components (static) has no score and a target of base.
    target = base * (score / tier-mean score)^alpha, the tier mean over the teams of the roster.
    weight = udf.routing_weight_step(previous day's weight, target, outcomes, ...): first day base,
             thin data decays toward base, deadband, step cap, floor and ceiling (macros/udf_weights.sql).

    Day d needs day d - 1, so the days are chained by a recursive CTE over the whole history; the
    model is a table and a full refresh equals any sequence of incremental runs by construction.
-#}
{%- set base = var('weights_base') | float %}
{%- set alpha = var('weights_alpha') | float %}

{{
    config(
        materialized='table',
        indexes=[{'columns': ['as_of_date', 'strategy', 'team_id', 'tier'], 'unique': true}],
    )
}}

with recursive

scored as (
    select * from {{ ref('int_team_tier_performance_scored') }}
),

weight_keys as (
    select * from {{ ref('int_routing_weight_keys_enumerated') }}
),

strategy_scores as (
    select
        scored.*,
        weight_keys.strategy,
        weight_keys.sla_share,
        weight_keys.csat_share,
        weight_keys.mttr_share,
        (
            coalesce(weight_keys.sla_share * scored.sla_shrunk, 0.0)
            + coalesce(weight_keys.csat_share * scored.csat_shrunk, 0.0)
            + coalesce(weight_keys.mttr_share * scored.mttr_shrunk, 0.0)
        ) / nullif(
            case when scored.sla_shrunk is null then 0.0 else weight_keys.sla_share end
            + case when scored.csat_shrunk is null then 0.0 else weight_keys.csat_share end
            + case when scored.mttr_shrunk is null then 0.0 else weight_keys.mttr_share end,
            0.0
        ) as score,
        weight_keys.sla_share + weight_keys.csat_share + weight_keys.mttr_share = 0.0 as is_static
    from scored
    -- scored holds every team x tier of the keys on each date
    inner join weight_keys
        on
            scored.team_id = weight_keys.team_id
            and scored.tier = weight_keys.tier
),

targets as (
    select
        *,
        case
            when is_static then {{ base }}::double precision
            when score is null or tier_mean_score is null then null
            -- every score of the tier is 0: no team is better than another
            when tier_mean_score <= 0.0 then {{ base }}::double precision
            else {{ base }} * power(score / tier_mean_score, {{ alpha }}::double precision)
        end as target_weight
    from (
        select
            *,
            {{ exact_avg('score', over='partition by as_of_date, strategy, tier') }} as tier_mean_score
        from strategy_scores
    ) as with_tier_mean
),

-- The day-by-day chain: each day's step starts from the previous day's weight of the same key.
chain (as_of_date, strategy, team_id, tier, previous_weight, weight, rules_fired) as (
    select
        targets.as_of_date,
        targets.strategy,
        targets.team_id,
        targets.tier,
        null::double precision as previous_weight,
        step.weight,
        step.rules
    from targets
    cross join lateral {{ weight_step('null::double precision', 'targets.target_weight', 'targets.outcomes') }} as step
    where targets.as_of_date = (select min(first_day.as_of_date) from targets as first_day)
    union all
    select
        targets.as_of_date,
        targets.strategy,
        targets.team_id,
        targets.tier,
        chain.weight as previous_weight,
        step.weight,
        step.rules
    from chain
    inner join targets
        on
            chain.as_of_date + 1 = targets.as_of_date
            and chain.strategy = targets.strategy
            and chain.team_id = targets.team_id
            and chain.tier = targets.tier
    cross join lateral {{ weight_step('chain.weight', 'targets.target_weight', 'targets.outcomes') }} as step
),

final as (
    select
        targets.as_of_date,
        targets.strategy,
        targets.team_id,
        targets.tier,
        chain.weight,
        chain.previous_weight,
        targets.target_weight,
        targets.score,
        targets.tier_mean_score,
        targets.outcomes,
        array_to_string(chain.rules_fired, ',') as rules_fired,
        jsonb_build_object(
            'formula', {{ weights_formula_text() }},
            'inputs', jsonb_build_object(
                'n', targets.outcomes,
                'components', jsonb_build_object(
                    'sla', jsonb_build_object(
                        'share', targets.sla_share,
                        'n', targets.outcomes,
                        'effective_n', targets.sla_effective_n,
                        'raw', targets.sla_raw,
                        'prior', targets.sla_prior,
                        'shrunk', targets.sla_shrunk
                    ),
                    'csat', jsonb_build_object(
                        'share', targets.csat_share,
                        'n', targets.csat_responses,
                        'effective_n', targets.csat_effective_n,
                        'raw', targets.csat_raw,
                        'prior', targets.csat_prior,
                        'shrunk', targets.csat_shrunk
                    ),
                    'mttr', jsonb_build_object(
                        'share', targets.mttr_share,
                        'n', targets.resolved_outcomes,
                        'effective_n', targets.mttr_effective_n,
                        'tier_median_resolve_minutes', targets.tier_median_resolve_minutes,
                        'raw', targets.mttr_raw,
                        'prior', targets.mttr_prior,
                        'shrunk', targets.mttr_shrunk
                    )
                ),
                'score', targets.score,
                'tier_mean_score', targets.tier_mean_score,
                'target', targets.target_weight,
                'previous', chain.previous_weight
            ),
            'rules_fired', to_jsonb(chain.rules_fired),
            'config', {{ weights_config_json() }}
        ) as rationale
    from targets
    inner join chain
        on
            targets.as_of_date = chain.as_of_date
            and targets.strategy = chain.strategy
            and targets.team_id = chain.team_id
            and targets.tier = chain.tier
)

select * from final
