{#- One row per CSAT rating (first delivery of each rating_id), with its UTC submission date. -#}
with

source as (
    select * from {{ source('support', 'csat_ratings') }}
),

renamed as (
    select
        rating_id,
        ticket_id,
        team_id,
        agent_id,
        customer_id,
        customer_email,
        rating,
        comment,
        submitted_at,
        _loaded_at as loaded_at,
        _file_id as file_id,
        _line_number as line_number,
        (submitted_at at time zone 'UTC')::date as submitted_date
    from source
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by rating_id
            order by loaded_at, file_id, line_number
        ) as delivery_rank
    from renamed
),

final as (
    select
        rating_id,
        ticket_id,
        team_id,
        agent_id,
        customer_id,
        customer_email,
        rating,
        comment,
        submitted_at,
        submitted_date,
        loaded_at
    from deduplicated
    where delivery_rank = 1
)

select * from final
