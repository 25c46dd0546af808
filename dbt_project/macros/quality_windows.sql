{#-
    The as-of dates x windows of the rolling routing-quality marts (reason_tag_confusion,
    classification_metrics, confidence_calibration): every UTC date from the first to the last decision
    date holding a decision with an expected tier or action (tier_confusion_daily, action_confusion_daily)
    x every window of var quality_windows. A window of w days ending at as_of_date covers the decision
    dates as_of_date - w + 1 .. as_of_date. Columns: as_of_date, window_days, window_start_date.
-#}
{% macro quality_window_spine() -%}
{%- set windows = var('quality_windows') | map('int') | list %}
{%- set tier_daily = ref('tier_confusion_daily') %}
{%- set action_daily = ref('action_confusion_daily') %}
    select
        as_of_dates.as_of_date,
        quality_windows.window_days,
        as_of_dates.as_of_date - quality_windows.window_days + 1 as window_start_date
    from (
        {{ date_spine(
            'least((select min(tier_daily.decision_date) from ' ~ tier_daily ~ ' as tier_daily), '
            ~ '(select min(action_daily.decision_date) from ' ~ action_daily ~ ' as action_daily))',
            'greatest((select max(tier_daily.decision_date) from ' ~ tier_daily ~ ' as tier_daily), '
            ~ '(select max(action_daily.decision_date) from ' ~ action_daily ~ ' as action_daily))',
            'as_of_date'
        ) }}
    ) as as_of_dates
    cross join
        (values {% for w in windows %}({{ w }}){{ ', ' if not loop.last }}{% endfor %}) as quality_windows (window_days)
{%- endmacro %}
