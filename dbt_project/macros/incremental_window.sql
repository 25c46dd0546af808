{#-
    The data interval of an incremental run, widened by the lookback for late data.

    The data interval [start, end) (ISO timestamps) comes from the environment variables
    ROUTERLOOP_DBT_START / ROUTERLOOP_DBT_END, which routerloop.build and the daily DAG set, or from
    the vars `start` / `end` when they are given (dbt called by hand, unit test overrides). An
    incremental model re-computes every date from `start - lookback_days` on; a full refresh, or a run
    without `start`, computes everything. This is the one place that turns the interval into SQL (cf.
    cal-itp's incremental_filter_ranged).

    reprocess_from_date(): a SQL date literal, or none when the whole history must be built.
-#}
{#-
    One end of the run's data interval (`name` is 'start' or 'end'), or none. Read only while
    executing, from the var when one is given, else from the environment (routerloop.config.
    DBT_INTERVAL_ENV names the variables): dbt re-parses the whole project when --vars change
    (about 10 s here), so an interval passed as vars would cost every hourly or daily run a full
    parse; an environment variable read at execution time leaves dbt's partial parse valid. Nothing
    at parse time depends on the interval (refs and configs are the same for every interval).
-#}
{% macro interval_bound(name) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {#- A var that is set, even to null (a unit test's "no interval"), wins over the environment. -#}
    {%- set not_given = '<not given>' -%}
    {%- set given = var(name, not_given) -%}
    {%- if given != not_given -%}
        {{ return(given or none) }}
    {%- endif -%}
    {{ return(env_var('ROUTERLOOP_DBT_' ~ (name | upper), '') or none) }}
{%- endmacro %}

{% macro reprocess_from_date() -%}
    {%- if is_incremental() -%}
        {{ return(interval_reprocess_from_date()) }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#- The same date for any node (tests too): none without `start` or in a full refresh. -#}
{% macro interval_reprocess_from_date() -%}
    {%- set start = interval_bound('start') -%}
    {%- if start is not none and not flags.FULL_REFRESH -%}
        {{ return("(cast('" ~ start ~ "' as timestamptz) at time zone 'UTC')::date - "
            ~ (var('lookback_days') | int)) }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#- `where`-clause fragment: true when `date_column` must be (re)computed in this run. -#}
{% macro in_reprocess_window(date_column) -%}
    {%- set from_date = reprocess_from_date() -%}
    {%- if from_date is none -%}
        true
    {%- else -%}
        {{ date_column }} >= {{ from_date }}
    {%- endif -%}
{%- endmacro %}

{#-
    The raw rows a staging model reads: in an incremental run, the rows of the files landed into the
    reprocess window's day partitions (`_partition_hour`; the other partitions are pruned) that the
    model has not read yet; a full refresh reads all. A file has been read when a row of it is staged
    (file_id, indexed): a file is visible to a run together with all its rows (one landing
    transaction per file), so a run that staged one of its rows read all of them. A file none of whose
    rows won (all re-deliveries, say) is read again by later runs, to the same effect.
    `stream` names the raw table and the ledger's stream (raw.landed_files).
-#}
{% macro raw_rows_to_stage(stream) -%}
    {%- set from_date = reprocess_from_date() -%}
    {%- if from_date is none -%}
        true
    {%- else -%}
        {%- set unseen_files -%}
            select ledger.file_id, ledger.partition_hour
            from {{ source('landing', 'landed_files') }} as ledger
            where
                ledger.stream = '{{ stream }}'
                and ledger.partition_hour >= ({{ from_date }})::timestamp at time zone 'UTC'
                and not exists (select from {{ this }} as staged where staged.file_id = ledger.file_id)
        {%- endset -%}
        _partition_hour >= ({{ from_date }})::timestamp at time zone 'UTC'
        -- Prunes, at run time, the day partitions before the first unseen file's.
        and _partition_hour >= (select coalesce(min(unseen.partition_hour), 'infinity') from ({{ unseen_files }}) as unseen)
        and _file_id = any(array(select unseen.file_id from ({{ unseen_files }}) as unseen))
    {%- endif -%}
{%- endmacro %}

{#-
    The rows a deduplicating staging model ranks: the window's rows, plus, in an incremental run, the
    rows it already holds for the same keys. Ranking both together keeps "first delivery wins" and
    "latest state wins" exact across runs, so incremental runs equal a full refresh.

    A window row that cannot beat the row already held for its key (the held row ranks before it in
    `order_columns`, or is that very row) cannot change the model, so an incremental run drops it
    before ranking: the run then ranks and rewrites only the keys of new deliveries, not every row of
    the window's partitions again. `order_columns` is the model's ranking order (the first row wins),
    all ascending, or all descending with `descending=true`.
    `cte` must have every column of the model (the model's final columns are a subset of it).
-#}
{% macro with_current_rows(cte, key_columns, order_columns, descending=false) -%}
    {%- if is_incremental() -%}
        {#- staged_at is stamped by the model on the rows it writes. -#}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name')
            | reject('equalto', 'staged_at') | join(', ') -%}
        {%- set key = key_columns | join(', ') -%}
        {%- set held_order = 'held.' ~ order_columns | join(', held.') -%}
        {%- set delivered_order = 'delivered.' ~ order_columns | join(', delivered.') -%}
        with new_deliveries as (
            select {{ columns }} from {{ cte }} as delivered
            where not exists (
                select from {{ this }} as held
                where
                    {% for column in key_columns -%}
                    held.{{ column }} = delivered.{{ column }} and
                    {% endfor -%}
                    ({{ held_order }}) {{ '>=' if descending else '<=' }} ({{ delivered_order }})
            )
        )
        select {{ columns }} from new_deliveries
        union all
        select {{ columns }} from {{ this }}
        where ({{ key }}) in (select {{ key }} from new_deliveries)
    {%- else -%}
        select * from {{ cte }}
    {%- endif -%}
{%- endmacro %}

{#-
    Post-hook of the staging models: fresh statistics for the models that read the table next in the
    same build. A build without `start` rewrites much of it: always. An incremental run of a data
    interval changes too few rows to need them (autovacuum's analyze keeps up, and analyzing millions
    of rows costs seconds per table): only a table never analyzed (just created). A view (the reference
    models over schema reference) has no statistics of its own: nothing.
-#}
{% macro analyze_staged_table() -%}
    {%- set relation = this.schema ~ '.' ~ this.identifier -%}
    {%- if config.get('materialized') == 'view' -%}
    {%- elif interval_reprocess_from_date() is none -%}
        analyze {{ relation }}
    {%- else -%}
        do $$
        begin
            if (
                select coalesce(stats.last_analyze, stats.last_autoanalyze) is null
                from pg_stat_user_tables as stats where stats.relid = '{{ relation }}'::regclass
            ) then
                execute 'analyze {{ relation }}';
            end if;
        end
        $$
    {%- endif -%}
{%- endmacro %}
