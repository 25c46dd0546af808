{#-
    One row per (experiment, ticket): the ticket belongs to the variant of its first decision in the
    experiment (earliest created_at, then smallest decision_id). The router assigns by a hash of the
    ticket id, so all decisions of a ticket normally agree; the first decision settles it if not.
-#}
with

matched_decisions as (
    select * from {{ ref('int_experiment_decisions_matched') }}
    where ticket_id is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by experiment_id, ticket_id
            order by created_at, decision_id
        ) as decision_rank
    from matched_decisions
),

final as (
    select
        experiment_id,
        ticket_id,
        variant,
        decision_id as first_decision_id,
        created_at as assigned_at,
        decision_date as assigned_date
    from ranked
    where decision_rank = 1
)

select * from final
