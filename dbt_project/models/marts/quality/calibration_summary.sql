{{ config(materialized='table') }}

{#-
    Expected calibration error per rule version over rolling windows: the bin-size-weighted mean gap
    between a bin's tier accuracy and its mean confidence (confidence_calibration).
-#}

with

bins as (
    select
        as_of_date,
        window_days,
        window_start_date,
        rule_version,
        n,
        tier_matches,
        mean_confidence,
        tier_accuracy
    from {{ ref('confidence_calibration') }}
),

final as (
    select
        as_of_date,
        window_days,
        window_start_date,
        rule_version,
        sum(n)::bigint as n,
        -- a window without decisions: null figures, not a division by zero
        {{ exact_sum('mean_confidence * n') }} / nullif(sum(n), 0) as mean_confidence,
        sum(tier_matches)::double precision / nullif(sum(n), 0) as tier_accuracy,
        {{ exact_sum('n * abs(tier_accuracy - mean_confidence)', filter='n > 0') }} / nullif(sum(n), 0) as ece
    from bins
    group by as_of_date, window_days, window_start_date, rule_version
)

select * from final
