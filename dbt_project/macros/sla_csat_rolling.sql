{#-
    The rolling SLA/CSAT figures of marts.team_sla_csat_rolling (level='team') and
    marts.agent_sla_csat_rolling (level='agent'): one row per as-of date x window x team (or agent)
    from the first to the last date with SLA or CSAT data. Both marts share this one definition.

    Windows are var('rolling_windows'); a window of w days ending at D covers dates D - w + 1 .. D.
    Counts are sums of daily counts. The MTTR percentiles are exactly percentile_cont: a window's
    histogram of resolution times is the difference of the running bucket totals at D and D - w
    (int_sla_resolve_histograms_accumulated); it locates the bucket holding each needed rank, and
    only that bucket's values in the window (int_sla_outcomes_bucketed, through an index) are sorted
    to read the value at the rank.
-#}
{% macro sla_csat_rolling(level) -%}
{%- set windows = var('rolling_windows') | map('int') | list %}
{%- set longest_window = windows | max %}
{%- set entity = 'team_id' if level == 'team' else 'agent_id' %}
{%- set from_date = reprocess_from_date() %}

with

{% if from_date is not none -%}
recompute_from as (
    select {{ sla_recompute_from_date() }} as first_as_of_date
),

{% endif -%}
entities as (
    {%- if level == 'team' %}
    select teams.team_id
    from {{ ref('teams') }} as teams
    {%- else %}
    select
        agents.team_id,
        agents.agent_id
    from {{ ref('agents') }} as agents
    {%- endif %}
),

date_bounds as (
    select
        least(sla.first_date, csat.first_date) as first_date,
        greatest(sla.last_date, csat.last_date) as last_date
    from (
        select
            min(evaluated_date) as first_date,
            max(evaluated_date) as last_date
        from {{ ref('int_sla_outcomes_daily_aggregated') }}
    ) as sla
    cross join (
        select
            min(submitted_date) as first_date,
            max(submitted_date) as last_date
        from {{ ref('int_csat_ratings_daily_aggregated') }}
    ) as csat
),

as_of_dates as (
    {{ date_spine(
        'greatest((select date_bounds.first_date from date_bounds), (select recompute_from.first_as_of_date from recompute_from))'
        if from_date is not none else '(select date_bounds.first_date from date_bounds)',
        '(select date_bounds.last_date from date_bounds)',
        'as_of_date'
    ) }}
),

rolling_windows as (
    select window_lengths.window_days
    from (values {% for w in windows %}({{ w }}){{ ', ' if not loop.last }}{% endfor %}) as window_lengths (window_days)
),

spine as (
    select
        as_of_dates.as_of_date,
        rolling_windows.window_days,
        as_of_dates.as_of_date - rolling_windows.window_days + 1 as window_start_date,
        {%- if level == 'agent' %}
        entities.agent_id,
        {%- endif %}
        entities.team_id
    from as_of_dates
    cross join rolling_windows
    cross join entities
),

-- Daily counts reach back one longest window before the first recomputed as-of date.
daily_activity as (
    select
        evaluated_date as activity_date,
        {{ entity }},
        tickets,
        attained,
        warn,
        breach,
        resolved_tickets,
        0 as csat_responses,
        0 as csat_rating_sum,
        0 as csat_satisfied
    from {{ ref('int_sla_outcomes_daily_aggregated') }}
    where
        {{ entity }} = any(array(select entities.{{ entity }} from entities))
        {%- if from_date is not none %}
        and evaluated_date > (select recompute_from.first_as_of_date from recompute_from) - {{ longest_window }}
        {%- endif %}
    union all
    select
        submitted_date as activity_date,
        {{ entity }},
        0 as tickets,
        0 as attained,
        0 as warn,
        0 as breach,
        0 as resolved_tickets,
        responses as csat_responses,
        rating_sum as csat_rating_sum,
        satisfied_responses as csat_satisfied
    from {{ ref('int_csat_ratings_daily_aggregated') }}
    where
        {{ entity }} = any(array(select entities.{{ entity }} from entities))
        {%- if from_date is not none %}
        and submitted_date > (select recompute_from.first_as_of_date from recompute_from) - {{ longest_window }}
        {%- endif %}
),

windowed_totals as (
    select
        spine.as_of_date,
        spine.window_days,
        spine.{{ entity }},
        coalesce(sum(daily_activity.tickets), 0)::bigint as tickets,
        coalesce(sum(daily_activity.attained), 0)::bigint as attained,
        coalesce(sum(daily_activity.warn), 0)::bigint as warn,
        coalesce(sum(daily_activity.breach), 0)::bigint as breach,
        coalesce(sum(daily_activity.resolved_tickets), 0)::bigint as resolved_tickets,
        coalesce(sum(daily_activity.csat_responses), 0)::bigint as csat_responses,
        coalesce(sum(daily_activity.csat_rating_sum), 0)::bigint as csat_rating_sum,
        coalesce(sum(daily_activity.csat_satisfied), 0)::bigint as csat_satisfied
    from spine
    left join daily_activity
        on
            spine.{{ entity }} = daily_activity.{{ entity }}
            and daily_activity.activity_date between spine.window_start_date and spine.as_of_date
    group by spine.as_of_date, spine.window_days, spine.{{ entity }}
),

-- A window's histogram is the running totals at its end minus those on the day before it starts.
-- The running totals hold a row per date up to their last date; later dates carry the last totals.
totals_last as (
    select max(evaluated_date) as evaluated_date
    from {{ ref('int_sla_resolve_histograms_accumulated') }}
),

histogram_terms as (
    select
        spine.as_of_date,
        spine.window_days,
        spine.{{ entity }},
        least(spine.as_of_date, totals_last.evaluated_date) as total_date,
        1 as sign
    from spine
    cross join totals_last
    union all
    select
        spine.as_of_date,
        spine.window_days,
        spine.{{ entity }},
        least(spine.window_start_date - 1, totals_last.evaluated_date) as total_date,
        -1 as sign
    from spine
    cross join totals_last
),

-- Running bucket totals of the entity on the dates windows end on or stop before.
histogram_ends as (
    select
        totals.evaluated_date,
        totals.{{ entity }},
        totals.resolve_bucket,
        sum(totals.resolutions_to_date) as resolutions_to_date
    from {{ ref('int_sla_resolve_histograms_accumulated') }} as totals
    -- Arrays rather than semi-joins: the planner then reads just those dates through the index.
    where
        totals.{{ entity }} = any(array(select entities.{{ entity }} from entities))
        and totals.evaluated_date = any(array(select distinct histogram_terms.total_date from histogram_terms))
    group by totals.evaluated_date, totals.{{ entity }}, totals.resolve_bucket
),

-- Per window and bucket: how many of the window's resolution times sort before / through the bucket.
windowed_histogram as (
    select
        as_of_date,
        window_days,
        {{ entity }},
        resolve_bucket,
        (sum(resolutions) over bucket_order - resolutions)::bigint as ranks_before,
        (sum(resolutions) over bucket_order)::bigint as ranks_through
    from (
        select
            histogram_terms.as_of_date,
            histogram_terms.window_days,
            histogram_terms.{{ entity }},
            histogram_ends.resolve_bucket,
            sum(histogram_terms.sign * histogram_ends.resolutions_to_date) as resolutions
        from histogram_terms
        inner join histogram_ends
            on
                histogram_terms.total_date = histogram_ends.evaluated_date
                and histogram_terms.{{ entity }} = histogram_ends.{{ entity }}
        group by
            histogram_terms.as_of_date,
            histogram_terms.window_days,
            histogram_terms.{{ entity }},
            histogram_ends.resolve_bucket
    ) as bucket_counts
    where resolutions > 0
    window bucket_order as (
        partition by as_of_date, window_days, {{ entity }}
        order by resolve_bucket
    )
),

-- percentile_cont(p) over n sorted values: the values at 0-based ranks floor(p * (n - 1)) and
-- ceil(p * (n - 1)), interpolated linearly by the fractional part of p * (n - 1).
percentile_positions as (
    select
        windowed_totals.as_of_date,
        windowed_totals.window_days,
        windowed_totals.{{ entity }},
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
        positions.{{ entity }},
        positions.percentile,
        positions.rank_position,
        positions.lower_rank,
        positions.upper_rank,
        positions.upper_rank < histogram.ranks_through as upper_in_bucket,
        bucket_values.resolve_minutes[1] as lower_value,
        bucket_values.resolve_minutes[2] as next_value
    from percentile_positions as positions
    inner join windowed_histogram as histogram
        on
            positions.as_of_date = histogram.as_of_date
            and positions.window_days = histogram.window_days
            and positions.{{ entity }} = histogram.{{ entity }}
            and positions.lower_rank >= histogram.ranks_before
            and positions.lower_rank < histogram.ranks_through
    cross join lateral (
        select array_agg(in_bucket.resolve_minutes order by in_bucket.resolve_minutes) as resolve_minutes
        from (
            select outcomes.resolve_minutes
            from {{ ref('int_sla_outcomes_bucketed') }} as outcomes
            where
                outcomes.{{ entity }} = positions.{{ entity }}
                and outcomes.resolve_bucket = histogram.resolve_bucket
                and outcomes.evaluated_date
                between positions.as_of_date - positions.window_days + 1 and positions.as_of_date
            order by outcomes.resolve_minutes
            limit 2
            offset positions.lower_rank - histogram.ranks_before
        ) as in_bucket
    ) as bucket_values
),

-- When the upper rank opens the next bucket, its value is that bucket's smallest in the window.
straddling_values as (
    select
        lower_values.as_of_date,
        lower_values.window_days,
        lower_values.{{ entity }},
        lower_values.percentile,
        first_in_bucket.resolve_minutes
    from lower_values
    inner join windowed_histogram as histogram
        on
            lower_values.as_of_date = histogram.as_of_date
            and lower_values.window_days = histogram.window_days
            and lower_values.{{ entity }} = histogram.{{ entity }}
            and lower_values.upper_rank = histogram.ranks_before
    cross join lateral (
        select outcomes.resolve_minutes
        from {{ ref('int_sla_outcomes_bucketed') }} as outcomes
        where
            outcomes.{{ entity }} = lower_values.{{ entity }}
            and outcomes.resolve_bucket = histogram.resolve_bucket
            and outcomes.evaluated_date
            between lower_values.as_of_date - lower_values.window_days + 1 and lower_values.as_of_date
        order by outcomes.resolve_minutes
        limit 1
    ) as first_in_bucket
    where lower_values.upper_rank > lower_values.lower_rank and not lower_values.upper_in_bucket
),

upper_values as (
    select
        lower_values.as_of_date,
        lower_values.window_days,
        lower_values.{{ entity }},
        lower_values.percentile,
        lower_values.rank_position,
        lower_values.lower_rank,
        lower_values.lower_value,
        case
            when lower_values.upper_rank = lower_values.lower_rank then lower_values.lower_value
            when lower_values.upper_in_bucket then lower_values.next_value
            else straddling_values.resolve_minutes
        end as upper_value
    from lower_values
    left join straddling_values
        on
            lower_values.as_of_date = straddling_values.as_of_date
            and lower_values.window_days = straddling_values.window_days
            and lower_values.{{ entity }} = straddling_values.{{ entity }}
            and lower_values.percentile = straddling_values.percentile
),

windowed_percentiles as (
    select
        as_of_date,
        window_days,
        {{ entity }},
        max(lower_value + (upper_value - lower_value) * (rank_position - lower_rank))
            filter (where percentile = 0.5) as mttr_p50_minutes,
        max(lower_value + (upper_value - lower_value) * (rank_position - lower_rank))
            filter (where percentile = 0.9) as mttr_p90_minutes
    from upper_values
    group by as_of_date, window_days, {{ entity }}
)

select
    spine.as_of_date,
    spine.window_days,
    spine.window_start_date,
    spine.team_id,
    {%- if level == 'agent' %}
    spine.agent_id,
    {%- endif %}
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
    totals.csat_responses < {{ var('csat_suppression_k') | int }} as csat_suppressed,
    case
        when totals.csat_responses >= {{ var('csat_suppression_k') | int }}
            then totals.csat_rating_sum::double precision / totals.csat_responses
    end as csat_mean,
    case
        when totals.csat_responses >= {{ var('csat_suppression_k') | int }}
            then 100 * totals.csat_satisfied::double precision / totals.csat_responses
    end as csat_satisfied_pct
from spine
inner join windowed_totals as totals
    on
        spine.as_of_date = totals.as_of_date
        and spine.window_days = totals.window_days
        and spine.{{ entity }} = totals.{{ entity }}
left join windowed_percentiles as percentiles
    on
        spine.as_of_date = percentiles.as_of_date
        and spine.window_days = percentiles.window_days
        and spine.{{ entity }} = percentiles.{{ entity }}
{%- endmacro %}
