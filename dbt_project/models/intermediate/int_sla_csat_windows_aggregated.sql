-- depends_on: {{ ref('stg_support__sla_outcomes') }}
{#-
    The rolling SLA/CSAT figures of marts.team_sla_csat_rolling and marts.agent_sla_csat_rolling: one
    row per as-of date x window x entity (every team and agent of the roster, whether active or not,
    and every team and agent that telemetry names but the roster does not know, with in_roster false)
    from the first to the last date with SLA or CSAT data. An outcome or a rating counts for its team
    and for its agent. A roster agent's row carries the team the agent was in on the as-of date
    (membership history), so last month's rows keep last month's team.

    Windows are var('rolling_windows'); a window of w days ending at D covers dates D - w + 1 .. D.
    Counts are sums of daily counts. The MTTR percentiles are exactly percentile_cont: a window's
    histogram of resolution times is the difference of the running bucket totals at D and D - w
    (int_sla_resolve_histograms_accumulated); it locates the bucket holding each needed rank, and only
    that bucket's values in the window (int_sla_outcomes_bucketed, through an index) are sorted to read
    the value at the rank. CSAT figures are suppressed below var csat_suppression_k responses, and
    complementarily (see team_cells below) so that no suppressed agent figure can be recomputed.

    Incremental: a run recomputes every as-of date from sla_recompute_from_date() on (delete+insert by
    date), reading daily counts one longest window back.
-#}
{%- set windows = var('rolling_windows') | map('int') | list %}
{%- set suppression_k = var('csat_suppression_k') | int %}
{%- set recompute_from = sla_recompute_from_date() %}
{#- An incremental run starts at the first recomputed date. #}
{%- set first_date = '(select date_bounds.first_date from date_bounds)' %}
{%- if recompute_from is not none %}
    {%- set first_date = 'greatest(' ~ first_date
        ~ ', (select recompute_from.first_as_of_date from recompute_from))' %}
{%- endif %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['as_of_date'],
        on_schema_change='fail',
        pre_hook='set local jit = off',
        post_hook="{{ record_watermark() }}",
        indexes=[{'columns': ['as_of_date']}],
    )
}}

{#- pre_hook: many small CTEs mislead the cost estimates into JIT-compiling for seconds on servers
    with JIT. #}

with

{% if recompute_from is not none -%}
recompute_from as (
    select {{ recompute_from }} as first_as_of_date
),

{% endif -%}
-- The teams and agents telemetry names, from the first date they appear, each agent with its latest
-- team (an agent the roster does not know is shown under the team it last worked for).
observed_agents as (
    select distinct on (activity.agent_id)
        activity.agent_id,
        activity.team_id,
        min(activity.activity_date) over (partition by activity.agent_id) as first_date
    from (
        select
            sla_daily.agent_id,
            sla_daily.team_id,
            sla_daily.evaluated_date as activity_date
        from {{ ref('int_sla_outcomes_daily_aggregated') }} as sla_daily
        union all
        select
            csat_daily.agent_id,
            csat_daily.team_id,
            csat_daily.submitted_date as activity_date
        from {{ ref('int_csat_ratings_daily_aggregated') }} as csat_daily
    ) as activity
    where activity.agent_id is not null
    order by activity.agent_id asc, activity.activity_date desc, activity.team_id asc
),

observed_teams as (
    select
        activity.team_id,
        min(activity.activity_date) as first_date
    from (
        select
            sla_daily.team_id,
            sla_daily.evaluated_date as activity_date
        from {{ ref('int_sla_outcomes_daily_aggregated') }} as sla_daily
        union all
        select
            csat_daily.team_id,
            csat_daily.submitted_date as activity_date
        from {{ ref('int_csat_ratings_daily_aggregated') }} as csat_daily
    ) as activity
    group by activity.team_id
),

-- Every team and agent of the roster, and those telemetry names that it does not know (in_roster
-- false: their rows count, from the first date they appear on, and reference_gaps lists them).
entities as (
    select
        'team' as entity_level,
        teams.team_id as entity_id,
        teams.team_id,
        true as in_roster,
        null::date as first_date
    from {{ ref('stg_reference__teams') }} as teams
    union all
    select
        'team' as entity_level,
        observed_teams.team_id as entity_id,
        observed_teams.team_id,
        false as in_roster,
        observed_teams.first_date
    from observed_teams
    where
        observed_teams.team_id is not null
        and observed_teams.team_id not in (select known.team_id from {{ ref('stg_reference__teams') }} as known)
    union all
    -- A roster agent's team depends on the date (agent_teams); one entity per agent, whatever its periods.
    select distinct
        'agent' as entity_level,
        agents.agent_id as entity_id,
        null::text as team_id,
        true as in_roster,
        null::date as first_date
    from {{ ref('stg_reference__agents') }} as agents
    union all
    select
        'agent' as entity_level,
        observed_agents.agent_id as entity_id,
        observed_agents.team_id,
        false as in_roster,
        observed_agents.first_date
    from observed_agents
    where observed_agents.agent_id not in (select known.agent_id from {{ ref('stg_reference__agents') }} as known)
),

memberships as (
    select * from {{ ref('stg_reference__agents') }}
),

sla_dates as (
    select
        min(evaluated_date) as first_date,
        max(evaluated_date) as last_date
    from {{ ref('int_sla_outcomes_daily_aggregated') }}
),

csat_dates as (
    select
        min(submitted_date) as first_date,
        max(submitted_date) as last_date
    from {{ ref('int_csat_ratings_daily_aggregated') }}
),

date_bounds as (
    select
        least(sla_dates.first_date, csat_dates.first_date) as first_date,
        greatest(sla_dates.last_date, csat_dates.last_date) as last_date
    from sla_dates
    cross join csat_dates
),

as_of_dates as (
    {{ date_spine(first_date, '(select date_bounds.last_date from date_bounds)', 'as_of_date') }}
),

rolling_windows as (
    select unnest(array[{{ windows | join(', ') }}]) as window_days
),

-- An agent's team on each as-of date (membership history): the period holding the date; outside
-- every period (before joining, after leaving) the nearest one, the last started before, else the first.
agent_teams as (
    select distinct on (as_of_dates.as_of_date, memberships.agent_id)
        as_of_dates.as_of_date,
        memberships.agent_id,
        memberships.team_id
    from as_of_dates
    cross join memberships
    order by
        as_of_dates.as_of_date asc,
        memberships.agent_id asc,
        memberships.active_from > as_of_dates.as_of_date asc,
        case when memberships.active_from <= as_of_dates.as_of_date then memberships.active_from end desc nulls last,
        memberships.active_from asc
),

-- The grain: every as-of date x window x entity.
windows as (
    select
        as_of_dates.as_of_date,
        rolling_windows.window_days,
        as_of_dates.as_of_date - rolling_windows.window_days + 1 as window_start_date,
        entities.entity_level,
        entities.entity_id,
        coalesce(agent_teams.team_id, entities.team_id) as team_id,
        entities.in_roster
    from as_of_dates
    cross join rolling_windows
    cross join entities
    left join agent_teams
        on
            entities.entity_level = 'agent'
            and as_of_dates.as_of_date = agent_teams.as_of_date
            and entities.entity_id = agent_teams.agent_id
    where entities.first_date is null or as_of_dates.as_of_date >= entities.first_date
),

-- The daily counts of every team and agent, back one longest window before the first recomputed date.
daily_activity as (
    select
        daily.evaluated_date as activity_date,
        entity.entity_level,
        entity.entity_id,
        daily.tickets,
        daily.attained,
        daily.warn,
        daily.breach,
        daily.resolved_tickets,
        0 as csat_responses,
        0 as csat_rating_sum,
        0 as csat_satisfied
    from {{ ref('int_sla_outcomes_daily_aggregated') }} as daily
    cross join lateral (values ('team', daily.team_id), ('agent', daily.agent_id)) as entity (entity_level, entity_id)
    {%- if recompute_from is not none %}
    where daily.evaluated_date > (select recompute_from.first_as_of_date from recompute_from) - {{ windows | max }}
    {%- endif %}
    union all
    select
        daily.submitted_date as activity_date,
        entity.entity_level,
        entity.entity_id,
        0 as tickets,
        0 as attained,
        0 as warn,
        0 as breach,
        0 as resolved_tickets,
        daily.responses as csat_responses,
        daily.rating_sum as csat_rating_sum,
        daily.satisfied_responses as csat_satisfied
    from {{ ref('int_csat_ratings_daily_aggregated') }} as daily
    cross join lateral (values ('team', daily.team_id), ('agent', daily.agent_id)) as entity (entity_level, entity_id)
    {%- if recompute_from is not none %}
    where daily.submitted_date > (select recompute_from.first_as_of_date from recompute_from) - {{ windows | max }}
    {%- endif %}
),

windowed_totals as (
    select
        windows.as_of_date,
        windows.window_days,
        windows.entity_level,
        windows.entity_id,
        coalesce(sum(daily_activity.tickets), 0)::bigint as tickets,
        coalesce(sum(daily_activity.attained), 0)::bigint as attained,
        coalesce(sum(daily_activity.warn), 0)::bigint as warn,
        coalesce(sum(daily_activity.breach), 0)::bigint as breach,
        coalesce(sum(daily_activity.resolved_tickets), 0)::bigint as resolved_tickets,
        coalesce(sum(daily_activity.csat_responses), 0)::bigint as csat_responses,
        coalesce(sum(daily_activity.csat_rating_sum), 0)::bigint as csat_rating_sum,
        coalesce(sum(daily_activity.csat_satisfied), 0)::bigint as csat_satisfied
    from windows
    left join daily_activity
        on
            windows.entity_level = daily_activity.entity_level
            and windows.entity_id = daily_activity.entity_id
            and daily_activity.activity_date between windows.window_start_date and windows.as_of_date
    group by windows.as_of_date, windows.window_days, windows.entity_level, windows.entity_id
),

-- The resolved outcomes of each entity: looked up by (entity, bucket, date) through the indexes of
-- int_sla_outcomes_bucketed (not materialized: each branch keeps its index).
resolutions as not materialized (
    select
        'team' as entity_level,
        team_id as entity_id,
        resolve_bucket,
        evaluated_date,
        resolve_minutes
    from {{ ref('int_sla_outcomes_bucketed') }}
    union all
    select
        'agent' as entity_level,
        agent_id as entity_id,
        resolve_bucket,
        evaluated_date,
        resolve_minutes
    from {{ ref('int_sla_outcomes_bucketed') }}
),

-- A window's histogram is the running totals at its end minus those on the day before it starts.
-- The running totals hold a row per date up to their last date; later dates carry the last totals.
totals_last as (
    select max(evaluated_date) as evaluated_date
    from {{ ref('int_sla_resolve_histograms_accumulated') }}
),

histogram_terms as (
    select
        windows.as_of_date,
        windows.window_days,
        windows.entity_level,
        windows.entity_id,
        least(windows.as_of_date, totals_last.evaluated_date) as total_date,
        1 as sign
    from windows
    cross join totals_last
    union all
    select
        windows.as_of_date,
        windows.window_days,
        windows.entity_level,
        windows.entity_id,
        least(windows.window_start_date - 1, totals_last.evaluated_date) as total_date,
        -1 as sign
    from windows
    cross join totals_last
),

-- Running bucket totals of every team and agent on the dates windows end on or stop before.
histogram_ends as (
    select
        totals.evaluated_date,
        entity.entity_level,
        entity.entity_id,
        totals.resolve_bucket,
        sum(totals.resolutions_to_date) as resolutions_to_date
    from {{ ref('int_sla_resolve_histograms_accumulated') }} as totals
    cross join lateral (values ('team', totals.team_id), ('agent', totals.agent_id)) as entity (entity_level, entity_id)
    -- An array rather than a semi-join: the planner then reads just those dates through the index.
    where
        totals.evaluated_date = any(array(select distinct histogram_terms.total_date from histogram_terms))
        and entity.entity_id is not null
    group by totals.evaluated_date, entity.entity_level, entity.entity_id, totals.resolve_bucket
),

-- Per window and bucket: how many of the window's resolution times sort before / through the bucket.
windowed_histogram as (
    select
        as_of_date,
        window_days,
        entity_level,
        entity_id,
        resolve_bucket,
        (sum(resolutions) over bucket_order - resolutions)::bigint as ranks_before,
        (sum(resolutions) over bucket_order)::bigint as ranks_through
    from (
        select
            histogram_terms.as_of_date,
            histogram_terms.window_days,
            histogram_terms.entity_level,
            histogram_terms.entity_id,
            histogram_ends.resolve_bucket,
            sum(histogram_terms.sign * histogram_ends.resolutions_to_date) as resolutions
        from histogram_terms
        inner join histogram_ends
            on
                histogram_terms.total_date = histogram_ends.evaluated_date
                and histogram_terms.entity_level = histogram_ends.entity_level
                and histogram_terms.entity_id = histogram_ends.entity_id
        group by
            histogram_terms.as_of_date,
            histogram_terms.window_days,
            histogram_terms.entity_level,
            histogram_terms.entity_id,
            histogram_ends.resolve_bucket
    ) as bucket_counts
    where resolutions > 0
    window bucket_order as (
        partition by as_of_date, window_days, entity_level, entity_id
        order by resolve_bucket
    )
),

-- percentile_cont(p) over n sorted values: the values at 0-based ranks floor(p * (n - 1)) and
-- ceil(p * (n - 1)), interpolated linearly by the fractional part of p * (n - 1).
percentile_positions as (
    select
        windowed_totals.as_of_date,
        windowed_totals.window_days,
        windowed_totals.as_of_date - windowed_totals.window_days + 1 as window_start_date,
        windowed_totals.entity_level,
        windowed_totals.entity_id,
        percentiles.percentile,
        percentiles.percentile * (windowed_totals.resolved_tickets - 1) as rank_position,
        floor(percentiles.percentile * (windowed_totals.resolved_tickets - 1))::bigint as lower_rank,
        ceil(percentiles.percentile * (windowed_totals.resolved_tickets - 1))::bigint as upper_rank
    from windowed_totals
    cross join (values (0.5::double precision), (0.9::double precision)) as percentiles (percentile)
    where windowed_totals.resolved_tickets > 0
),

-- One look-up per percentile reads the value at the lower rank and the next one in its bucket.
lower_values as (
    select
        positions.as_of_date,
        positions.window_days,
        positions.window_start_date,
        positions.entity_level,
        positions.entity_id,
        positions.percentile,
        positions.rank_position,
        positions.lower_rank,
        positions.upper_rank,
        positions.upper_rank < histogram.ranks_through as upper_in_bucket,
        -- [1] the value at the lower rank, [2] the next one in its bucket
        array(
            select resolutions.resolve_minutes
            from resolutions
            where
                resolutions.entity_level = positions.entity_level
                and resolutions.entity_id = positions.entity_id
                and resolutions.resolve_bucket = histogram.resolve_bucket
                and resolutions.evaluated_date between positions.window_start_date and positions.as_of_date
            order by resolutions.resolve_minutes
            limit 2 offset positions.lower_rank - histogram.ranks_before
        ) as bucket_values
    from percentile_positions as positions
    inner join windowed_histogram as histogram
        on
            positions.as_of_date = histogram.as_of_date
            and positions.window_days = histogram.window_days
            and positions.entity_level = histogram.entity_level
            and positions.entity_id = histogram.entity_id
            and positions.lower_rank >= histogram.ranks_before
            and positions.lower_rank < histogram.ranks_through
),

-- When the upper rank opens the next bucket, its value is that bucket's smallest in the window.
-- Materialized: computed once, not once per row of lower_values (whose size the planner underestimates).
straddling_values as materialized (
    select
        lower_values.as_of_date,
        lower_values.window_days,
        lower_values.entity_level,
        lower_values.entity_id,
        lower_values.percentile,
        (
            select resolutions.resolve_minutes
            from resolutions
            where
                resolutions.entity_level = lower_values.entity_level
                and resolutions.entity_id = lower_values.entity_id
                and resolutions.resolve_bucket = histogram.resolve_bucket
                and resolutions.evaluated_date between lower_values.window_start_date and lower_values.as_of_date
            order by resolutions.resolve_minutes
            limit 1
        ) as resolve_minutes
    from lower_values
    inner join windowed_histogram as histogram
        on
            lower_values.as_of_date = histogram.as_of_date
            and lower_values.window_days = histogram.window_days
            and lower_values.entity_level = histogram.entity_level
            and lower_values.entity_id = histogram.entity_id
            and lower_values.upper_rank = histogram.ranks_before
    where lower_values.upper_rank > lower_values.lower_rank and not lower_values.upper_in_bucket
),

upper_values as (
    select
        lower_values.as_of_date,
        lower_values.window_days,
        lower_values.entity_level,
        lower_values.entity_id,
        lower_values.percentile,
        lower_values.rank_position,
        lower_values.lower_rank,
        lower_values.bucket_values[1] as lower_value,
        case
            when lower_values.upper_rank = lower_values.lower_rank then lower_values.bucket_values[1]
            when lower_values.upper_in_bucket then lower_values.bucket_values[2]
            else straddling_values.resolve_minutes
        end as upper_value
    from lower_values
    left join straddling_values
        on
            lower_values.as_of_date = straddling_values.as_of_date
            and lower_values.window_days = straddling_values.window_days
            and lower_values.entity_level = straddling_values.entity_level
            and lower_values.entity_id = straddling_values.entity_id
            and lower_values.percentile = straddling_values.percentile
),

windowed_percentiles as (
    select
        as_of_date,
        window_days,
        entity_level,
        entity_id,
        max(lower_value + (upper_value - lower_value) * (rank_position - lower_rank))
        filter (where percentile = 0.5) as mttr_p50_minutes,
        max(lower_value + (upper_value - lower_value) * (rank_position - lower_rank))
        filter (where percentile = 0.9) as mttr_p90_minutes
    from upper_values
    group by as_of_date, window_days, entity_level, entity_id
),

figures as (
    select
        windows.as_of_date,
        windows.window_days,
        windows.entity_level,
        windows.team_id,
        case when windows.entity_level = 'agent' then windows.entity_id end as agent_id,
        windows.in_roster,
        windows.window_start_date,
        totals.tickets,
        totals.attained,
        totals.warn,
        totals.breach,
        totals.resolved_tickets,
        percentiles.mttr_p50_minutes,
        percentiles.mttr_p90_minutes,
        totals.csat_responses,
        totals.attained::double precision / nullif(totals.tickets, 0) as attainment_rate,
        totals.warn::double precision / nullif(totals.tickets, 0) as warn_rate,
        totals.breach::double precision / nullif(totals.tickets, 0) as breach_rate,
        totals.csat_rating_sum,
        totals.csat_satisfied
    from windows
    inner join windowed_totals as totals
        on
            windows.as_of_date = totals.as_of_date
            and windows.window_days = totals.window_days
            and windows.entity_level = totals.entity_level
            and windows.entity_id = totals.entity_id
    left join windowed_percentiles as percentiles
        on
            windows.as_of_date = percentiles.as_of_date
            and windows.window_days = percentiles.window_days
            and windows.entity_level = percentiles.entity_level
            and windows.entity_id = percentiles.entity_id
),

-- Complementary suppression. A team's figures minus its published agents' give back the ratings of the
-- agents it hides: when a team and window has exactly one hidden cell with ratings (one agent below k,
-- or the team's ratings without an agent), and that cell is below k, the next smallest agent is
-- suppressed too, so what the difference gives back is the sum of two cells.
team_cells as (
    select
        as_of_date,
        window_days,
        team_id,
        coalesce(sum(csat_responses) filter (where entity_level = 'team'), 0)
        - coalesce(sum(csat_responses) filter (where entity_level = 'agent'), 0) as unassigned_responses,
        count(*) filter (
            where entity_level = 'agent' and csat_responses > 0 and csat_responses < {{ suppression_k }}
        ) as small_agents
    from figures
    group by as_of_date, window_days, team_id
),

exposed_teams as (
    select
        as_of_date,
        window_days,
        team_id
    from team_cells
    where
        small_agents + (unassigned_responses > 0)::int = 1
        and (small_agents = 1 or unassigned_responses < {{ suppression_k }})
),

complementary as (
    select distinct on (figures.as_of_date, figures.window_days, figures.team_id)
        figures.as_of_date,
        figures.window_days,
        figures.team_id,
        figures.agent_id
    from figures
    inner join exposed_teams
        on
            figures.as_of_date = exposed_teams.as_of_date
            and figures.window_days = exposed_teams.window_days
            and figures.team_id = exposed_teams.team_id
    where figures.entity_level = 'agent' and figures.csat_responses >= {{ suppression_k }}
    order by
        figures.as_of_date asc,
        figures.window_days asc,
        figures.team_id asc,
        figures.csat_responses asc,
        figures.agent_id asc
),

suppressed as (
    select
        figures.*,
        figures.csat_responses < {{ suppression_k }} or complementary.agent_id is not null as csat_suppressed
    from figures
    left join complementary
        on
            figures.as_of_date = complementary.as_of_date
            and figures.window_days = complementary.window_days
            and figures.team_id = complementary.team_id
            and figures.agent_id = complementary.agent_id
),

final as (
    select
        as_of_date,
        window_days,
        entity_level,
        team_id,
        agent_id,
        in_roster,
        window_start_date,
        tickets,
        attained,
        warn,
        breach,
        resolved_tickets,
        mttr_p50_minutes,
        mttr_p90_minutes,
        csat_responses,
        attainment_rate,
        warn_rate,
        breach_rate,
        csat_suppressed,
        case
            when not csat_suppressed then csat_rating_sum::double precision / nullif(csat_responses, 0)
        end as csat_mean,
        case
            when not csat_suppressed then 100 * csat_satisfied::double precision / nullif(csat_responses, 0)
        end as csat_satisfied_pct
    from suppressed
)

select * from final
