{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['feedback_date', 'channel_id', 'source'],
        on_schema_change='fail',
        indexes=[{'columns': ['feedback_date', 'channel_id', 'source'], 'unique': true}],
        post_hook="{{ record_watermark() }}",
    )
}}

{#-
    Where feedback comes from and how much of it reaches a decision, per UTC feedback date, channel and
    source. An incremental run recomputes the feedback dates of every feedback it re-linked.
-#}
{%- set from_date = reprocess_from_date() %}

with

feedback as (
    select
        feedback_date,
        channel_id,
        source,
        link_rule,
        needs_review,
        latency_from_decision_sec,
        expected_tier,
        expected_action
    from {{ ref('int_feedback_linked_to_decisions') }}
    {%- if from_date is not none %}
    where feedback_date in (
        select relinked.feedback_date
        from {{ ref('int_feedback_linked_to_decisions') }} as relinked
        where {{ relinked_in_run('relinked') }}
    )
    {%- endif %}
),

aggregated as (
    select
        feedback_date,
        channel_id,
        source,
        count(*) as feedback,
        count(link_rule) as linked,
        count(*) filter (where link_rule = 'decision_id') as linked_by_decision_id,
        count(*) filter (where link_rule = 'linked_decision_id') as linked_by_linked_decision_id,
        count(*) filter (where link_rule = 'nearest_in_thread') as linked_by_nearest_in_thread,
        count(*) filter (where needs_review) as needs_review,
        count(expected_tier) as with_expected_tier,
        count(expected_action) as with_expected_action,
        count(latency_from_decision_sec) as with_latency,
        percentile_cont(0.5) within group (order by latency_from_decision_sec) as latency_p50_sec,
        percentile_cont(0.9) within group (order by latency_from_decision_sec) as latency_p90_sec
    from feedback
    group by feedback_date, channel_id, source
),

final as (
    select
        feedback_date,
        channel_id,
        source,
        feedback,
        linked,
        feedback - linked as unlinked,
        linked_by_decision_id,
        linked_by_linked_decision_id,
        linked_by_nearest_in_thread,
        needs_review,
        with_expected_tier,
        with_expected_action,
        with_latency,
        100 * linked::double precision / nullif(feedback, 0) as linked_pct,
        100 * needs_review::double precision / nullif(feedback, 0) as needs_review_pct,
        latency_p50_sec,
        latency_p90_sec
    from aggregated
)

select * from final
