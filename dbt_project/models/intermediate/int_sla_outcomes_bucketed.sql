{#-
    The latest SLA evaluation per (ticket, policy), materialised so that the rolling marts read date
    ranges through indexes instead of re-deduplicating staging, with each resolution time put in a
    histogram bucket: the rolling marts find exact percentiles from bucket counts, then sort only the
    values of the bucket that holds the wanted rank.
-#}
{%- set changes_only = reads_changes_only() %}
{#- The row this run replaces exists only in an incremental run. -#}
{%- set previous_date = 'previous.evaluated_date' if changes_only else 'cast(null as date)' %}

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
        post_hook="{{ record_watermark() }}",
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
    {%- if changes_only %}
    -- The evaluations staged since this model's last run (macros/watermarks.sql).
    where staged_at > {{ last_run_watermark() }}
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
{%- if changes_only %}
-- The row stored before this run, looked up through the unique index.
left join lateral (
    select
        stored.ticket_id,
        stored.team_id,
        stored.agent_id,
        stored.outcome,
        stored.evaluated_date,
        stored.resolve_minutes
    from {{ this }} as stored
    where stored.ticket_id = outcomes.ticket_id and stored.sla_policy = outcomes.sla_policy
    order by stored.ticket_id
    limit 1
) as previous on true
-- Rows already stored unchanged are not rewritten (the result is the same).
where
    previous.ticket_id is null
    or (previous.team_id, previous.agent_id, previous.outcome, previous.evaluated_date, previous.resolve_minutes)
    is distinct from (
        outcomes.team_id, outcomes.agent_id, outcomes.outcome, outcomes.evaluated_date, outcomes.resolve_minutes
    )
{%- endif %}
