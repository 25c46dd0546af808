{#-
    Data tests of an incremental run of a data interval check the rows the run wrote, not the whole
    history again (which would cost more than the run itself on a long history). A model opts in with
    meta `reprocessed_stamp_column`: a column every write stamps with the writing transaction's now()
    (staging's staged_at), indexed; the test then reads the rows holding the newest stamp. Full
    refreshes and runs without `start` test every row. Uniqueness across the whole table stays
    enforced by the models' unique indexes.
    Overrides dbt's get_where_subquery (which wraps a generic test's `model` argument); a test's own
    `where` config still applies.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set from_date = interval_reprocess_from_date() -%}
    {%- if execute and from_date is not none -%}
        {%- set tested = graph.nodes.get(model.get('attached_node')) or {} -%}
        {%- set meta = tested.get('config', {}).get('meta', {}) or {} -%}
        {%- set stamp = meta.get('reprocessed_stamp_column') -%}
        {%- if stamp -%}
            {%- do conditions.append(stamp ~ " >= (select max(stamped." ~ stamp ~ ") from " ~ relation
                ~ " as stamped)") -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
