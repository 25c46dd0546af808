{#-
    Every team, agent, SLA policy, experiment and variant id that telemetry names, per stream: when it
    was first and last seen (the record's own time) and on how many staged rows. marts.reference_gaps
    keeps those the roster does not know. A variant id is `<experiment_id>/<variant>`.
    Incremental, so a build never rescans the whole history: an incremental run of a data interval reads
    the rows staged since this model's last run (macros/watermarks.sql) and adds them to what earlier
    runs saw; a full refresh, or a run without `start`, counts the staged rows afresh. So an SLA
    re-evaluation staged by a later run counts once more there (the staged table keeps only the latest).
-#}
{%- set changes_only = reads_changes_only() %}
{#- An incremental run adds its rows to the stored ones. -#}
{%- set first_seen = 'least(observed.first_seen, previous.first_seen)' if changes_only else 'observed.first_seen' %}
{%- set last_seen = 'greatest(observed.last_seen, previous.last_seen)' if changes_only else 'observed.last_seen' %}
{%- set seen_rows = 'observed.seen_rows + coalesce(previous.seen_rows, 0)' if changes_only else 'observed.seen_rows' %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['kind', 'id', 'stream_name'],
        on_schema_change='fail',
        indexes=[{'columns': ['kind', 'id', 'stream_name'], 'unique': true}],
        post_hook="{{ record_watermark() }}",
    )
}}

with

decisions as (
    select * from {{ ref('stg_router__decisions') }}
    {%- if changes_only %}
    where staged_at > {{ last_run_watermark() }}
    {%- endif %}
),

sla_outcomes as (
    select * from {{ ref('stg_support__sla_outcomes') }}
    {%- if changes_only %}
    where staged_at > {{ last_run_watermark() }}
    {%- endif %}
),

csat_ratings as (
    select * from {{ ref('stg_support__csat_ratings') }}
    {%- if changes_only %}
    where staged_at > {{ last_run_watermark() }}
    {%- endif %}
),

-- One pass per stream over its few id columns (grouping sets: no row multiplication).
decision_ids as (
    select
        case
            when grouping(decisions.team_id) = 0 then 'team'
            when grouping(decisions.agent_id) = 0 then 'agent'
            when grouping(decisions.experiment_id, decisions.variant) = 0 then 'variant'
            else 'experiment'
        end as kind,
        case
            when grouping(decisions.team_id) = 0 then decisions.team_id
            when grouping(decisions.agent_id) = 0 then decisions.agent_id
            when grouping(decisions.experiment_id, decisions.variant) = 0
                then decisions.experiment_id || '/' || decisions.variant
            else decisions.experiment_id
        end as id,
        'router_decisions' as stream_name,
        min(decisions.created_at) as first_seen,
        max(decisions.created_at) as last_seen,
        count(*) as seen_rows
    from decisions
    group by grouping sets (
        (decisions.team_id), (decisions.agent_id), (decisions.experiment_id),
        (decisions.experiment_id, decisions.variant)
    )
),

sla_ids as (
    select
        case
            when grouping(sla_outcomes.team_id) = 0 then 'team'
            when grouping(sla_outcomes.agent_id) = 0 then 'agent'
            else 'sla_policy'
        end as kind,
        coalesce(sla_outcomes.team_id, sla_outcomes.agent_id, sla_outcomes.sla_policy) as id,
        'sla_outcomes' as stream_name,
        min(sla_outcomes.evaluated_at) as first_seen,
        max(sla_outcomes.evaluated_at) as last_seen,
        count(*) as seen_rows
    from sla_outcomes
    group by grouping sets ((sla_outcomes.team_id), (sla_outcomes.agent_id), (sla_outcomes.sla_policy))
),

csat_ids as (
    select
        case when grouping(csat_ratings.team_id) = 0 then 'team' else 'agent' end as kind,
        coalesce(csat_ratings.team_id, csat_ratings.agent_id) as id,
        'csat_ratings' as stream_name,
        min(csat_ratings.submitted_at) as first_seen,
        max(csat_ratings.submitted_at) as last_seen,
        count(*) as seen_rows
    from csat_ratings
    group by grouping sets ((csat_ratings.team_id), (csat_ratings.agent_id))
),

observed as (
    select * from decision_ids
    where id is not null
    union all
    select * from sla_ids
    where id is not null
    union all
    select * from csat_ids
    where id is not null
),

final as (
    select
        observed.kind,
        observed.id,
        observed.stream_name,
        {{ first_seen }} as first_seen,
        {{ last_seen }} as last_seen,
        ({{ seen_rows }})::bigint as seen_rows
    from observed
    {%- if changes_only %}
    -- Added to what earlier runs saw (the stored row, looked up through the unique index).
    left join {{ this }} as previous
        on
            observed.kind = previous.kind
            and observed.id = previous.id
            and observed.stream_name = previous.stream_name
    {%- endif %}
)

select * from final
