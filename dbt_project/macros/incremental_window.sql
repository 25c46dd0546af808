{#-
    The data interval of an incremental run, widened by the lookback for late data.

    Airflow passes its data interval as vars `start` and `end` (ISO timestamps). An incremental model
    re-computes every date from `start - lookback_days` on; a full refresh, or a run without `start`,
    computes everything. This is the one place that turns the interval into SQL (cf. cal-itp's
    incremental_filter_ranged).

    reprocess_from_date(): a SQL date literal, or none when the whole history must be built.
-#}
{% macro reprocess_from_date() -%}
    {%- if is_incremental() and var('start', none) is not none -%}
        (cast('{{ var("start") }}' as timestamptz) at time zone 'UTC')::date - {{ var('lookback_days') | int }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#- `where`-clause fragment: true when `date_column` must be (re)computed in this run. -#}
{% macro in_reprocess_window(date_column) -%}
    {%- set from_date = reprocess_from_date() -%}
    {%- if from_date is none -%}
        true
    {%- else -%}
        {{ date_column }} >= {{ from_date }}
    {%- endif -%}
{%- endmacro %}
