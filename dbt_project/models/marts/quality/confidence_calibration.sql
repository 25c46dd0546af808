{{ config(materialized='table') }}

{#-
    Reliability of the router's confidence over rolling windows of decision dates: per rule version and
    confidence bin, how many decisions, their mean confidence and the share whose tier was right.
    Rebuilt from the daily aggregates on every run, so a full refresh equals any sequence of runs.
-#}
{%- set bins = var('calibration_bins') | int %}

with

spine as (
    {{ quality_window_spine() }}
),

windowed as (
    select
        spine.as_of_date,
        spine.window_days,
        spine.window_start_date,
        daily.rule_version,
        daily.bin,
        sum(daily.n)::bigint as n,
        {{ exact_sum('daily.confidence_sum') }} as confidence_sum,
        sum(daily.tier_matches)::bigint as tier_matches
    from spine
    inner join {{ ref('int_confidence_bins_daily_aggregated') }} as daily
        on daily.decision_date between spine.window_start_date and spine.as_of_date
    group by spine.as_of_date, spine.window_days, spine.window_start_date, daily.rule_version, daily.bin
),

-- Every bin of every rule version with calibrated decisions in the window (empty bins show n = 0).
rule_windows as (
    select distinct
        as_of_date,
        window_days,
        window_start_date,
        rule_version
    from windowed
),

bins as (
    select
        bin_numbers.bin,
        (bin_numbers.bin - 1)::double precision / {{ bins }} as bin_lower,
        bin_numbers.bin::double precision / {{ bins }} as bin_upper
    from generate_series(1, {{ bins }}) as bin_numbers (bin)
),

final as (
    select
        rule_windows.as_of_date,
        rule_windows.window_days,
        rule_windows.window_start_date,
        rule_windows.rule_version,
        bins.bin,
        bins.bin_lower,
        bins.bin_upper,
        coalesce(windowed.n, 0) as n,
        coalesce(windowed.tier_matches, 0) as tier_matches,
        windowed.confidence_sum / nullif(windowed.n, 0) as mean_confidence,
        windowed.tier_matches::double precision / nullif(windowed.n, 0) as tier_accuracy
    from rule_windows
    cross join bins
    left join windowed
        on
            rule_windows.as_of_date = windowed.as_of_date
            and rule_windows.window_days = windowed.window_days
            and rule_windows.rule_version = windowed.rule_version
            and bins.bin = windowed.bin
)

select * from final
