{#- Every experiment: traffic shares sum to 1, exactly one control, one kind, starts_at < ends_at (the
    seed-side check of what routerloop.experiments validates before a change is merged). -#}
select
    experiment_id,
    sum(traffic_share) as total_share,
    count(*) filter (where is_control) as controls,
    count(distinct variant_kind) as kinds,
    min(starts_at) as starts_at,
    max(ends_at) as ends_at
from {{ ref('stg_reference__experiments') }}
group by experiment_id
having
    abs(sum(traffic_share) - 1.0) > {{ var('float_tolerance') | float }}
    or count(*) filter (where is_control) != 1
    or count(distinct variant_kind) != 1
    or count(distinct starts_at) != 1
    or count(distinct ends_at) != 1
    or min(starts_at) >= min(ends_at)
