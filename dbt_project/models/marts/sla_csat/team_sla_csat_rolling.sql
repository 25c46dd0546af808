-- depends_on: {{ ref('stg_support__sla_outcomes') }}
-- depends_on: {{ ref('int_sla_outcomes_bucketed') }}
{#- The team rows of int_sla_csat_windows_aggregated; incremental like it (the dates it recomputed). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['as_of_date', 'window_days', 'team_id'],
        on_schema_change='fail',
        post_hook="{{ record_watermark() }}",
        indexes=[{'columns': ['as_of_date', 'window_days', 'team_id'], 'unique': true}],
    )
}}

select
    as_of_date,
    window_days,
    window_start_date,
    team_id,
    in_roster,
    tickets,
    attained,
    warn,
    breach,
    resolved_tickets,
    mttr_p50_minutes,
    mttr_p90_minutes,
    csat_responses,
    attainment_rate,
    warn_rate,
    breach_rate,
    csat_suppressed,
    csat_mean,
    csat_satisfied_pct
from {{ ref('int_sla_csat_windows_aggregated') }}
where entity_level = 'team' and {{ in_sla_recompute_window('as_of_date') }}
