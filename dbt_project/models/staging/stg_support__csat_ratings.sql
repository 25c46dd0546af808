{#- One row per CSAT rating (first delivery of each rating_id), with its UTC submission date. Personal data
    does not pass: the customer id as its HMAC, no email, the comment scrubbed (macros/privacy.sql). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['rating_id'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['rating_id'], 'unique': true},
            {'columns': ['submitted_at']},
            {'columns': ['ticket_id']},
            {'columns': ['file_id']},
            {'columns': ['staged_at']},
        ],
    )
}}

with

source as (
    select * from {{ source('support', 'csat_ratings') }}
    where {{ raw_rows_to_stage('csat_ratings') }}
),

renamed as (
    select
        rating_id,
        ticket_id,
        team_id,
        agent_id,
        -- personal data leaves raw here, before with_current_rows compares deliveries with held rows
        {{ pseudonymize('customer_id') }} as customer_hash,
        rating,
        {{ scrub_personal_text('comment') }} as comment,  -- noqa: RF04
        {{ personal_text_redactions('comment') }} as comment_redactions,
        submitted_at,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number,
        (submitted_at at time zone 'UTC')::date as submitted_date
    from source
),

candidates as (
    {{ with_current_rows('renamed', ['rating_id'], ['loaded_at', 'file_id', 'line_number']) }}
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by rating_id
            order by loaded_at, file_id, line_number
        ) as delivery_rank
    from candidates
),

final as (
    select
        rating_id,
        ticket_id,
        team_id,
        agent_id,
        customer_hash,
        rating,
        comment,
        comment_redactions,
        submitted_at,
        submitted_date,
        loaded_at,
        file_id,
        line_number,
        now() as staged_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
