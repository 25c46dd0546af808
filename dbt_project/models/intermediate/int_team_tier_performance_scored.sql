{#-
    The score components of every team x tier for every as-of date, the inputs of marts.routing_weights.
    Outcomes of the last weights_window_days UTC dates (as_of_date - window + 1 .. as_of_date) count
    with the decay weight 2^(-age / weights_half_life_days), age = as_of_date - event date in days.
    Every component is a decayed mean of per-item values in [0, 1] (higher is better), shrunk toward the
    tier-wide value (all teams of the tier) by empirical Bayes with pseudo-count m:
        shrunk = (sum(w * x) + m * prior) / (sum(w) + m)
      sla:  per SLA outcome, its points (var sla_points);
      csat: per CSAT rating, 1 when rating >= csat_satisfied_min_rating (the ticket's tier is that of
            its latest SLA evaluation; ratings of tickets without one have no tier and do not count);
      mttr: per resolved SLA outcome, median / (median + minutes) with the tier's median resolution time
            over the window: 1 when instant, 0.5 at the median, towards 0 when slow.
    Incremental: a run of a data interval recomputes, from reprocess_from_date() on, exactly the as-of
    dates whose window holds a row of int_team_tier_outcomes_daily_aggregated written (changed) after
    the date was last computed (inputs_computed_at), and the dates not computed yet. Earlier dates keep
    the scores computed while they were in the reprocess window, like the weights exported from them;
    a full refresh, or a run without `start` (after a settings change, say), computes every date.
-#}
{%- set window_days = var('weights_window_days') | int %}
{%- set half_life = var('weights_half_life_days') | float %}
{%- set pseudo_count = var('weights_prior_pseudo_count') | float %}
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

daily as (
    select * from {{ ref('int_team_tier_outcomes_daily_aggregated') }}
),

teams as (
    select team_id from {{ ref('stg_reference__teams') }}
),

tiers as (
    select distinct tier from {{ ref('stg_reference__sla_policies') }}
),

-- The first to the last date holding an SLA evaluation or a CSAT rating (zero rows hold neither).
date_bounds as (
    select
        min(event_date) as first_date,
        max(event_date) as last_date
    from daily
    where outcomes > 0 or csat_responses > 0
),

as_of_dates as (
    {{ date_spine(
        '(select date_bounds.first_date from date_bounds)',
        '(select date_bounds.last_date from date_bounds)',
        'as_of_date'
    ) }}
),

-- The newest input row of each as-of date's window: the version of what the date is computed from.
as_of_versions as (
    select
        as_of_dates.as_of_date,
        max(daily.computed_at) as inputs_computed_at
    from as_of_dates
    inner join daily
        on daily.event_date between as_of_dates.as_of_date - {{ window_days - 1 }} and as_of_dates.as_of_date
    group by as_of_dates.as_of_date
),

as_of_dates_to_compute as (
    select
        as_of_date,
        inputs_computed_at
    from as_of_versions
    {%- if reprocess_from_date() is not none %}
    where
        as_of_date >= {{ reprocess_from_date() }}
        and not exists (
            select from {{ this }} as computed
            where
                computed.as_of_date = as_of_versions.as_of_date
                and computed.inputs_computed_at >= as_of_versions.inputs_computed_at
        )
    {%- endif %}
),

sla_daily as (
    select
        event_date,
        team_id,
        tier,
        outcomes,
        sla_points
    from daily
    where outcomes > 0
),

csat_daily as (
    select
        event_date,
        team_id,
        tier,
        csat_responses as responses,
        csat_satisfied::double precision as satisfied
    from daily
    where csat_responses > 0
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

-- The days of each as-of date's window that hold resolutions, with their decay weight.
resolved_days_in_window as materialized (
    select
        as_of_dates.as_of_date,
        daily.team_id,
        daily.tier,
        daily.resolve_minutes,
        power(
            2.0::double precision,
            -(as_of_dates.as_of_date - daily.event_date) / {{ half_life }}::double precision
        ) as decay
    from as_of_dates_to_compute as as_of_dates
    inner join daily
        on daily.event_date between as_of_dates.as_of_date - {{ window_days - 1 }} and as_of_dates.as_of_date
    where cardinality(daily.resolve_minutes) > 0
),

tier_medians as materialized (
    select
        resolved_days_in_window.as_of_date,
        resolved_days_in_window.tier,
        percentile_cont(0.5) within group (order by resolved.resolve_minutes) as median_resolve_minutes
    from resolved_days_in_window
    cross join lateral unnest(resolved_days_in_window.resolve_minutes) as resolved (resolve_minutes)
    group by resolved_days_in_window.as_of_date, resolved_days_in_window.tier
),

-- Per day: the sum of the resolution speeds relative to the tier median, 1 / (1 + minutes / median),
-- 1 for no time at all (or a negative one).
resolved_day_speeds as (
    select
        resolved_days_in_window.as_of_date,
        resolved_days_in_window.team_id,
        resolved_days_in_window.tier,
        resolved_days_in_window.decay,
        cardinality(resolved_days_in_window.resolve_minutes) as resolutions,
        day_speeds.speed_sum
    from resolved_days_in_window
    inner join tier_medians
        on
            resolved_days_in_window.as_of_date = tier_medians.as_of_date
            and resolved_days_in_window.tier = tier_medians.tier
    cross join lateral (
        select
            sum(
                case
                    when greatest(resolved.resolve_minutes, 0.0) = 0.0 then 1.0
                    -- a tier median at or below 0 (resolutions stamped before the opening): any positive
                    -- time is slower than it, speed 0, never a division by zero
                    else
                        greatest(tier_medians.median_resolve_minutes, 0.0)
                        / (greatest(tier_medians.median_resolve_minutes, 0.0) + resolved.resolve_minutes)
                end
            ) as speed_sum
        from unnest(resolved_days_in_window.resolve_minutes) as resolved (resolve_minutes)
    ) as day_speeds
),

sla_by_team as (
    select
        as_of_date,
        team_id,
        tier,
        sum(outcomes)::bigint as outcomes,
        {{ exact_sum('outcomes * decay') }} as sla_weight,
        {{ exact_sum('sla_points * decay') }} as sla_weighted_sum
    from sla_in_window
    group by as_of_date, team_id, tier
),

csat_by_team as (
    select
        as_of_date,
        team_id,
        tier,
        sum(responses)::bigint as csat_responses,
        {{ exact_sum('responses * decay') }} as csat_weight,
        {{ exact_sum('satisfied * decay') }} as csat_weighted_sum
    from csat_in_window
    group by as_of_date, team_id, tier
),

mttr_by_team as (
    select
        as_of_date,
        team_id,
        tier,
        sum(resolutions) as resolved_outcomes,
        {{ exact_sum('resolutions * decay') }} as mttr_weight,
        {{ exact_sum('speed_sum * decay') }} as mttr_weighted_sum
    from resolved_day_speeds
    group by as_of_date, team_id, tier
),

-- Tier-wide values (every team of the tier, in the roster or not): the priors of the shrinkage.
sla_priors as (
    select
        as_of_date,
        tier,
        {{ exact_sum('sla_weighted_sum') }} / nullif({{ exact_sum('sla_weight') }}, 0) as sla_prior
    from sla_by_team
    group by as_of_date, tier
),

csat_priors as (
    select
        as_of_date,
        tier,
        {{ exact_sum('csat_weighted_sum') }} / nullif({{ exact_sum('csat_weight') }}, 0) as csat_prior
    from csat_by_team
    group by as_of_date, tier
),

mttr_priors as (
    select
        as_of_date,
        tier,
        {{ exact_sum('mttr_weighted_sum') }} / nullif({{ exact_sum('mttr_weight') }}, 0) as mttr_prior
    from mttr_by_team
    group by as_of_date, tier
),

grid as (
    select
        as_of_dates.as_of_date,
        teams.team_id,
        tiers.tier,
        as_of_dates.inputs_computed_at
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
        mttr_priors.mttr_prior,
        grid.inputs_computed_at
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
        / nullif(mttr_effective_n + {{ pseudo_count }}, 0.0) as mttr_shrunk,
        inputs_computed_at
    from combined
)

select * from final
