{#-
    Opt-in, per data test: `config: {where: __rows_written_this_run__}` makes the test check only the
    rows this run wrote when the run is an incremental run of a data interval, instead of the whole
    history again (which would cost more than the run itself on a long history). The tested model
    stamps every row it writes with its transaction's now() in an indexed `staged_at` (staging does),
    so the rows written are those holding the newest stamp. Full refreshes and runs without `start`
    test every row. The sentinel may also be a part of a longer `where` (`... and __rows_written_this_run__`).
    Uniqueness across the whole table stays enforced by the models' unique indexes.

    dbt renders a test's `where` when it parses the project, before the run's interval is known, and
    wraps a generic test's `model` in get_where_subquery while compiling it: the one hook that sees
    the run. This override only replaces the sentinel; any other `where` goes to dbt's own macro
    unchanged (as cal-itp's data-infra does with its `__rt_sampled__`).
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- if rows_written_this_run_sentinel() not in where -%}
        {{ return(dbt.get_where_subquery(relation)) }}
    {%- endif -%}
    {%- if interval_reprocess_from_date() is none -%}
        {%- set written = 'true' -%}
    {%- else -%}
        {%- set written = 'staged_at >= (select max(stamped.staged_at) from ' ~ relation ~ ' as stamped)' -%}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ relation }} where {{ where | replace(rows_written_this_run_sentinel(), written) }}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}

{#- The `where` sentinel of get_where_subquery. -#}
{% macro rows_written_this_run_sentinel() -%}
    {{ return('__rows_written_this_run__') }}
{%- endmacro %}

{#- True in a data test that checks only the rows this run wrote (the sentinel narrows its rows). -#}
{% macro tests_only_rows_written_this_run() -%}
    {{ return(rows_written_this_run_sentinel() in (config.get('where') or '')
        and interval_reprocess_from_date() is not none) }}
{%- endmacro %}
