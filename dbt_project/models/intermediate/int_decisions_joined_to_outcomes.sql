{#-
    Every decision with its latest recorded outcome (greatest recorded_at; ties: latest loaded, then
    greatest outcome_id), materialised so that the decision marts re-aggregate whole days from an
    index instead of re-deduplicating staging.
    An incremental run of a data interval recomputes only the decisions staged since this model's last
    run, and those with an outcome staged since then (macros/watermarks.sql), and rewrites those that
    changed.
-#}
{%- set changes_only = reads_changes_only() %}

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
            {'columns': ['joined_at']},
        ],
        post_hook="{{ record_watermark() }}",
    )
}}

with

decisions as (
    select
        decision_id,
        decision_date,
        rule_version,
        channel_id,
        confidence,
        latency_ms
    from {{ ref('stg_router__decisions') }}
    {%- if changes_only %}
    where staged_at > {{ last_run_watermark() }}
    -- A union, not an `or`: each side uses its own index.
    union
    select
        decision_id,
        decision_date,
        rule_version,
        channel_id,
        confidence,
        latency_ms
    from {{ ref('stg_router__decisions') }}
    where decision_id = any(array(
        select changed_outcomes.decision_id
        from {{ ref('stg_router__decision_outcomes') }} as changed_outcomes
        where changed_outcomes.staged_at > {{ last_run_watermark() }}
    ))
    {%- endif %}
),

-- Every outcome of those decisions, whenever recorded (through the index on decision_id).
outcomes as (
    select
        decision_id,
        outcome_id,
        outcome_positive,
        outcome_value,
        recorded_at,
        loaded_at
    from {{ ref('stg_router__decision_outcomes') }}
    {%- if changes_only %}
    where decision_id in (select decisions.decision_id from decisions)
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
    joined.outcome_recorded_at,
    now() as joined_at
from joined
{%- if changes_only %}
-- A look-up per decision through the unique index (a join would hash every stored decision).
left join lateral (
    select
        stored.decision_id,
        stored.outcome_id,
        stored.outcome_positive,
        stored.outcome_value,
        stored.outcome_recorded_at
    from {{ this }} as stored
    where stored.decision_id = joined.decision_id
    limit 1
) as stored on true
-- Decisions already stored unchanged are not rewritten (the result is the same).
where
    stored.decision_id is null
    or (stored.outcome_id, stored.outcome_positive, stored.outcome_value, stored.outcome_recorded_at)
    is distinct from (
        joined.outcome_id, joined.outcome_positive, joined.outcome_value, joined.outcome_recorded_at
    )
{%- endif %}
