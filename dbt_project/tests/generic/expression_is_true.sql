{#-
    Fails with one row per row of the model for which the SQL boolean `expression` is false
    (null counts as a failure too: write the expression so that it handles nulls).
-#}
{% test expression_is_true(model, expression) %}
    select *
    from {{ model }}
    where not coalesce({{ expression }}, false)
{% endtest %}
