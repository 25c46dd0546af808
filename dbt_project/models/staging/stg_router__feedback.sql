{#- One row per feedback record (first delivery of each feedback_id); decision links kept as given. Personal
    data does not pass: the actor id as its HMAC, the free text scrubbed (macros/privacy.sql). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['feedback_id'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['feedback_id'], 'unique': true},
            {'columns': ['created_at']},
            {'columns': ['decision_id']},
            {'columns': ['linked_decision_id']},
            {'columns': ['channel_id', 'conversation_id', 'thread_id', 'created_at']},
            {'columns': ['file_id']},
            {'columns': ['staged_at']},
        ],
    )
}}

with

source as (
    select * from {{ source('router', 'router_feedback') }}
    where {{ raw_rows_to_stage('router_feedback') }}
),

renamed as (
    select
        feedback_id,
        created_at,
        decision_id,
        linked_decision_id,
        source,
        -- personal data leaves raw here, before with_current_rows compares deliveries with held rows
        {{ pseudonymize('actor_id') }} as actor_hash,
        channel_id,
        conversation_id,
        thread_id,
        feedback_message_id,
        expected_tier,
        expected_action,
        reaction,
        {{ scrub_personal_text('free_text') }} as free_text,
        {{ personal_text_redactions('free_text') }} as free_text_redactions,
        latency_from_decision_sec,
        needs_review,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number
    from source
),

candidates as (
    {{ with_current_rows('renamed', ['feedback_id'], ['loaded_at', 'file_id', 'line_number']) }}
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by feedback_id
            order by loaded_at, file_id, line_number
        ) as delivery_rank
    from candidates
),

final as (
    select
        feedback_id,
        created_at,
        decision_id,
        linked_decision_id,
        source,
        actor_hash,
        channel_id,
        conversation_id,
        thread_id,
        feedback_message_id,
        expected_tier,
        expected_action,
        reaction,
        free_text,
        free_text_redactions,
        latency_from_decision_sec,
        needs_review,
        loaded_at,
        file_id,
        line_number,
        now() as staged_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
