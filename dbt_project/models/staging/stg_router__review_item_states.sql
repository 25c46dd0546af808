{#-
    Every state of every review item: the queue is append-only and each line is the whole item as of
    its updated_at, so the history is one row per (review_id, updated_at); equal keys -> the latest
    loaded line (a correction delivered later), then the later file and line, as in
    stg_router__review_items, whose current state is this history's latest row per item.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['review_id', 'updated_at'],
        on_schema_change='fail',
        indexes=[{'columns': ['review_id', 'updated_at'], 'unique': true}, {'columns': ['file_id']}, {'columns': ['staged_at']}],
    )
}}

with

source as (
    select * from {{ source('router', 'router_review_queue') }}
    where {{ raw_rows_to_stage('router_review_queue') }}
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

candidates as (
    {{ with_current_rows(
        'renamed',
        ['review_id', 'updated_at'],
        ['loaded_at', 'file_id', 'line_number'],
        descending=true
    ) }}
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by review_id, updated_at
            order by loaded_at desc, file_id desc, line_number desc
        ) as delivery_rank
    from candidates
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
        loaded_at,
        file_id,
        line_number,
        now() as staged_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
