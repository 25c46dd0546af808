{#-
    dbt's relationships test (every non-null `column_name` of the model is a `field` of `to`), for a
    large parent with an index on `field`. When the test checks only the rows this run wrote
    (`where: __rows_written_this_run__`, macros/tests/rows_written_this_run.sql), each of those few
    child values is looked up in the parent through its index (lateral, limit 1) instead of hashing the
    whole parent, which on a long history costs seconds per test; otherwise it is dbt's join.
-#}
{% test relationships_by_index(model, column_name, to, field) %}
    {%- if not tests_only_rows_written_this_run() -%}
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
{% endtest %}
