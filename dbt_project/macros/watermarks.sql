{#-
    Change tracking between incremental models: a model that reads only what changed upstream since
    its own last run.

    Staging stamps every row it writes with `staged_at` (its transaction's now()). A model that reads
    changes records, in its post-hook and inside its own transaction, the start of that transaction
    as its watermark in audit.dbt_model_watermarks; its next run reads the upstream rows stamped after
    it. A failed run commits neither its rows nor its watermark, so the next run covers its changes
    too. Exact as long as builds of the project do not overlap in time (the daily DAG runs one at a
    time), and a full refresh or a run without `start` reads everything.
-#}

{#-
    on-run-start: the audit tables the hooks write to (audit.dbt_model_watermarks, audit.dbt_model_runs)
    belong to routerloop's warehouse migrations, not to dbt. Stop with a clear message when a database
    has not been migrated yet (`routerloop build`, landing and the gates migrate it first).
-#}
{% macro require_warehouse_migrations() -%}
    do $$
    begin
        if to_regclass('audit.dbt_model_watermarks') is null or to_regclass('audit.dbt_model_runs') is null then
            raise exception 'routerloop: this warehouse has no audit tables yet: run `routerloop db migrate` first';
        end if;
    end $$
{%- endmacro %}

{#-
    SQL timestamp: the start of this model's last successful incremental or full run; -infinity when
    it has none. Only meaningful in an incremental run of a data interval (see reads_changes_only()).
-#}
{% macro last_run_watermark() -%}
    coalesce(
        (select watermarks.processed_through from audit.dbt_model_watermarks as watermarks
        where watermarks.model = '{{ this.schema }}.{{ this.identifier }}'),
        '-infinity'::timestamptz
    )
{%- endmacro %}

{#- True when this run reads only the upstream changes (an incremental run of a data interval). -#}
{% macro reads_changes_only() -%}
    {{ return(reprocess_from_date() is not none) }}
{%- endmacro %}

{#- Post-hook of a model that reads changes: records this run as its watermark. -#}
{% macro record_watermark() -%}
    insert into audit.dbt_model_watermarks (model, processed_through)
    values ('{{ this.schema }}.{{ this.identifier }}', now())
    on conflict (model) do update set processed_through = excluded.processed_through
{%- endmacro %}
