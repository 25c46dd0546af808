{#-
    The reporting window of every reported experiment: A/B results run from the experiment's start date
    to the last data date (the newest decision or observation date), at most var ab_settle_days after the
    window's last day, so outcomes of units assigned near the end still count. An experiment is reported
    when it is enabled or has assigned units. int_experiment_metrics_accumulated dates its rows by it,
    and the A/B gate (routerloop.gates.ab_batches) expects results of exactly these experiments.
-#}
with

experiments as (
    select * from {{ ref('stg_reference__experiments') }}
),

decisions as (
    select * from {{ ref('stg_router__decisions') }}
),

tickets as (
    select * from {{ ref('int_experiment_tickets_assigned') }}
),

observations as (
    select * from {{ ref('int_experiment_observations_unioned') }}
),

data_clock as (
    select
        greatest(
            (select max(decisions.decision_date) as newest_date from decisions),
            (select max(observations.observed_date) as newest_date from observations)
        ) as last_data_date
),

experiment_windows as (
    -- window and switch are equal on every variant row of an experiment (routerloop.experiments validates)
    select
        experiment_id,
        min(starts_at) as starts_at,
        min(ends_at) as ends_at,
        bool_or(enabled) as enabled
    from experiments
    group by experiment_id
),

experiments_with_units as (
    select experiment_id from tickets
    union
    select experiment_id from observations
)

select
    experiment_windows.experiment_id,
    (experiment_windows.starts_at at time zone 'UTC')::date as first_date,
    ((experiment_windows.ends_at - interval '1 microsecond') at time zone 'UTC')::date as window_last_date,
    least(
        ((experiment_windows.ends_at - interval '1 microsecond') at time zone 'UTC')::date
        + {{ var('ab_settle_days') | int }},
        data_clock.last_data_date
    ) as last_date
from experiment_windows
cross join data_clock
where
    experiment_windows.enabled
    or experiment_windows.experiment_id in (select experiments_with_units.experiment_id from experiments_with_units)
