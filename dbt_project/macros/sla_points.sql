{#-
    The points of an SLA outcome (var sla_points: attained, warn, breach), the per-item value of the
    routing weights' sla component.
-#}

{#- SQL expression: the points (double precision) of the SLA outcome in `outcome`. -#}
{% macro sla_points(outcome) -%}
    case {{ outcome }}
    {%- for name, points in var('sla_points').items() %}
        when '{{ name }}' then {{ points | float }}
    {%- endfor %}
    end::double precision
{%- endmacro %}

{#- The points as text for descriptions and the weights' rationale: "attained 1, warn 0.5, breach 0". -#}
{% macro sla_points_text() -%}
    {%- set parts = [] -%}
    {%- for name, points in var('sla_points').items() -%}
        {%- do parts.append(name ~ ' ' ~ ('%g' | format(points | float))) -%}
    {%- endfor -%}
    {{ return(parts | join(', ')) }}
{%- endmacro %}
