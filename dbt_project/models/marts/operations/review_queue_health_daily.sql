-- depends_on: {{ ref('stg_router__review_items') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['report_date', 'severity'],
        on_schema_change='fail',
        indexes=[{'columns': ['report_date', 'severity'], 'unique': true}],
    )
}}

{#-
    Health of the review queue per UTC day and severity, from the append-only item states: the state
    of an item at the end of a day is its latest state updated before midnight UTC.
-#}
{%- set from_date = reprocess_from_date() %}

with

states as (
    select
        review_id,
        severity,
        status,
        created_at,
        updated_at,
        -- A resolved state without resolvedAt counts as resolved when it was written.
        case when status = 'resolved' then coalesce(resolved_at, updated_at) end as resolved_at,
        lead(updated_at) over (partition by review_id order by updated_at) as next_updated_at,
        row_number() over (partition by review_id order by updated_at) as state_number
    from {{ ref('stg_router__review_item_states') }}
    {%- if from_date is not none %}
    -- Only the items that can count on a recomputed date: those updated or resolved in the window, and
    -- those still open (stg_router__review_items holds each item's latest state).
    where review_id in (
        select current_items.review_id
        from {{ ref('stg_router__review_items') }} as current_items
        where
            current_items.updated_at >= ({{ from_date }})::timestamp at time zone 'UTC'
            or current_items.resolved_at >= ({{ from_date }})::timestamp at time zone 'UTC'
            or current_items.status = 'open'
    )
    {%- endif %}
),

bounds as (
    select
        min((created_at at time zone 'UTC')::date) as first_date,
        max((greatest(updated_at, resolved_at) at time zone 'UTC')::date) as last_date
    from states
),

report_dates as (
    {{ date_spine(
        'greatest((select bounds.first_date from bounds), ' ~ (from_date or 'null::date') ~ ')',
        '(select bounds.last_date from bounds)',
        'report_date'
    ) }}
),

-- The contract's severities (routerloop.contract.SEVERITIES): every one gets a row every day.
severities as (
    select contract_severities.severity
    from (values ('low'), ('medium'), ('high')) as contract_severities (severity)
),

-- An open state holds at the ends of the days from its own date to the day before the next state's
-- date (or to the last date): updated_at < the midnight after the day <= next state's updated_at.
open_at_end_of_day as (
    select
        states.severity,
        open_days.open_day::date as report_date,
        open_days.open_day + interval '1 day' - (states.created_at at time zone 'UTC') as age
    from states
    -- A function in FROM sees the rows before it (implicitly lateral).
    cross join
        generate_series(
            greatest((states.updated_at at time zone 'UTC')::date, {{ from_date or 'null::date' }})::timestamp,
            coalesce(
                (states.next_updated_at at time zone 'UTC')::date - 1,
                (select bounds.last_date from bounds)
            )::timestamp,
            interval '1 day'
        ) as open_days (open_day)
    where states.status = 'open'
),

open_counts as (
    select
        report_date,
        severity,
        count(*) as open_at_end_of_day,
        count(*) filter (where age < interval '1 hour') as open_under_1h,
        count(*) filter (where age >= interval '1 hour' and age <= interval '24 hours') as open_1h_to_24h,
        count(*) filter (where age > interval '24 hours') as open_over_24h
    from open_at_end_of_day
    group by report_date, severity
),

-- An item opens once: on the date of its first state's created_at, with that state's severity.
opened_counts as (
    select
        severity,
        (created_at at time zone 'UTC')::date as report_date,
        count(*) as opened
    from states
    where state_number = 1
    group by severity, (created_at at time zone 'UTC')::date
),

-- A resolution is a distinct (item, resolved_at); its severity is that of the first state carrying it.
resolutions as (
    select distinct on (review_id, resolved_at)
        review_id,
        severity,
        resolved_at,
        extract(epoch from resolved_at - created_at) / 3600.0 as hours_to_resolve
    from states
    where resolved_at is not null
    order by review_id asc, resolved_at asc, updated_at asc
),

resolved_counts as (
    select
        severity,
        (resolved_at at time zone 'UTC')::date as report_date,
        count(*) as resolved,
        percentile_cont(0.5) within group (order by hours_to_resolve) as median_hours_to_resolve
    from resolutions
    group by severity, (resolved_at at time zone 'UTC')::date
)

select
    report_dates.report_date,
    severities.severity,
    resolved_counts.median_hours_to_resolve,
    coalesce(open_counts.open_at_end_of_day, 0) as open_at_end_of_day,
    coalesce(open_counts.open_under_1h, 0) as open_under_1h,
    coalesce(open_counts.open_1h_to_24h, 0) as open_1h_to_24h,
    coalesce(open_counts.open_over_24h, 0) as open_over_24h,
    coalesce(opened_counts.opened, 0) as opened,
    coalesce(resolved_counts.resolved, 0) as resolved
from report_dates
cross join severities
left join open_counts
    on report_dates.report_date = open_counts.report_date and severities.severity = open_counts.severity
left join opened_counts
    on report_dates.report_date = opened_counts.report_date and severities.severity = opened_counts.severity
left join resolved_counts
    on report_dates.report_date = resolved_counts.report_date and severities.severity = resolved_counts.severity
