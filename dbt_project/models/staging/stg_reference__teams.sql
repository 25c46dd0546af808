{#- The teams of the roster (reference.teams, loaded by `routerloop reference load`). -#}
{{ config(materialized='view') }}

with

source as (
    select * from {{ source('reference', 'teams') }}
),

final as (
    select
        team_id,
        team_name,
        active_from,
        active_to
    from source
)

select * from final
