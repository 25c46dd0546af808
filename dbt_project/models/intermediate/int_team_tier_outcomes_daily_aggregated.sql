{#-
    The inputs of the weight scores per event date x team x tier: SLA outcomes (on their
    evaluated_date), their resolution times, and CSAT ratings (on their submitted_date, in the tier of
    their ticket's latest SLA evaluation; ratings of tickets without one do not count).
    An incremental run of a data interval recomputes, from the items changed since its last run
    (macros/watermarks.sql), the SLA columns of the dates of the SLA outcomes staged since then and of
    the dates re-evaluated tickets left (int_sla_outcomes_bucketed.superseded_evaluated_date), and the
    CSAT columns of the dates of the ratings staged since then and of the ratings of re-evaluated
    tickets (their tier may change); the other columns keep their stored values. It writes only the
    rows whose values changed, stamped with the writing transaction's now() (computed_at); a row whose
    items all left holds zeros.
    int_team_tier_performance_scored recomputes exactly the as-of dates whose window holds a newer row.
-#}
-- depends_on: {{ ref('int_sla_outcomes_bucketed') }}
{%- set changes_only = reads_changes_only() %}
{%- set satisfied_min = var('csat_satisfied_min_rating') | int %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['event_date', 'team_id', 'tier'],
        on_schema_change='fail',
        indexes=[{'columns': ['event_date', 'team_id', 'tier'], 'unique': true}],
        post_hook="{{ record_watermark() }}",
    )
}}

with

{%- if changes_only %}

changed_sla_outcomes as materialized (
    select
        ticket_id,
        evaluated_date
    from {{ ref('stg_support__sla_outcomes') }}
    where staged_at > {{ last_run_watermark() }}
),

sla_dates as materialized (
    select evaluated_date as event_date from changed_sla_outcomes
    union
    select moved.superseded_evaluated_date as event_date
    from {{ ref('int_sla_outcomes_bucketed') }} as moved
    where
        moved.ticket_id = any(array(select changed_sla_outcomes.ticket_id from changed_sla_outcomes))
        and moved.superseded_evaluated_date is not null
),

csat_dates as materialized (
    select submitted_date as event_date
    from {{ ref('stg_support__csat_ratings') }}
    where staged_at > {{ last_run_watermark() }}
    union
    select submitted_date as event_date
    from {{ ref('stg_support__csat_ratings') }}
    where ticket_id = any(array(select changed_sla_outcomes.ticket_id from changed_sla_outcomes))
),
{%- endif %}

sla_outcomes as (
    select
        evaluated_date,
        team_id,
        tier,
        outcome,
        resolve_minutes
    from {{ ref('stg_support__sla_outcomes') }}
    {%- if changes_only %}
    -- From the first recomputed date on, through the index on evaluated_at.
    where
        evaluated_at >= (select min(sla_dates.event_date) from sla_dates)::timestamp at time zone 'UTC'
        and evaluated_date = any(array(select sla_dates.event_date from sla_dates))
    {%- endif %}
),

csat_ratings as (
    select
        ticket_id,
        team_id,
        submitted_date,
        rating
    from {{ ref('stg_support__csat_ratings') }}
    {%- if changes_only %}
    where
        submitted_at >= (select min(csat_dates.event_date) from csat_dates)::timestamp at time zone 'UTC'
        and submitted_date = any(array(select csat_dates.event_date from csat_dates))
    {%- endif %}
),

sla_daily as (
    select
        evaluated_date as event_date,
        team_id,
        tier,
        count(*) as outcomes,
        sum({{ sla_points('outcome') }}) as sla_points,
        coalesce(
            array_agg(resolve_minutes::double precision order by resolve_minutes)
            filter (where resolve_minutes is not null),
            '{}'
        ) as resolve_minutes
    from sla_outcomes
    group by evaluated_date, team_id, tier
),

csat_daily as (
    select
        csat_ratings.submitted_date as event_date,
        csat_ratings.team_id,
        ticket_tiers.tier,
        count(*) as csat_responses,
        count(*) filter (where csat_ratings.rating >= {{ satisfied_min }}) as csat_satisfied
    from csat_ratings
    -- The tier of a rated ticket: that of its latest SLA evaluation (any date), looked up per rating
    -- through the index on (ticket_id, sla_policy).
    inner join lateral (
        select evaluations.tier
        from {{ ref('stg_support__sla_outcomes') }} as evaluations
        where evaluations.ticket_id = csat_ratings.ticket_id
        order by evaluations.evaluated_at desc, evaluations.sla_policy asc
        limit 1
    ) as ticket_tiers on true
    group by csat_ratings.submitted_date, csat_ratings.team_id, ticket_tiers.tier
),

-- The whole history (a full build).
full_build as (
    select
        coalesce(sla_daily.event_date, csat_daily.event_date) as event_date,
        coalesce(sla_daily.team_id, csat_daily.team_id) as team_id,
        coalesce(sla_daily.tier, csat_daily.tier) as tier,
        coalesce(sla_daily.outcomes, 0)::bigint as outcomes,
        coalesce(sla_daily.sla_points, 0.0)::double precision as sla_points,
        coalesce(sla_daily.resolve_minutes, '{}')::double precision[] as resolve_minutes,
        coalesce(csat_daily.csat_responses, 0)::bigint as csat_responses,
        coalesce(csat_daily.csat_satisfied, 0)::bigint as csat_satisfied
    from sla_daily
    full outer join csat_daily
        on
            sla_daily.event_date = csat_daily.event_date
            and sla_daily.team_id = csat_daily.team_id
            and sla_daily.tier = csat_daily.tier
),

{%- if changes_only %}

-- Every key of a recomputed date: computed now or stored before (a stored key no item holds any more
-- gets zeros in the recomputed columns).
recomputed_keys as (
    select
        event_date,
        team_id,
        tier
    from sla_daily
    union
    select
        event_date,
        team_id,
        tier
    from csat_daily
    union
    select
        stored.event_date,
        stored.team_id,
        stored.tier
    from {{ this }} as stored
    where
        stored.event_date = any(array(select sla_dates.event_date from sla_dates))
        or stored.event_date = any(array(select csat_dates.event_date from csat_dates))
),

computed as (
    select
        recomputed_keys.event_date,
        recomputed_keys.team_id,
        recomputed_keys.tier,
        recomputed_keys.event_date in (select sla_dates.event_date from sla_dates) as sla_recomputed,
        recomputed_keys.event_date in (select csat_dates.event_date from csat_dates) as csat_recomputed,
        sla_daily.outcomes as new_outcomes,
        sla_daily.sla_points as new_sla_points,
        sla_daily.resolve_minutes as new_resolve_minutes,
        csat_daily.csat_responses as new_csat_responses,
        csat_daily.csat_satisfied as new_csat_satisfied,
        stored.outcomes as stored_outcomes,
        stored.sla_points as stored_sla_points,
        stored.resolve_minutes as stored_resolve_minutes,
        stored.csat_responses as stored_csat_responses,
        stored.csat_satisfied as stored_csat_satisfied
    from recomputed_keys
    left join sla_daily
        on
            recomputed_keys.event_date = sla_daily.event_date
            and recomputed_keys.team_id = sla_daily.team_id
            and recomputed_keys.tier = sla_daily.tier
    left join csat_daily
        on
            recomputed_keys.event_date = csat_daily.event_date
            and recomputed_keys.team_id = csat_daily.team_id
            and recomputed_keys.tier = csat_daily.tier
    left join {{ this }} as stored
        on
            recomputed_keys.event_date = stored.event_date
            and recomputed_keys.team_id = stored.team_id
            and recomputed_keys.tier = stored.tier
),

merged as (
    select
        event_date,
        team_id,
        tier,
        case
            when sla_recomputed then coalesce(new_outcomes, 0) else coalesce(stored_outcomes, 0)
        end::bigint as outcomes,
        case
            when sla_recomputed then coalesce(new_sla_points, 0.0) else coalesce(stored_sla_points, 0.0)
        end::double precision as sla_points,
        case
            when sla_recomputed then coalesce(new_resolve_minutes, '{}') else coalesce(stored_resolve_minutes, '{}')
        end::double precision[] as resolve_minutes,
        case
            when csat_recomputed then coalesce(new_csat_responses, 0) else coalesce(stored_csat_responses, 0)
        end::bigint as csat_responses,
        case
            when csat_recomputed then coalesce(new_csat_satisfied, 0) else coalesce(stored_csat_satisfied, 0)
        end::bigint as csat_satisfied,
        stored_outcomes is null as is_new,
        stored_outcomes,
        stored_sla_points,
        stored_resolve_minutes,
        stored_csat_responses,
        stored_csat_satisfied
    from computed
),

-- Only rows whose values changed are written, so that their computed_at marks a change.
incremental_changes as (
    select
        event_date,
        team_id,
        tier,
        outcomes,
        sla_points,
        resolve_minutes,
        csat_responses,
        csat_satisfied
    from merged
    where
        is_new
        or (outcomes, sla_points, resolve_minutes, csat_responses, csat_satisfied)
        is distinct from (
            stored_outcomes, stored_sla_points, stored_resolve_minutes, stored_csat_responses, stored_csat_satisfied
        )
),
{%- endif %}

final as (
    select
        event_date,
        team_id,
        tier,
        outcomes,
        sla_points,
        resolve_minutes,
        csat_responses,
        csat_satisfied,
        now() as computed_at
    from {{ 'incremental_changes' if changes_only else 'full_build' }}
)

select * from final
