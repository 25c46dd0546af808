{{ config(materialized='table') }}

{#-
    Retraining triggers of the feedback loop, evaluated per rule version over the trailing
    `rule_alert_window_days` decision dates ending at the as-of date: the date before the run's `end`
    (exclusive; macros/incremental_window.sql) when it is given, else the last decision date. One row
    per rule version seen in that window and trigger; `triggered` says whether the threshold is crossed.
-#}
{%- set window_days = var('rule_alert_window_days') | int %}
{%- set interval_end = interval_bound('end') %}
{%- if interval_end is not none %}
    {%- set as_of_date = "((cast('" ~ interval_end ~ "' as timestamptz) - interval '1 microsecond') at time zone 'UTC')::date" %}
{%- else %}
    {%- set as_of_date = '(select max(daily.decision_date) from ' ~ ref('decision_performance_daily') ~ ' as daily)' %}
{%- endif %}

with

as_of as (
    select {{ as_of_date }} as as_of_date
),

trailing_window as (
    select
        as_of.as_of_date,
        performance.rule_version,
        sum(performance.total_decisions)::bigint as total_decisions,
        sum(performance.with_outcome)::bigint as with_outcome,
        sum(performance.positive_outcomes)::bigint as positive_outcomes,
        sum(performance.pending_outcomes)::bigint as pending_outcomes,
        {{ exact_sum('performance.avg_confidence * performance.decisions_with_confidence') }}
        / nullif(sum(performance.decisions_with_confidence), 0) as avg_confidence
    from {{ ref('decision_performance_daily') }} as performance
    inner join as_of
        on
            performance.decision_date > as_of.as_of_date - {{ window_days }}
            and performance.decision_date <= as_of.as_of_date
    group by as_of.as_of_date, performance.rule_version
),

measured as (
    select
        as_of_date,
        rule_version,
        total_decisions,
        with_outcome,
        pending_outcomes,
        'low_success_rate' as alert_trigger,
        positive_outcomes::double precision / nullif(with_outcome, 0) as measured_value,
        {{ var('rule_alert_min_success_rate') }}::double precision as threshold,
        with_outcome >= {{ var('rule_alert_min_outcomes') | int }}
        and positive_outcomes::double precision / nullif(with_outcome, 0)
        < {{ var('rule_alert_min_success_rate') }} as is_triggered,
        'critical' as severity,
        'Review failed decisions and consider rule adjustment' as recommended_action
    from trailing_window
    union all
    select
        as_of_date,
        rule_version,
        total_decisions,
        with_outcome,
        pending_outcomes,
        'low_avg_confidence' as alert_trigger,
        avg_confidence as measured_value,
        {{ var('rule_alert_min_avg_confidence') }}::double precision as threshold,
        avg_confidence < {{ var('rule_alert_min_avg_confidence') }} as is_triggered,
        'warning' as severity,
        'Review low-confidence decisions and retune the rule' as recommended_action
    from trailing_window
    union all
    select
        as_of_date,
        rule_version,
        total_decisions,
        with_outcome,
        pending_outcomes,
        'pending_outcomes' as alert_trigger,
        pending_outcomes::double precision as measured_value,
        {{ var('rule_alert_max_pending_outcomes') }}::double precision as threshold,
        pending_outcomes > {{ var('rule_alert_max_pending_outcomes') | int }} as is_triggered,
        'info' as severity,
        'Request outcome feedback; create training samples' as recommended_action
    from trailing_window
)

select
    as_of_date,
    as_of_date - {{ window_days - 1 }} as window_start_date,
    rule_version,
    alert_trigger,
    measured_value,
    threshold,
    coalesce(is_triggered, false) as triggered,
    severity,
    recommended_action,
    total_decisions,
    with_outcome,
    pending_outcomes
from measured
