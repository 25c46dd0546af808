{#-
    Advisory locks the dbt project takes, by name. The keys come from routerloop's one registry
    (plugins/routerloop/warehouse/locks.py: LOCK_CLASS and DBT_LOCKS); tests/test_migrations.py keeps
    this table equal to it.
-#}
{% macro routerloop_lock(name) -%}
    {%- set lock_class = 7302 -%}
    {%- set keys = {'udf_statistics': 4, 'udf_weights': 5} -%}
    select pg_advisory_xact_lock({{ lock_class }}, {{ keys[name] }})
{%- endmacro %}
