-- depends_on: {{ ref('stg_support__sla_outcomes') }}
{#-
    SLA outcomes per UTC evaluation date, team and agent: the additive parts of the rolling SLA figures.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['evaluated_date'],
        on_schema_change='fail',
        indexes=[{'columns': ['evaluated_date']}],
        pre_hook="{{ delete_sla_dates_to_recompute() }}",
        post_hook="{{ record_watermark() }}",
    )
}}

select
    evaluated_date,
    team_id,
    agent_id,
    count(*) as tickets,
    count(*) filter (where outcome = 'attained') as attained,
    count(*) filter (where outcome = 'warn') as warn,
    count(*) filter (where outcome = 'breach') as breach,
    count(resolve_minutes) as resolved_tickets
from {{ ref('int_sla_outcomes_bucketed') }}
where {{ in_sla_recompute_window('evaluated_date') }}
group by evaluated_date, team_id, agent_id
