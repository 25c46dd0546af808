{#-
    The A/B metrics: how each is measured (binary = a 0/1 per unit, compared as proportions; continuous =
    a number per unit, compared by Welch's t-test) and in which direction it improves (dbt var
    ab_metric_directions, which is also the list of metric names experiments.csv may use).
    int_experiment_observations_unioned defines the values; this is the one list of their kinds.
-#}
{% macro ab_metric_kinds() %}
    {%- set kinds = {
        'sla_breach': 'binary',
        'csat_satisfied': 'binary',
        'outcome_success': 'binary',
        'mttr_minutes': 'continuous',
        'csat_rating': 'continuous',
    } -%}
    {%- set directions = var('ab_metric_directions') -%}
    {%- if kinds.keys() | sort | list != directions.keys() | sort | list -%}
        {{ exceptions.raise_compiler_error(
            "dbt var ab_metric_directions must name exactly the metrics " ~ (kinds.keys() | sort | join(', '))
            ~ "; it names " ~ (directions.keys() | sort | join(', '))) }}
    {%- endif -%}
    {%- set margins = var('ab_noninferiority_margins') -%}
    {%- if kinds.keys() | sort | list != margins.keys() | sort | list -%}
        {{ exceptions.raise_compiler_error(
            "dbt var ab_noninferiority_margins must name exactly the metrics " ~ (kinds.keys() | sort | join(', '))
            ~ "; it names " ~ (margins.keys() | sort | join(', '))) }}
    {%- endif -%}
    {%- for metric, margin in margins.items() if not (margin is number and margin >= 0) -%}
        {{ exceptions.raise_compiler_error(
            "dbt var ab_noninferiority_margins: " ~ metric ~ " must be a number >= 0, not " ~ margin) }}
    {%- endfor -%}
    {%- for metric, direction in directions.items() if direction not in ('lower', 'higher') -%}
        {{ exceptions.raise_compiler_error(
            "dbt var ab_metric_directions: " ~ metric ~ " must be 'lower' or 'higher', not " ~ direction) }}
    {%- endfor -%}
    {{ return(kinds) }}
{% endmacro %}

{#- A `values` list of (metric, metric_kind, metric_direction, noninferiority_margin) rows, for a CTE. -#}
{% macro ab_metric_catalog() -%}
    {%- set directions = var('ab_metric_directions') -%}
    {%- set margins = var('ab_noninferiority_margins') -%}
    values
    {%- for metric, kind in ab_metric_kinds().items() %}
        ('{{ metric }}', '{{ kind }}', '{{ directions[metric] }}', {{ margins[metric] }}::double precision)
        {{- ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
