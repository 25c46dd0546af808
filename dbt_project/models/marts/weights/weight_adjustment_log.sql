{#-
    Append-only log of weight adjustments: every run appends one row per (as_of_date, strategy, team,
    tier) of marts.routing_weights whose weight differs from its previous day's weight and is not yet
    logged with these previous and new weights (a recomputed day, e.g. after late data, is logged again
    as a correction). Rows are never updated or deleted: `append` strategy, and full_refresh=false
    keeps --full-refresh from rebuilding it.
-#}
{#- Weights recomputed from the same inputs can differ in the last bits (aggregation order); a
    relative difference below this is the same weight, not a correction. -#}
{%- set same_weight_tolerance = 1e-12 %}

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='fail',
        indexes=[{'columns': ['as_of_date', 'strategy', 'team_id', 'tier']}, {'columns': ['run_id']}],
    )
}}

with

routing_weights as (
    select * from {{ ref('routing_weights') }}
),

changed as (
    select *
    from routing_weights
    where previous_weight is not null and weight != previous_weight
),

-- The newest logged row of every key (none before the first run).
latest_logged as (
    {%- if is_incremental() %}
        select distinct on (as_of_date, strategy, team_id, tier)
            as_of_date,
            strategy,
            team_id,
            tier,
            previous_weight,
            new_weight
        from {{ this }}
        order by as_of_date asc, strategy asc, team_id asc, tier asc, logged_at desc
    {%- else %}
        select
            null::date as as_of_date,
            null::text as strategy,
            null::text as team_id,
            null::text as tier,
            null::double precision as previous_weight,
            null::double precision as new_weight
        where false
    {%- endif %}
),

final as (
    select
        '{{ invocation_id }}'::text as run_id,
        '{{ run_started_at.isoformat() }}'::timestamptz as logged_at,
        changed.as_of_date,
        changed.strategy,
        changed.team_id,
        changed.tier,
        changed.previous_weight,
        changed.weight as new_weight,
        changed.weight / changed.previous_weight - 1.0 as relative_change,
        changed.rules_fired,
        changed.rationale
    from changed
    left join latest_logged
        on
            changed.as_of_date = latest_logged.as_of_date
            and changed.strategy = latest_logged.strategy
            and changed.team_id = latest_logged.team_id
            and changed.tier = latest_logged.tier
    where
        latest_logged.as_of_date is null
        or abs(changed.weight - latest_logged.new_weight)
        > {{ same_weight_tolerance }} * abs(latest_logged.new_weight)
        or abs(changed.previous_weight - latest_logged.previous_weight)
        > {{ same_weight_tolerance }} * abs(latest_logged.previous_weight)
)

select * from final
