{#- The A/B experiments, one row per variant (reference.experiments, loaded by `routerloop reference load`). -#}
{{ config(materialized='view') }}

with

source as (
    select * from {{ source('reference', 'experiments') }}
),

final as (
    select
        experiment_id,
        variant,
        variant_kind,
        traffic_share,
        is_control,
        starts_at,
        ends_at,
        primary_metric,
        secondary_metrics,
        guardrail_metrics,
        min_sample_per_variant,
        min_relative_lift,
        enabled
    from source
)

select * from final
