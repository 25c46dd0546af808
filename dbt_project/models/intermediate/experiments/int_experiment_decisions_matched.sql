{#-
    Routing decisions that belong to an A/B experiment: their experiment_id and variant name a variant
    of reference.experiments and created_at lies in the experiment's window [starts_at, ends_at).
    Decisions stamped with an unknown experiment or variant, or outside the window, are not part of any
    comparison; the warn-level test experiment_decisions_unmatched counts them.
-#}
with

decisions as (
    select * from {{ ref('stg_router__decisions') }}
),

variants as (
    select * from {{ ref('stg_reference__experiments') }}
),

final as (
    select
        decisions.experiment_id,
        decisions.variant,
        decisions.decision_id,
        decisions.ticket_id,
        decisions.created_at,
        decisions.decision_date
    from decisions
    inner join variants
        on
            decisions.experiment_id = variants.experiment_id
            and decisions.variant = variants.variant
            and decisions.created_at >= variants.starts_at
            and decisions.created_at < variants.ends_at
)

select * from final
