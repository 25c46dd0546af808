{#-
    The latest SLA evaluation per (ticket, policy), materialised so that the rolling marts read date
    ranges through indexes instead of re-deduplicating staging, with each resolution time put in a
    histogram bucket: the rolling marts find exact percentiles from bucket counts, then sort only the
    values of the bucket that holds the wanted rank.
-#}
{%- set from_date = reprocess_from_date() %}
{#- The row this run replaces exists only in an incremental run. -#}
{%- set previous_date = 'previous.evaluated_date' if from_date is not none else 'cast(null as date)' %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['ticket_id', 'sla_policy'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['ticket_id', 'sla_policy'], 'unique': true},
            {'columns': ['evaluated_date']},
            {'columns': ['team_id', 'resolve_bucket', 'evaluated_date', 'resolve_minutes']},
            {'columns': ['agent_id', 'resolve_bucket', 'evaluated_date', 'resolve_minutes']},
        ],
    )
}}

with

outcomes as (
    select
        ticket_id,
        sla_policy,
        team_id,
        agent_id,
        outcome,
        evaluated_date,
        resolve_minutes::double precision as resolve_minutes
    from {{ ref('stg_support__sla_outcomes') }}
    {%- if from_date is not none %}
    -- On the timestamp (evaluated_date >= D, as an instant): an index on the raw time can serve it.
    where evaluated_at >= ({{ from_date }})::timestamp at time zone 'UTC'
    {%- endif %}
)

select
    outcomes.ticket_id,
    outcomes.sla_policy,
    outcomes.team_id,
    outcomes.agent_id,
    outcomes.outcome,
    outcomes.evaluated_date,
    outcomes.resolve_minutes,
    {{ resolve_bucket('outcomes.resolve_minutes') }} as resolve_bucket,
    -- A re-evaluation moves the ticket off an earlier date; the rolling marts recompute from there.
    case
        when {{ previous_date }} < outcomes.evaluated_date then {{ previous_date }}
    end as superseded_evaluated_date
from outcomes
{%- if from_date is not none %}
left join {{ this }} as previous
    on
        outcomes.ticket_id = previous.ticket_id
        and outcomes.sla_policy = previous.sla_policy
-- Rows of the window that are already stored unchanged are not rewritten (the result is the same).
where
    previous.ticket_id is null
    or (previous.team_id, previous.agent_id, previous.outcome, previous.evaluated_date, previous.resolve_minutes)
    is distinct from (
        outcomes.team_id, outcomes.agent_id, outcomes.outcome, outcomes.evaluated_date, outcomes.resolve_minutes
    )
{%- endif %}
