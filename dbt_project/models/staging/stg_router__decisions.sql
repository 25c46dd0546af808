{#- One row per routing decision (first delivery of each decision_id), with its UTC decision date. -#}
with

source as (
    select * from {{ source('router', 'router_decisions') }}
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

deduplicated as (
    select
        *,
        row_number() over (
            partition by decision_id
            order by loaded_at, file_id, line_number
        ) as delivery_rank
    from renamed
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
        loaded_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
