{#-
    Current state of every review item: the queue is append-only, each line is the whole item as of its
    updated_at, so the line with the latest updated_at wins; equal updated_at -> the latest loaded line
    (a correction delivered later), then the later file and line.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['review_id'],
        on_schema_change='fail',
        indexes=[{'columns': ['review_id'], 'unique': true}, {'columns': ['updated_at']}, {'columns': ['file_id']}, {'columns': ['staged_at']}],
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
        ['review_id'],
        ['updated_at', 'loaded_at', 'file_id', 'line_number'],
        descending=true
    ) }}
),

current_state as (
    select
        *,
        row_number() over (
            partition by review_id
            order by updated_at desc, loaded_at desc, file_id desc, line_number desc
        ) as state_rank
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
    from current_state
    where state_rank = 1
)

select * from final
