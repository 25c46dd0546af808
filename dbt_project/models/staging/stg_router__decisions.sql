{#- One row per routing decision (first delivery of each decision_id), with its UTC decision date. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_id'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['decision_id'], 'unique': true},
            {'columns': ['created_at']},
            {'columns': ['channel_id', 'conversation_id', 'thread_id', 'created_at', 'decision_id']},
            {'columns': ['file_id']},
            {'columns': ['staged_at']},
        ],
    )
}}

with

source as (
    select * from {{ source('router', 'router_decisions') }}
    where {{ raw_rows_to_stage('router_decisions') }}
),

renamed as (
    select
        decision_id,
        created_at,
        channel_id,
        conversation_id,
        thread_id,
        input_message_id,
        outcome_message_id,
        ticket_id,
        predicted_tier,
        predicted_action,
        confidence,
        reason_tags,
        team_id,
        agent_id,
        rule_version,
        experiment_id,
        variant,
        weights_version,
        latency_ms,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number,
        (created_at at time zone 'UTC')::date as decision_date
    from source
),

candidates as (
    {{ with_current_rows('renamed', ['decision_id'], ['loaded_at', 'file_id', 'line_number']) }}
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by decision_id
            order by loaded_at, file_id, line_number
        ) as delivery_rank
    from candidates
),

final as (
    select
        decision_id,
        created_at,
        channel_id,
        conversation_id,
        thread_id,
        input_message_id,
        outcome_message_id,
        ticket_id,
        predicted_tier,
        predicted_action,
        confidence,
        reason_tags,
        team_id,
        agent_id,
        rule_version,
        experiment_id,
        variant,
        weights_version,
        latency_ms,
        decision_date,
        loaded_at,
        file_id,
        line_number,
        now() as staged_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
