{#- One row per outcome record (first delivery of each outcome_id). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['outcome_id'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['outcome_id'], 'unique': true},
            {'columns': ['decision_id']},
            {'columns': ['recorded_at']},
            {'columns': ['file_id']},
            {'columns': ['staged_at']},
        ],
    )
}}

with

source as (
    select * from {{ source('router', 'decision_outcomes') }}
    where {{ raw_rows_to_stage('decision_outcomes') }}
),

renamed as (
    select
        outcome_id,
        decision_id,
        recorded_at,
        outcome_positive,
        outcome_type,
        outcome_value,
        source,
        notes,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number
    from source
),

candidates as (
    {{ with_current_rows('renamed', ['outcome_id'], ['loaded_at', 'file_id', 'line_number']) }}
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by outcome_id
            order by loaded_at, file_id, line_number
        ) as delivery_rank
    from candidates
),

final as (
    select
        outcome_id,
        decision_id,
        recorded_at,
        outcome_positive,
        outcome_type,
        outcome_value,
        source,
        notes,
        loaded_at,
        file_id,
        line_number,
        now() as staged_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
