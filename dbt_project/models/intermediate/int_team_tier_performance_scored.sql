{#-
    The score components of every team x tier for every as-of date, the inputs of marts.routing_weights.
    Outcomes of the last weights_window_days UTC dates (as_of_date - window + 1 .. as_of_date) count
    with the decay weight 2^(-age / weights_half_life_days), age = as_of_date - event date in days.
    Every component is a decayed mean of per-item values in [0, 1] (higher is better), shrunk toward the
    tier-wide value (all teams of the tier) by empirical Bayes with pseudo-count m:
        shrunk = (sum(w * x) + m * prior) / (sum(w) + m)
      sla:  per SLA outcome, attained 1, warn 0.5, breach 0;
      csat: per CSAT rating, 1 when rating >= csat_satisfied_min_rating (the ticket's tier is that of
            its latest SLA evaluation; ratings of tickets without one have no tier and do not count);
      mttr: per resolved SLA outcome, median / (median + minutes) with the tier's median resolution time
            over the window: 1 when instant, 0.5 at the median, towards 0 when slow.
    Incremental: a run recomputes the as-of dates from reprocess_from_date() on, reading only the
    outcomes those dates' windows can see; a full refresh computes every date (the same rows).
-#}
{%- set window_days = var('weights_window_days') | int %}
{%- set half_life = var('weights_half_life_days') | float %}
{%- set pseudo_count = var('weights_prior_pseudo_count') | float %}
{%- set from_date = reprocess_from_date() %}
{#- The earliest event date any recomputed as-of date's window reaches. #}
{%- set events_from = none if from_date is none else '(' ~ from_date ~ ') - ' ~ (window_days - 1) %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['as_of_date', 'team_id', 'tier'],
        on_schema_change='fail',
        indexes=[{'columns': ['as_of_date', 'team_id', 'tier'], 'unique': true}],
    )
}}

with

sla_outcomes as (
    select * from {{ ref('stg_support__sla_outcomes') }}
),

csat_ratings as (
    select * from {{ ref('stg_support__csat_ratings') }}
    {%- if events_from is not none %}
    where submitted_at >= ({{ events_from }})::timestamp at time zone 'UTC'
    {%- endif %}
),

sla_outcomes_in_scope as (
    select * from sla_outcomes
    {%- if events_from is not none %}
    where evaluated_at >= ({{ events_from }})::timestamp at time zone 'UTC'
    {%- endif %}
),

teams as (
    select team_id from {{ ref('teams') }}
),

tiers as (
    select distinct tier from {{ ref('sla_policies') }}
),

sla_events as (
    select
        evaluated_date as event_date,
        team_id,
        tier,
        resolve_minutes,
        case outcome
            when 'attained' then 1.0
            when 'warn' then 0.5
            when 'breach' then 0.0
        end::double precision as sla_points
    from sla_outcomes_in_scope
),

ticket_tiers as (
    select distinct on (ticket_id)
        ticket_id,
        tier
    from sla_outcomes
    {%- if events_from is not none %}
    where ticket_id in (select csat_ratings.ticket_id from csat_ratings)
    {%- endif %}
    order by ticket_id asc, evaluated_at desc, sla_policy asc
),

csat_events as (
    select
        csat_ratings.submitted_date as event_date,
        csat_ratings.team_id,
        ticket_tiers.tier,
        case
            when csat_ratings.rating >= {{ var('csat_satisfied_min_rating') | int }} then 1.0 else 0.0
        end::double precision as satisfied
    from csat_ratings
    inner join ticket_tiers on csat_ratings.ticket_id = ticket_tiers.ticket_id
),

sla_bounds as (
    select
        min(event_date) as first_date,
        max(event_date) as last_date
    from sla_events
),

csat_bounds as (
    select
        min(event_date) as first_date,
        max(event_date) as last_date
    from csat_events
),

date_bounds as (
    select
        least(sla_bounds.first_date, csat_bounds.first_date) as first_date,
        greatest(sla_bounds.last_date, csat_bounds.last_date) as last_date
    from sla_bounds
    cross join csat_bounds
),

as_of_dates as (
    {{ date_spine(
        '(select date_bounds.first_date from date_bounds)',
        '(select date_bounds.last_date from date_bounds)',
        'as_of_date'
    ) }}
),

as_of_dates_to_compute as (
    select as_of_date from as_of_dates
    where {{ in_reprocess_window('as_of_date') }}
),

sla_daily as (
    select
        event_date,
        team_id,
        tier,
        count(*) as outcomes,
        sum(sla_points) as sla_points
    from sla_events
    group by event_date, team_id, tier
),

csat_daily as (
    select
        event_date,
        team_id,
        tier,
        count(*) as responses,
        sum(satisfied) as satisfied
    from csat_events
    group by event_date, team_id, tier
),

-- Daily sums of every team x tier in each as-of date's window, with the decay weight of their date.
sla_in_window as (
    select
        as_of_dates.as_of_date,
        sla_daily.team_id,
        sla_daily.tier,
        sla_daily.outcomes,
        sla_daily.sla_points,
        power(
            2.0::double precision,
            -(as_of_dates.as_of_date - sla_daily.event_date) / {{ half_life }}::double precision
        ) as decay
    from as_of_dates_to_compute as as_of_dates
    inner join sla_daily
        on sla_daily.event_date between as_of_dates.as_of_date - {{ window_days - 1 }} and as_of_dates.as_of_date
),

csat_in_window as (
    select
        as_of_dates.as_of_date,
        csat_daily.team_id,
        csat_daily.tier,
        csat_daily.responses,
        csat_daily.satisfied,
        power(
            2.0::double precision,
            -(as_of_dates.as_of_date - csat_daily.event_date) / {{ half_life }}::double precision
        ) as decay
    from as_of_dates_to_compute as as_of_dates
    inner join csat_daily
        on csat_daily.event_date between as_of_dates.as_of_date - {{ window_days - 1 }} and as_of_dates.as_of_date
),

resolved_in_window as (
    select
        as_of_dates.as_of_date,
        sla_events.team_id,
        sla_events.tier,
        sla_events.resolve_minutes,
        power(
            2.0::double precision,
            -(as_of_dates.as_of_date - sla_events.event_date) / {{ half_life }}::double precision
        ) as decay
    from as_of_dates_to_compute as as_of_dates
    inner join sla_events
        on sla_events.event_date between as_of_dates.as_of_date - {{ window_days - 1 }} and as_of_dates.as_of_date
    where sla_events.resolve_minutes is not null
),

tier_medians as (
    select
        as_of_date,
        tier,
        percentile_cont(0.5) within group (order by resolve_minutes) as median_resolve_minutes
    from resolved_in_window
    group by as_of_date, tier
),

-- Resolution speed relative to the tier median: 1 / (1 + minutes / median), 1 for no time at all.
resolved_speed as (
    select
        resolved_in_window.as_of_date,
        resolved_in_window.team_id,
        resolved_in_window.tier,
        resolved_in_window.decay,
        case
            when greatest(resolved_in_window.resolve_minutes, 0.0) = 0.0 then 1.0
            else
                tier_medians.median_resolve_minutes
                / (tier_medians.median_resolve_minutes + resolved_in_window.resolve_minutes)
        end as speed
    from resolved_in_window
    inner join tier_medians
        on
            resolved_in_window.as_of_date = tier_medians.as_of_date
            and resolved_in_window.tier = tier_medians.tier
),

sla_by_team as (
    select
        as_of_date,
        team_id,
        tier,
        sum(outcomes)::bigint as outcomes,
        sum(outcomes * decay) as sla_weight,
        sum(sla_points * decay) as sla_weighted_sum
    from sla_in_window
    group by as_of_date, team_id, tier
),

csat_by_team as (
    select
        as_of_date,
        team_id,
        tier,
        sum(responses)::bigint as csat_responses,
        sum(responses * decay) as csat_weight,
        sum(satisfied * decay) as csat_weighted_sum
    from csat_in_window
    group by as_of_date, team_id, tier
),

mttr_by_team as (
    select
        as_of_date,
        team_id,
        tier,
        count(*) as resolved_outcomes,
        sum(decay) as mttr_weight,
        sum(speed * decay) as mttr_weighted_sum
    from resolved_speed
    group by as_of_date, team_id, tier
),

-- Tier-wide values (every team of the tier, in the seed or not): the priors of the shrinkage.
sla_priors as (
    select
        as_of_date,
        tier,
        sum(sla_weighted_sum) / nullif(sum(sla_weight), 0) as sla_prior
    from sla_by_team
    group by as_of_date, tier
),

csat_priors as (
    select
        as_of_date,
        tier,
        sum(csat_weighted_sum) / nullif(sum(csat_weight), 0) as csat_prior
    from csat_by_team
    group by as_of_date, tier
),

mttr_priors as (
    select
        as_of_date,
        tier,
        sum(mttr_weighted_sum) / nullif(sum(mttr_weight), 0) as mttr_prior
    from mttr_by_team
    group by as_of_date, tier
),

grid as (
    select
        as_of_dates.as_of_date,
        teams.team_id,
        tiers.tier
    from as_of_dates_to_compute as as_of_dates
    cross join teams
    cross join tiers
),

combined as (
    select
        grid.as_of_date,
        grid.team_id,
        grid.tier,
        coalesce(sla_by_team.outcomes, 0)::bigint as outcomes,
        coalesce(sla_by_team.sla_weight, 0.0) as sla_effective_n,
        coalesce(sla_by_team.sla_weighted_sum, 0.0) as sla_weighted_sum,
        sla_priors.sla_prior,
        coalesce(csat_by_team.csat_responses, 0)::bigint as csat_responses,
        coalesce(csat_by_team.csat_weight, 0.0) as csat_effective_n,
        coalesce(csat_by_team.csat_weighted_sum, 0.0) as csat_weighted_sum,
        csat_priors.csat_prior,
        coalesce(mttr_by_team.resolved_outcomes, 0)::bigint as resolved_outcomes,
        tier_medians.median_resolve_minutes as tier_median_resolve_minutes,
        coalesce(mttr_by_team.mttr_weight, 0.0) as mttr_effective_n,
        coalesce(mttr_by_team.mttr_weighted_sum, 0.0) as mttr_weighted_sum,
        mttr_priors.mttr_prior
    from grid
    left join sla_by_team
        on
            grid.as_of_date = sla_by_team.as_of_date
            and grid.team_id = sla_by_team.team_id
            and grid.tier = sla_by_team.tier
    left join csat_by_team
        on
            grid.as_of_date = csat_by_team.as_of_date
            and grid.team_id = csat_by_team.team_id
            and grid.tier = csat_by_team.tier
    left join mttr_by_team
        on
            grid.as_of_date = mttr_by_team.as_of_date
            and grid.team_id = mttr_by_team.team_id
            and grid.tier = mttr_by_team.tier
    left join sla_priors
        on grid.as_of_date = sla_priors.as_of_date and grid.tier = sla_priors.tier
    left join csat_priors
        on grid.as_of_date = csat_priors.as_of_date and grid.tier = csat_priors.tier
    left join mttr_priors
        on grid.as_of_date = mttr_priors.as_of_date and grid.tier = mttr_priors.tier
    left join tier_medians
        on grid.as_of_date = tier_medians.as_of_date and grid.tier = tier_medians.tier
),

final as (
    select
        as_of_date,
        team_id,
        tier,
        outcomes,
        sla_effective_n,
        sla_weighted_sum / nullif(sla_effective_n, 0.0) as sla_raw,
        sla_prior,
        (sla_weighted_sum + {{ pseudo_count }} * sla_prior)
        / nullif(sla_effective_n + {{ pseudo_count }}, 0.0) as sla_shrunk,
        csat_responses,
        csat_effective_n,
        csat_weighted_sum / nullif(csat_effective_n, 0.0) as csat_raw,
        csat_prior,
        (csat_weighted_sum + {{ pseudo_count }} * csat_prior)
        / nullif(csat_effective_n + {{ pseudo_count }}, 0.0) as csat_shrunk,
        resolved_outcomes,
        tier_median_resolve_minutes,
        mttr_effective_n,
        mttr_weighted_sum / nullif(mttr_effective_n, 0.0) as mttr_raw,
        mttr_prior,
        (mttr_weighted_sum + {{ pseudo_count }} * mttr_prior)
        / nullif(mttr_effective_n + {{ pseudo_count }}, 0.0) as mttr_shrunk
    from combined
)

select * from final
