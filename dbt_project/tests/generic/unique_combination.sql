{#-
    Fails with one row per combination of `combination_of_columns` that occurs more than once
    (a null is a value here: two rows with the same nulls are duplicates too).
-#}
{% test unique_combination(model, combination_of_columns) %}
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
