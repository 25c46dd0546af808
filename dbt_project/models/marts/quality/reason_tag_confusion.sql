{{ config(materialized='table') }}

{#-
    Expected vs predicted tier per reason tag over rolling windows of decision dates, with the tag's
    mismatch rate: which tags go with repeated mismatches. Rebuilt from the daily aggregates on every
    run, so a full refresh equals any sequence of runs.
-#}

with

spine as (
    {{ quality_window_spine() }}
),

windowed as (
    select
        spine.as_of_date,
        spine.window_days,
        spine.window_start_date,
        daily.reason_tag,
        daily.expected_tier,
        daily.predicted_tier,
        sum(daily.n)::bigint as n
    from spine
    inner join {{ ref('int_reason_tag_tiers_daily_aggregated') }} as daily
        on daily.decision_date between spine.window_start_date and spine.as_of_date
    group by
        spine.as_of_date,
        spine.window_days,
        spine.window_start_date,
        daily.reason_tag,
        daily.expected_tier,
        daily.predicted_tier
),

final as (
    select
        as_of_date,
        window_days,
        window_start_date,
        reason_tag,
        expected_tier,
        predicted_tier,
        n,
        predicted_tier = expected_tier as is_match,
        (sum(n) over tag_window)::bigint as tag_decisions,
        coalesce(sum(n) filter (where predicted_tier != expected_tier) over tag_window, 0)::bigint as tag_mismatches,
        coalesce(sum(n) filter (where predicted_tier != expected_tier) over tag_window, 0)::double precision
        / nullif(sum(n) over tag_window, 0) as mismatch_rate
    from windowed
    window tag_window as (partition by as_of_date, window_days, reason_tag)
)

select * from final
