{#-
    Current state of every review item: the queue is append-only, each line is the whole item as of its
    updated_at, so the line with the latest updated_at wins; equal updated_at -> the latest loaded line
    (a correction delivered later), then the later file and line.
-#}
with

source as (
    select * from {{ source('router', 'router_review_queue') }}
),

renamed as (
    select
        review_id,
        created_at,
        updated_at,
        linked_decision_id,
        feedback_id,
        severity,
        reason,
        status,
        resolved_at,
        resolution,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number
    from source
),

current_state as (
    select
        *,
        row_number() over (
            partition by review_id
            order by updated_at desc, loaded_at desc, file_id desc, line_number desc
        ) as state_rank
    from renamed
),

final as (
    select
        review_id,
        created_at,
        updated_at,
        linked_decision_id,
        feedback_id,
        severity,
        reason,
        status,
        resolved_at,
        resolution,
        loaded_at
    from current_state
    where state_rank = 1
)

select * from final
