{#-
    Ids that telemetry names and the roster does not know: one row per (kind, id). Such rows still land,
    stage and count (the team and agent marts carry them with in_roster = false); here is the list to
    fix the roster from. A variant counts only under an experiment the roster knows (the experiment
    itself is the gap otherwise). A table rebuilt on every run from the staged telemetry.
-#}
with

decisions as (
    select * from {{ ref('stg_router__decisions') }}
),

sla_outcomes as (
    select * from {{ ref('stg_support__sla_outcomes') }}
),

csat_ratings as (
    select * from {{ ref('stg_support__csat_ratings') }}
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

-- Every id each stream names, with when it was seen (the record's own time) and how often.
decision_ids as (
    select
        ids.kind,
        ids.id,
        min(decisions.created_at) as first_seen,
        max(decisions.created_at) as last_seen,
        count(*) as seen_rows
    from decisions
    cross join
        lateral (
            values
            ('team', decisions.team_id),
            ('agent', decisions.agent_id),
            ('experiment', decisions.experiment_id),
            ('variant', decisions.experiment_id || '/' || decisions.variant)
        ) as ids (kind, id)
    where ids.id is not null
    group by ids.kind, ids.id
),

sla_ids as (
    select
        ids.kind,
        ids.id,
        min(sla_outcomes.evaluated_at) as first_seen,
        max(sla_outcomes.evaluated_at) as last_seen,
        count(*) as seen_rows
    from sla_outcomes
    cross join
        lateral (
            values
            ('team', sla_outcomes.team_id),
            ('agent', sla_outcomes.agent_id),
            ('sla_policy', sla_outcomes.sla_policy)
        ) as ids (kind, id)
    where ids.id is not null
    group by ids.kind, ids.id
),

csat_ids as (
    select
        ids.kind,
        ids.id,
        min(csat_ratings.submitted_at) as first_seen,
        max(csat_ratings.submitted_at) as last_seen,
        count(*) as seen_rows
    from csat_ratings
    cross join
        lateral (
            values
            ('team', csat_ratings.team_id),
            ('agent', csat_ratings.agent_id)
        ) as ids (kind, id)
    where ids.id is not null
    group by ids.kind, ids.id
),

observed as (
    select
        'router_decisions' as stream_name,
        decision_ids.*
    from decision_ids
    union all
    select
        'sla_outcomes' as stream_name,
        sla_ids.*
    from sla_ids
    union all
    select
        'csat_ratings' as stream_name,
        csat_ids.*
    from csat_ids
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
