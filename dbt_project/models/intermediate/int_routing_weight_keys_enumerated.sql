{#-
    The keys of a day of marts.routing_weights: every strategy of var weight_strategies x team of
    reference.teams x tier of reference.sla_policies, with the strategy's blend of the score components
    (a share missing from the var is 0). routing_weights computes a weight for each key on every as-of
    date, and the weights gate (routerloop.gates.weights_batch) expects exactly these rows.
-#}
{%- set components = ['sla', 'csat', 'mttr'] %}
{#- One row (strategy, sla_share, csat_share, mttr_share) per configured strategy. #}
{%- set strategy_rows = [] %}
{%- for name, mix in var('weight_strategies').items() %}
    {%- set shares = [] %}
    {%- for component in components %}
        {%- do shares.append(((mix or {}).get(component, 0) | float) ~ '::double precision') %}
    {%- endfor %}
    {%- do strategy_rows.append("('" ~ name ~ "', " ~ shares | join(', ') ~ ")") %}
{%- endfor %}

with

strategies as (
    select
        configured.strategy,
        configured.sla_share,
        configured.csat_share,
        configured.mttr_share
    from (values {{ strategy_rows | join(', ') }}) as configured (strategy, sla_share, csat_share, mttr_share)
),

teams as (
    select team_id from {{ ref('stg_reference__teams') }}
),

tiers as (
    select distinct tier from {{ ref('stg_reference__sla_policies') }}
)

select
    strategies.strategy,
    teams.team_id,
    tiers.tier,
    strategies.sla_share,
    strategies.csat_share,
    strategies.mttr_share
from strategies
cross join teams
cross join tiers
