{#-
    Capped routing weights: one row per as-of date x strategy (var weight_strategies) x team
    (reference.teams) x tier, every date of int_team_tier_performance_scored.

    score  = a strategy's configured blend of the shrunk components (weighted mean of those present);
             a strategy without components (static) has no score and a target of base.
    target = base * (score / tier-mean score)^alpha, the tier mean over the teams of the seed.
    weight = udf.routing_weight_step(previous day's weight, target, outcomes, ...): first day base,
             thin data decays toward base, deadband, step cap, floor and ceiling (macros/udf_weights.sql).

    Day d needs day d - 1, so the days are chained by a recursive CTE over the whole history; the
    model is a table and a full refresh equals any sequence of incremental runs by construction.
-#}
{%- set strategies = var('weight_strategies') %}
{%- set components = ['sla', 'csat', 'mttr'] %}
{%- set base = var('weights_base') | float %}
{%- set alpha = var('weights_alpha') | float %}
{#- One row (strategy, sla_share, csat_share, mttr_share) per configured strategy; missing shares are 0. #}
{%- set strategy_rows = [] %}
{%- for name, mix in strategies.items() %}
    {%- set shares = [] %}
    {%- for component in components %}
        {%- do shares.append(((mix or {}).get(component, 0) | float) ~ '::double precision') %}
    {%- endfor %}
    {%- do strategy_rows.append("('" ~ name ~ "', " ~ shares | join(', ') ~ ")") %}
{%- endfor %}

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

strategies as (
    select
        configured.strategy,
        configured.sla_share,
        configured.csat_share,
        configured.mttr_share
    from (values {{ strategy_rows | join(', ') }}) as configured (strategy, sla_share, csat_share, mttr_share)
),

strategy_scores as (
    select
        scored.*,
        strategies.strategy,
        strategies.sla_share,
        strategies.csat_share,
        strategies.mttr_share,
        (
            coalesce(strategies.sla_share * scored.sla_shrunk, 0.0)
            + coalesce(strategies.csat_share * scored.csat_shrunk, 0.0)
            + coalesce(strategies.mttr_share * scored.mttr_shrunk, 0.0)
        ) / nullif(
            case when scored.sla_shrunk is null then 0.0 else strategies.sla_share end
            + case when scored.csat_shrunk is null then 0.0 else strategies.csat_share end
            + case when scored.mttr_shrunk is null then 0.0 else strategies.mttr_share end,
            0.0
        ) as score,
        strategies.sla_share + strategies.csat_share + strategies.mttr_share = 0.0 as is_static
    from scored
    cross join strategies
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
            avg(score) over (partition by as_of_date, strategy, tier) as tier_mean_score
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
