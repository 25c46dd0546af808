{#-
    Ids that telemetry names and the roster does not know: one row per (kind, id). Such rows still land,
    stage and count (the team and agent marts carry them with in_roster = false); here is the list to
    fix the roster from. A variant counts only under an experiment the roster knows (the experiment
    itself is the gap otherwise). A table rebuilt on every run from int_reference_ids_observed (small:
    one row per id and stream).
-#}
with

observed as (
    select * from {{ ref('int_reference_ids_observed') }}
),

teams as (
    select * from {{ ref('stg_reference__teams') }}
),

agents as (
    select * from {{ ref('stg_reference__agents') }}
),

sla_policies as (
    select * from {{ ref('stg_reference__sla_policies') }}
),

experiments as (
    select * from {{ ref('stg_reference__experiments') }}
),

known as (
    select distinct
        'team' as kind,
        team_id as id
    from teams
    union all
    select distinct
        'agent' as kind,
        agent_id as id
    from agents
    union all
    select distinct
        'sla_policy' as kind,
        sla_policy as id
    from sla_policies
    union all
    select distinct
        'experiment' as kind,
        experiment_id as id
    from experiments
    union all
    select distinct
        'variant' as kind,
        experiment_id || '/' || variant as id
    from experiments
),

known_experiments as (
    select distinct experiment_id || '/' as id_prefix from experiments
),

unknown as (
    select observed.*
    from observed
    left join known
        on
            observed.kind = known.kind
            and observed.id = known.id
    where
        known.id is null
        and (
            observed.kind != 'variant'
            or exists (
                select from known_experiments
                where starts_with(observed.id, known_experiments.id_prefix)
            )
        )
),

final as (
    select
        kind,
        id,
        min(first_seen) as first_seen,
        max(last_seen) as last_seen,
        sum(seen_rows)::bigint as seen_rows,
        array_agg(stream_name order by stream_name) as seen_in_streams,
        jsonb_object_agg(stream_name, seen_rows) as rows_by_stream
    from unknown
    group by kind, id
)

select * from final
