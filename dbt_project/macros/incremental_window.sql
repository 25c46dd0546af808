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

{#-
    Staging reads only the raw day partitions of the reprocess window in an incremental run (the raw
    tables are partitioned by `_partition_hour`, so the others are pruned); a full refresh reads all.
-#}
{% macro raw_partitions_in_reprocess_window() -%}
    {%- set from_date = reprocess_from_date() -%}
    {%- if from_date is none -%}
        true
    {%- else -%}
        _partition_hour >= ({{ from_date }})::timestamp at time zone 'UTC'
    {%- endif -%}
{%- endmacro %}

{#-
    The rows a deduplicating staging model ranks: the window's rows, plus, in an incremental run, the
    rows it already holds for the same keys. Ranking both together keeps "first delivery wins" and
    "latest state wins" exact across runs, so incremental runs equal a full refresh.
    `cte` must have every column of the model (the model's final columns are a subset of it).
-#}
{% macro with_current_rows(cte, key_columns) -%}
    {%- if is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | join(', ') -%}
        {%- set key = key_columns | join(', ') -%}
        select {{ columns }} from {{ cte }}
        union all
        select {{ columns }} from {{ this }}
        where ({{ key }}) in (select {{ key }} from {{ cte }})
    {%- else -%}
        select * from {{ cte }}
    {%- endif -%}
{%- endmacro %}
