{{ config(severity='warn') }}
{#- Decisions stamped with an experiment that take part in no comparison: unknown experiment or variant,
    or created outside the experiment's window. Reported, never silently dropped. -#}
select
    decisions.experiment_id,
    decisions.variant,
    count(*) as decisions
from {{ ref('stg_router__decisions') }} as decisions
left join {{ ref('int_experiment_decisions_matched') }} as matched
    on decisions.decision_id = matched.decision_id
where decisions.experiment_id is not null and matched.decision_id is null
group by decisions.experiment_id, decisions.variant
