{#- The SLA policies of the roster (reference.sla_policies, loaded by `routerloop reference load`). -#}
{{ config(materialized='view') }}

with

source as (
    select * from {{ source('reference', 'sla_policies') }}
),

final as (
    select
        sla_policy,
        tier,
        first_response_minutes,
        resolve_minutes,
        warn_at_share
    from source
)

select * from final
