{#-
    Helpers of the rolling SLA models (int_sla_outcomes_bucketed, int_sla_outcomes_daily_aggregated,
    int_sla_resolve_histograms_accumulated, int_sla_csat_windows_aggregated and the
    *_sla_csat_rolling marts).
-#}

{#-
    The first date an incremental SLA run recomputes: reprocess_from_date(), or earlier when a ticket
    staged since the calling model's last run (macros/watermarks.sql) was re-evaluated off an earlier
    date (its superseded_evaluated_date): the ticket leaves that date. None when the whole history is
    built. The calling model records its watermark (post-hook record_watermark) and declares
    `-- depends_on: {{ ref('stg_support__sla_outcomes') }}`.
-#}
{% macro sla_recompute_from_date() -%}
    {%- set from_date = reprocess_from_date() -%}
    {%- if from_date is none -%}
        {{ return(none) }}
    {%- else -%}
        {#- One line: it is inlined into other expressions. -#}
        least({{ from_date }}, (select min(moved.superseded_evaluated_date) from {{ ref('int_sla_outcomes_bucketed') }} as moved where moved.ticket_id = any(array(select changed.ticket_id from {{ ref('stg_support__sla_outcomes') }} as changed where changed.staged_at > {{ last_run_watermark() | replace('\n', ' ') }}))))
    {%- endif -%}
{%- endmacro %}

{#-
    Pre-hook of int_sla_outcomes_daily_aggregated: empties every date the run recomputes, so that a
    date whose tickets were all re-evaluated onto later dates loses its rows too (delete+insert only
    replaces the dates the new rows carry).
-#}
{% macro delete_sla_dates_to_recompute() -%}
    {%- set recompute_from = sla_recompute_from_date() -%}
    {%- if recompute_from is not none -%}
        delete from {{ this }} where evaluated_date >= {{ recompute_from }}
    {%- endif -%}
{%- endmacro %}

{#-
    Histogram bucket of a resolution time in minutes: floor(64 * ln(1 + minutes)), about 1.6 % wide
    relative to the value, so buckets hold similar numbers of values at every scale; -1 for a negative
    time. A non-decreasing function of the value, so bucket order is value order; no result depends
    on the width, only the speed of the percentile look-ups.
-#}
{% macro resolve_bucket(minutes) -%}
    case
        when {{ minutes }} < 0 then -1
        else floor(64 * ln(1 + {{ minutes }}))::integer
    end
{%- endmacro %}

{#- `where`-clause fragment: true when `date_column` must be (re)computed in this SLA run. -#}
{% macro in_sla_recompute_window(date_column) -%}
    {%- set recompute_from = sla_recompute_from_date() -%}
    {%- if recompute_from is none -%}
        true
    {%- else -%}
        {{ date_column }} >= {{ recompute_from }}
    {%- endif -%}
{%- endmacro %}
