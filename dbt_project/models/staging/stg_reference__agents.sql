{#-
    Agent -> team membership periods over time (reference.agent_memberships): one row per period, kept
    across roster loads, so a past date is attributed to the team the agent was in on that date.
-#}
{{ config(materialized='view') }}

with

source as (
    select * from {{ source('reference', 'agent_memberships') }}
),

final as (
    select
        agent_id,
        team_id,
        valid_from as active_from,
        valid_to as active_to
    from source
)

select * from final
