{#-
    One row per A/B metric observation: (experiment, variant, metric, unit) with its value and the date
    on which it became known (observed_date, never before the unit's assignment date).
      sla_breach       per ticket with an SLA evaluation: 1 when its latest evaluation (by evaluated_at,
                       over its SLA policies) has outcome 'breach', else 0; known on that evaluation's date.
      mttr_minutes     per ticket whose latest evaluation is resolved: resolve_minutes; same date.
      csat_rating      per rating of an assigned ticket: the rating (1..5); known on its submission date.
      csat_satisfied   per rating: 1 when rating >= var csat_satisfied_min_rating, else 0.
      outcome_success  per matched decision with a known outcome: 1 when its latest outcome with
                       outcome_positive not null (by recorded_at, then outcome_id) is positive, else 0;
                       known on that outcome's recorded date. Pending outcomes (null) are not observations.
    Tickets inherit the variant of their first decision in the experiment (int_experiment_tickets_assigned).
-#}
with

tickets as (
    select * from {{ ref('int_experiment_tickets_assigned') }}
),

matched_decisions as (
    select * from {{ ref('int_experiment_decisions_matched') }}
),

sla_evaluations as (
    select * from {{ ref('stg_support__sla_outcomes') }}
),

ratings as (
    select * from {{ ref('stg_support__csat_ratings') }}
),

outcomes as (
    select * from {{ ref('stg_router__decision_outcomes') }}
    where outcome_positive is not null
),

latest_sla_evaluation as (
    select
        ticket_id,
        outcome,
        resolve_minutes,
        evaluated_date,
        row_number() over (
            partition by ticket_id
            order by evaluated_at desc, sla_policy asc
        ) as evaluation_rank
    from sla_evaluations
),

ticket_sla as (
    select
        tickets.experiment_id,
        tickets.variant,
        tickets.ticket_id,
        latest_sla_evaluation.outcome,
        latest_sla_evaluation.resolve_minutes,
        greatest(tickets.assigned_date, latest_sla_evaluation.evaluated_date) as observed_date
    from tickets
    inner join latest_sla_evaluation
        on
            tickets.ticket_id = latest_sla_evaluation.ticket_id
            and latest_sla_evaluation.evaluation_rank = 1
),

ticket_ratings as (
    select
        tickets.experiment_id,
        tickets.variant,
        ratings.rating_id,
        ratings.rating,
        greatest(tickets.assigned_date, ratings.submitted_date) as observed_date
    from tickets
    inner join ratings on tickets.ticket_id = ratings.ticket_id
),

latest_outcome as (
    select
        decision_id,
        outcome_positive,
        (recorded_at at time zone 'UTC')::date as recorded_date,
        row_number() over (
            partition by decision_id
            order by recorded_at desc, outcome_id desc
        ) as outcome_rank
    from outcomes
),

sla_breach as (
    select
        experiment_id,
        variant,
        'sla_breach' as metric,
        ticket_id as unit_id,
        observed_date,
        case when outcome = 'breach' then 1.0 else 0.0 end::double precision as metric_value
    from ticket_sla
),

mttr_minutes as (
    select
        experiment_id,
        variant,
        'mttr_minutes' as metric,
        ticket_id as unit_id,
        observed_date,
        resolve_minutes::double precision as metric_value
    from ticket_sla
    where resolve_minutes is not null
),

csat_rating as (
    select
        experiment_id,
        variant,
        'csat_rating' as metric,
        rating_id as unit_id,
        observed_date,
        rating::double precision as metric_value
    from ticket_ratings
),

csat_satisfied as (
    select
        experiment_id,
        variant,
        'csat_satisfied' as metric,
        rating_id as unit_id,
        observed_date,
        case
            when rating >= {{ var('csat_satisfied_min_rating') }} then 1.0 else 0.0
        end::double precision as metric_value
    from ticket_ratings
),

outcome_success as (
    select
        matched_decisions.experiment_id,
        matched_decisions.variant,
        'outcome_success' as metric,
        matched_decisions.decision_id as unit_id,
        greatest(matched_decisions.decision_date, latest_outcome.recorded_date) as observed_date,
        case when latest_outcome.outcome_positive then 1.0 else 0.0 end::double precision as metric_value
    from matched_decisions
    inner join latest_outcome
        on
            matched_decisions.decision_id = latest_outcome.decision_id
            and latest_outcome.outcome_rank = 1
),

final as (
    select * from sla_breach
    union all
    select * from mttr_minutes
    union all
    select * from csat_rating
    union all
    select * from csat_satisfied
    union all
    select * from outcome_success
)

select * from final
