-- depends_on: {{ ref('int_feedback_linked_to_decisions') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_date', 'rule_version', 'bin'],
        on_schema_change='fail',
        pre_hook="{{ delete_relabelled('decision_date') }}",
        post_hook="{{ record_watermark() }}",
        indexes=[{'columns': ['decision_date', 'rule_version', 'bin'], 'unique': true}],
    )
}}

{#-
    Decisions with an expected tier and a confidence per decision date, rule version and confidence
    bin: the additive parts of marts.confidence_calibration. An incremental run recomputes the decision
    dates of the relabelled decisions.
-#}

with

calibrated as (
    select
        decision_date,
        rule_version,
        confidence,
        {{ confidence_bin('confidence', var('calibration_bins') | int) }} as bin,
        predicted_tier = expected_tier as is_match
    from {{ ref('int_decisions_labelled_by_feedback') }}
    where
        expected_tier is not null
        and confidence is not null
        and {{ in_relabelled_dates('decision_date') }}
),

final as (
    select
        decision_date,
        rule_version,
        bin,
        count(*) as n,
        {{ exact_sum('confidence') }} as confidence_sum,
        count(*) filter (where is_match) as tier_matches
    from calibrated
    group by decision_date, rule_version, bin
)

select * from final
