{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_date', 'rule_version', 'channel_id'],
        on_schema_change='fail',
        indexes=[{'columns': ['decision_date', 'rule_version', 'channel_id'], 'unique': true}],
    )
}}

{#-
    An outcome recorded late changes the row of its decision's date, which may lie before the
    reprocess window: an incremental run therefore also recomputes every decision date that has a
    decision whose latest outcome was recorded inside the window, so incremental runs equal a full
    refresh.
-#}
{%- set from_date = reprocess_from_date() %}

with

{% if from_date is not none -%}
dates_to_recompute as (
    select decision_date
    from {{ ref('int_decisions_joined_to_outcomes') }}
    where
        decision_date >= {{ from_date }}
        or outcome_recorded_at >= cast({{ from_date }} as timestamp) at time zone 'UTC'
    group by decision_date
),

{% endif -%}
decisions as (
    select
        decision_date,
        rule_version,
        channel_id,
        confidence,
        latency_ms,
        outcome_positive,
        outcome_value
    from {{ ref('int_decisions_joined_to_outcomes') }}
    {%- if from_date is not none %}
    where decision_date = any(array(select dates_to_recompute.decision_date from dates_to_recompute))
    {%- endif %}
),

aggregated as (
    select
        decision_date,
        rule_version,
        channel_id,
        count(*) as total_decisions,
        count(outcome_positive) as with_outcome,
        count(*) filter (where outcome_positive) as positive_outcomes,
        count(confidence) as decisions_with_confidence,
        {{ exact_avg('confidence') }} as avg_confidence,
        count(latency_ms) as decisions_with_latency,
        {{ exact_avg('latency_ms') }} as avg_latency_ms,
        count(outcome_value) as outcomes_with_value,
        {{ exact_avg('outcome_value') }} as avg_outcome_value
    from decisions
    group by decision_date, rule_version, channel_id
)

select
    decision_date,
    rule_version,
    channel_id,
    total_decisions,
    with_outcome,
    positive_outcomes,
    decisions_with_confidence,
    avg_confidence,
    decisions_with_latency,
    avg_latency_ms,
    outcomes_with_value,
    avg_outcome_value,
    total_decisions - with_outcome as pending_outcomes,
    positive_outcomes::double precision / nullif(with_outcome, 0) as success_rate
from aggregated
