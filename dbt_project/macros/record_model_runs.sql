{#-
    on-run-end hook: records which models this invocation built successfully in
    audit.dbt_model_runs, so the export can name the dbt invocation that built the weights it
    publishes (a Cosmos task runs dbt in a temporary copy of the project, so run_results.json is not
    where routerloop could read it afterwards).
-#}
{% macro record_model_runs(results) -%}
    {%- if execute -%}
        {%- set rows = [] -%}
        {%- for result in results if result.node.resource_type == 'model' and result.status == 'success' -%}
            {%- do rows.append("('" ~ invocation_id ~ "', '" ~ result.node.name ~ "', 'success')") -%}
        {%- endfor -%}
        {%- if rows %}
        insert into audit.dbt_model_runs (invocation_id, model, status)
        values {{ rows | join(', ') }}
        on conflict do nothing;
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
