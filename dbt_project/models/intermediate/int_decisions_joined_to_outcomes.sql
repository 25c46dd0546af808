{#-
    Every decision with its latest recorded outcome (greatest recorded_at; ties: latest loaded, then
    greatest outcome_id), materialised so that the decision marts re-aggregate whole days from an
    index instead of re-deduplicating staging.
-#}
{%- set from_date = reprocess_from_date() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_id'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['decision_id'], 'unique': true},
            {'columns': ['decision_date']},
            {'columns': ['outcome_recorded_at']},
        ],
    )
}}

with

-- Each staging view is read once (a view re-deduplicates its whole raw table on every read).
outcomes as materialized (
    select
        decision_id,
        outcome_id,
        outcome_positive,
        outcome_value,
        recorded_at,
        loaded_at
    from {{ ref('stg_router__decision_outcomes') }}
),

-- An incremental run rewrites the decisions of the window and those with an outcome recorded in it
-- (a late outcome changes an older decision).
decisions as (
    select
        decision_id,
        decision_date,
        rule_version,
        channel_id,
        confidence,
        latency_ms
    from {{ ref('stg_router__decisions') }}
    {%- if from_date is not none %}
    -- On the timestamps (dates >= D, as instants): indexes on the raw times can serve them.
    where
        created_at >= ({{ from_date }})::timestamp at time zone 'UTC'
        or decision_id in (
            select outcomes.decision_id
            from outcomes
            where outcomes.recorded_at >= ({{ from_date }})::timestamp at time zone 'UTC'
        )
    {%- endif %}
),

latest_outcomes as (
    select distinct on (decision_id)
        decision_id,
        outcome_id,
        outcome_positive,
        outcome_value,
        recorded_at
    from outcomes
    {%- if from_date is not none %}
    where decision_id in (select decisions.decision_id from decisions)
    {%- endif %}
    order by decision_id asc, recorded_at desc, loaded_at desc, outcome_id desc
),

joined as (
    select
        decisions.decision_id,
        decisions.decision_date,
        decisions.rule_version,
        decisions.channel_id,
        decisions.confidence,
        decisions.latency_ms,
        latest_outcomes.outcome_id,
        latest_outcomes.outcome_positive,
        latest_outcomes.outcome_value,
        latest_outcomes.recorded_at as outcome_recorded_at
    from decisions
    left join latest_outcomes
        on decisions.decision_id = latest_outcomes.decision_id
)

select
    joined.decision_id,
    joined.decision_date,
    joined.rule_version,
    joined.channel_id,
    joined.confidence,
    joined.latency_ms,
    joined.outcome_id,
    joined.outcome_positive,
    joined.outcome_value,
    joined.outcome_recorded_at
from joined
{%- if from_date is not none %}
left join {{ this }} as stored
    on joined.decision_id = stored.decision_id
-- Decisions already stored unchanged are not rewritten (the result is the same).
where
    stored.decision_id is null
    or (stored.outcome_id, stored.outcome_positive, stored.outcome_value, stored.outcome_recorded_at)
    is distinct from (
        joined.outcome_id, joined.outcome_positive, joined.outcome_value, joined.outcome_recorded_at
    )
{%- endif %}
