{#-
    dbt's relationships test, with one change for incremental runs of a data interval: their data
    tests check only the rows the run wrote (macros/get_where_subquery.sql), so each of those few child
    values is looked up in the parent through its index (lateral, limit 1) instead of hashing the whole
    parent table, which on a long history costs seconds per test. Builds of the whole history use
    dbt's join.
-#}
{% macro postgres__test_relationships(model, column_name, to, field) %}
    {%- if interval_reprocess_from_date() is none -%}
        {{ dbt.default__test_relationships(model, column_name, to, field) }}
    {%- else %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
)

select child.from_field
from child
left join lateral (
    select true as found
    from {{ to }} as parent
    where parent.{{ field }} = child.from_field
    limit 1
) as parent on true
where parent.found is null

    {%- endif %}
{% endmacro %}
