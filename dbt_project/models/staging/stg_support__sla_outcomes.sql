{#-
    Latest SLA evaluation per (ticket_id, sla_policy): a later evaluated_at supersedes an earlier one;
    equal evaluated_at -> the latest loaded line, then the later file and line. Adds the UTC evaluation
    date and the resolution time in minutes (null while unresolved).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['ticket_id', 'sla_policy'],
        on_schema_change='fail',
        indexes=[{'columns': ['ticket_id', 'sla_policy'], 'unique': true}, {'columns': ['evaluated_at']}, {'columns': ['file_id']}, {'columns': ['staged_at']}],
    )
}}

with

source as (
    select * from {{ source('support', 'sla_outcomes') }}
    where {{ raw_rows_to_stage('sla_outcomes') }}
),

renamed as (
    select
        ticket_id,
        decision_id,
        team_id,
        agent_id,
        tier,
        sla_policy,
        opened_at,
        first_response_at,
        resolved_at,
        target_resolve_by,
        outcome,
        evaluated_at,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number,
        (evaluated_at at time zone 'UTC')::date as evaluated_date,
        (extract(epoch from resolved_at - opened_at) / 60)::double precision as resolve_minutes
    from source
),

candidates as (
    {{ with_current_rows(
        'renamed',
        ['ticket_id', 'sla_policy'],
        ['evaluated_at', 'loaded_at', 'file_id', 'line_number'],
        descending=true
    ) }}
),

latest_evaluation as (
    select
        *,
        row_number() over (
            partition by ticket_id, sla_policy
            order by evaluated_at desc, loaded_at desc, file_id desc, line_number desc
        ) as evaluation_rank
    from candidates
),

final as (
    select
        ticket_id,
        decision_id,
        team_id,
        agent_id,
        tier,
        sla_policy,
        opened_at,
        first_response_at,
        resolved_at,
        target_resolve_by,
        outcome,
        evaluated_at,
        evaluated_date,
        resolve_minutes,
        loaded_at,
        file_id,
        line_number,
        now() as staged_at
    from latest_evaluation
    where evaluation_rank = 1
)

select * from final
