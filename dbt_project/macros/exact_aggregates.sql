{#-
    Sums and means of floats that do not depend on the order rows arrive in. A float sum's last bits
    follow the order of its inputs, which hash joins and incremental runs (a day's rows deleted and
    inserted again) change, so the same data could give a mart whose checksum differs from a full
    refresh. numeric accumulates exactly: the same rows give the same double in any order. Each value
    goes through its shortest round-trip text (float8 -> numeric directly keeps only 15 digits).
    `filter` is an aggregate FILTER condition, `over` a window definition.
-#}
{% macro exact_sum(expression, filter=none, over=none) -%}
    {{ _exact_aggregate('sum', expression, filter, over) }}
{%- endmacro %}

{% macro exact_avg(expression, filter=none, over=none) -%}
    {{ _exact_aggregate('avg', expression, filter, over) }}
{%- endmacro %}

{% macro _exact_aggregate(aggregate, expression, filter, over) -%}
    ({{ aggregate }}(({{ expression }})::text::numeric)
    {%- if filter is not none %} filter (where {{ filter }}){% endif %}
    {%- if over is not none %} over ({{ over }}){% endif %})::double precision
{%- endmacro %}
