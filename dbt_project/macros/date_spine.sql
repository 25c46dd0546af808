{#-
    One row per calendar date from `start_date` to `end_date`, both inclusive, in a column named
    `column_name`. Both arguments are SQL expressions of type date (a column, a literal, a scalar
    subquery); an empty range gives no rows. dbt_utils is not available, so this is the project's own.
-#}
{% macro date_spine(start_date, end_date, column_name='spine_date') -%}
    select cast(spine_day as date) as {{ column_name }}
    from generate_series(
        cast({{ start_date }} as timestamp),
        cast({{ end_date }} as timestamp),
        interval '1 day'
    ) as spine (spine_day)
{%- endmacro %}
