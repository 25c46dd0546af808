-- depends_on: {{ ref('stg_support__sla_outcomes') }}
{#-
    Running totals of resolved SLA outcomes per (team, agent, resolution-time bucket) up to each UTC
    evaluation date, with a row on every date from the pair's first resolution on. A window's
    histogram is then the difference of two days' totals, whatever the window's length.
-#}
{%- set recompute_from = sla_recompute_from_date() %}
{%- if recompute_from is not none %}
    {%- set carried_relation = this %}
    {%- set carried_column = 'resolutions_to_date' %}
    {%- set carried_filter = 'evaluated_date = (select max(kept.evaluated_date) from ' ~ this
        ~ ' as kept where kept.evaluated_date < ' ~ recompute_from ~ ')' %}
{%- else %}
    {%- set carried_relation = 'daily_resolutions' %}
    {%- set carried_column = 'resolutions' %}
    {%- set carried_filter = 'false' %}
{%- endif %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['evaluated_date'],
        on_schema_change='fail',
        indexes=[{'columns': ['evaluated_date', 'team_id', 'agent_id', 'resolve_bucket']}],
        pre_hook="{{ delete_sla_dates_to_recompute() }}",
        post_hook="{{ record_watermark() }}",
    )
}}

with

daily_resolutions as (
    select
        evaluated_date,
        team_id,
        agent_id,
        resolve_bucket,
        count(*) as resolutions
    from {{ ref('int_sla_outcomes_bucketed') }}
    where
        resolve_bucket is not null
        and {{ in_sla_recompute_window('evaluated_date') }}
    group by evaluated_date, team_id, agent_id, resolve_bucket
),

-- The totals on the last kept date before the recomputed range (every pair has a row there: rows
-- are dense up to the last date), carried into it; nothing to carry in a full build.
carried_totals as (
    select
        team_id,
        agent_id,
        resolve_bucket,
        {{ carried_column }} as resolutions_to_date
    from {{ carried_relation }}
    where {{ carried_filter }}
),

histogram_keys as (
    select
        team_id,
        agent_id,
        resolve_bucket
    from daily_resolutions
    union
    select
        team_id,
        agent_id,
        resolve_bucket
    from carried_totals
),

dates as (
    {{ date_spine(
        recompute_from if recompute_from is not none
        else '(select min(daily_resolutions.evaluated_date) from daily_resolutions)',
        '(select max(outcomes.evaluated_date) from ' ~ ref('int_sla_outcomes_bucketed') ~ ' as outcomes)',
        'evaluated_date'
    ) }}
),

accumulated as (
    select
        dates.evaluated_date,
        histogram_keys.team_id,
        histogram_keys.agent_id,
        histogram_keys.resolve_bucket,
        coalesce(carried_totals.resolutions_to_date, 0)
        + sum(coalesce(daily_resolutions.resolutions, 0)) over (
            partition by histogram_keys.team_id, histogram_keys.agent_id, histogram_keys.resolve_bucket
            order by dates.evaluated_date
        ) as resolutions_to_date
    from histogram_keys
    cross join dates
    left join carried_totals
        on
            histogram_keys.team_id = carried_totals.team_id
            and coalesce(histogram_keys.agent_id, '') = coalesce(carried_totals.agent_id, '')
            and histogram_keys.resolve_bucket = carried_totals.resolve_bucket
    left join daily_resolutions
        on
            dates.evaluated_date = daily_resolutions.evaluated_date
            and histogram_keys.team_id = daily_resolutions.team_id
            and coalesce(histogram_keys.agent_id, '') = coalesce(daily_resolutions.agent_id, '')
            and histogram_keys.resolve_bucket = daily_resolutions.resolve_bucket
)

select
    evaluated_date,
    team_id,
    agent_id,
    resolve_bucket,
    resolutions_to_date::bigint as resolutions_to_date
from accumulated
where resolutions_to_date > 0
