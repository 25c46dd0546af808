{#-
    CSAT responses per UTC submission date, team and agent: the additive parts of the rolling CSAT
    figures (a rating never changes its date, so a day is recomputed as a whole).
-#}
{%- set from_date = reprocess_from_date() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['submitted_date'],
        on_schema_change='fail',
        indexes=[{'columns': ['submitted_date']}],
    )
}}

select
    submitted_date,
    team_id,
    agent_id,
    count(*) as responses,
    sum(rating) as rating_sum,
    count(*) filter (where rating >= {{ var('csat_satisfied_min_rating') | int }}) as satisfied_responses
from {{ ref('stg_support__csat_ratings') }}
{%- if from_date is not none %}
-- On the timestamp (submitted_date >= D, as an instant): an index on the raw time can serve it.
where submitted_at >= ({{ from_date }})::timestamp at time zone 'UTC'
{%- endif %}
group by submitted_date, team_id, agent_id
