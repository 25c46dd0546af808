-- depends_on: {{ ref('stg_support__sla_outcomes') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['as_of_date', 'window_days', 'team_id', 'agent_id'],
        on_schema_change='fail',
        pre_hook='set local jit = off',
        post_hook="{{ record_watermark() }}",
        indexes=[{'columns': ['as_of_date', 'window_days', 'team_id', 'agent_id'], 'unique': true}],
    )
}}

{#- pre_hook: many small CTEs mislead the cost estimates into JIT-compiling for seconds on servers
    with JIT. -#}
{#- The definition is shared with the team mart: macros/sla_csat_rolling.sql. #}
{{ sla_csat_rolling('agent') }}
