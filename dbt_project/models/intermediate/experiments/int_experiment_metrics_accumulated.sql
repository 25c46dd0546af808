{#-
    Cumulative figures per (experiment, as_of_date, metric, variant): every observation of the variant's
    units known from the experiment's start to as_of_date (observed_date <= as_of_date), and every
    ticket assigned by then, on every date of the experiment's reporting window
    (int_experiment_windows_reported). Sums are numeric (exact), so mean and variance carry no
    accumulated rounding error.
-#}
with

experiments as (
    select * from {{ ref('stg_reference__experiments') }}
),

tickets as (
    select * from {{ ref('int_experiment_tickets_assigned') }}
),

observations as (
    select * from {{ ref('int_experiment_observations_unioned') }}
),

reported_experiments as (
    select * from {{ ref('int_experiment_windows_reported') }}
),

metric_catalog as (
    select * from ({{ ab_metric_catalog() }}) as metric_values (
        metric, metric_kind, metric_direction, noninferiority_margin
    )
),

spine as (
    select
        reported_experiments.experiment_id,
        dates.as_of_date
    from reported_experiments
    cross join lateral (
        {{ date_spine('reported_experiments.first_date', 'reported_experiments.last_date', 'as_of_date') }}
    ) as dates
),

listed_metrics as (
    select distinct
        experiments.experiment_id,
        experiments.primary_metric as metric,
        'primary' as metric_role
    from experiments
    union all
    select distinct
        experiments.experiment_id,
        trim(listed.metric) as metric,
        'secondary' as metric_role
    from experiments
    cross join lateral unnest(string_to_array(experiments.secondary_metrics, ';')) as listed (metric)
    where trim(listed.metric) != ''
    union all
    select distinct
        experiments.experiment_id,
        trim(listed.metric) as metric,
        'guardrail' as metric_role
    from experiments
    cross join lateral unnest(string_to_array(experiments.guardrail_metrics, ';')) as listed (metric)
    where trim(listed.metric) != ''
),

variant_settings as (
    select
        experiment_id,
        variant,
        variant_kind,
        traffic_share::double precision as traffic_share,
        is_control,
        coalesce(min_sample_per_variant, {{ var('ab_default_min_sample_per_variant') }}) as min_sample_per_variant,
        coalesce(min_relative_lift, {{ var('ab_default_min_relative_lift') }})::double precision as min_relative_lift
    from experiments
),

daily_observations as (
    select
        experiment_id,
        variant,
        metric,
        observed_date,
        count(*) as units,
        sum(metric_value::numeric) as value_sum,
        sum(metric_value::numeric * metric_value::numeric) as value_square_sum
    from observations
    group by experiment_id, variant, metric, observed_date
),

daily_assignments as (
    select
        experiment_id,
        variant,
        assigned_date,
        count(*) as assigned_tickets
    from tickets
    group by experiment_id, variant, assigned_date
),

grid as (
    select
        spine.experiment_id,
        spine.as_of_date,
        listed_metrics.metric,
        variant_settings.variant,
        variant_settings.variant_kind,
        variant_settings.is_control,
        variant_settings.traffic_share,
        listed_metrics.metric_role,
        metric_catalog.metric_kind,
        metric_catalog.metric_direction,
        metric_catalog.noninferiority_margin,
        variant_settings.min_sample_per_variant,
        variant_settings.min_relative_lift
    from spine
    inner join listed_metrics on spine.experiment_id = listed_metrics.experiment_id
    inner join variant_settings on spine.experiment_id = variant_settings.experiment_id
    inner join metric_catalog on listed_metrics.metric = metric_catalog.metric
),

accumulated as (
    select
        grid.*,
        sum(coalesce(daily_observations.units, 0)) over cumulative as n,
        sum(coalesce(daily_observations.value_sum, 0)) over cumulative as value_sum,
        sum(coalesce(daily_observations.value_square_sum, 0)) over cumulative as value_square_sum,
        sum(coalesce(daily_assignments.assigned_tickets, 0)) over cumulative as assigned_tickets
    from grid
    left join daily_observations
        on
            grid.experiment_id = daily_observations.experiment_id
            and grid.variant = daily_observations.variant
            and grid.metric = daily_observations.metric
            and grid.as_of_date = daily_observations.observed_date
    left join daily_assignments
        on
            grid.experiment_id = daily_assignments.experiment_id
            and grid.variant = daily_assignments.variant
            and grid.as_of_date = daily_assignments.assigned_date
    window cumulative as (
        partition by grid.experiment_id, grid.metric, grid.variant
        order by grid.as_of_date
        rows between unbounded preceding and current row
    )
),

moments as (
    select
        *,
        case when n > 0 then value_sum / n end as mean_exact,
        case
            -- binary: the Bernoulli variance p (1 - p)
            when metric_kind = 'binary' and n > 0 then value_sum * (n - value_sum) / (n * n)
            -- continuous: the sample variance (n - 1 in the denominator)
            when metric_kind = 'continuous' and n > 1
                then (n * value_square_sum - value_sum * value_sum) / (n * (n - 1))
        end as variance_exact
    from accumulated
),

final as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        variant_kind,
        is_control,
        traffic_share,
        metric_role,
        metric_kind,
        metric_direction,
        noninferiority_margin,
        min_sample_per_variant,
        min_relative_lift,
        n::bigint as n,
        value_sum::double precision as value_sum,
        mean_exact::double precision as mean,
        variance_exact::double precision as variance,
        sqrt(variance_exact::double precision) as sd,
        sqrt(variance_exact::double precision / n) as se,
        assigned_tickets::bigint as assigned_tickets
    from moments
)

select * from final
