{#-
    Every feedback with the decision it belongs to, by the first rule that applies: its decisionId if
    that decision exists; else its linkedDecisionId if that decision exists; else the nearest decision
    created at or before the feedback in the same channel, conversation and thread.
-#}
{%- set from_date = reprocess_from_date() %}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['feedback_id'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['feedback_id'], 'unique': true},
            {'columns': ['created_at']},
            {'columns': ['feedback_date']},
            {'columns': ['decision_created_at']},
        ],
    )
}}

with

-- An incremental run re-links the feedback of the window, and the feedback referencing a decision of
-- the window (a decision may arrive after feedback that names it).
feedback as materialized (
    select
        feedback_id,
        created_at,
        (created_at at time zone 'UTC')::date as feedback_date,
        channel_id,
        conversation_id,
        thread_id,
        source,
        needs_review,
        latency_from_decision_sec,
        expected_tier,
        expected_action,
        decision_id as referenced_decision_id,
        linked_decision_id as referenced_linked_decision_id
    from {{ ref('stg_router__feedback') }}
    {%- if from_date is not none %}
    where
        created_at >= {{ reprocess_from_timestamp() }}
        or decision_id in (
            select new_decisions.decision_id
            from {{ ref('stg_router__decisions') }} as new_decisions
            where new_decisions.created_at >= {{ reprocess_from_timestamp() }}
        )
        or linked_decision_id in (
            select new_decisions.decision_id
            from {{ ref('stg_router__decisions') }} as new_decisions
            where new_decisions.created_at >= {{ reprocess_from_timestamp() }}
        )
    {%- endif %}
),

-- Rule 3: the latest decision created at or before the feedback in its channel, conversation and thread
-- (all three equal and not null); a created_at tie goes to the greatest decision_id.
nearest_in_thread as (
    select distinct on (feedback.feedback_id)
        feedback.feedback_id,
        decisions.decision_id,
        decisions.created_at,
        decisions.decision_date
    from feedback
    inner join {{ ref('stg_router__decisions') }} as decisions
        on
            feedback.channel_id = decisions.channel_id
            and feedback.conversation_id = decisions.conversation_id
            and feedback.thread_id = decisions.thread_id
            and feedback.created_at >= decisions.created_at
    order by feedback.feedback_id asc, decisions.created_at desc, decisions.decision_id desc
),

linked as (
    select
        feedback.feedback_id,
        feedback.created_at,
        feedback.feedback_date,
        feedback.channel_id,
        feedback.conversation_id,
        feedback.thread_id,
        feedback.source,
        feedback.needs_review,
        feedback.latency_from_decision_sec,
        feedback.expected_tier,
        feedback.expected_action,
        feedback.referenced_decision_id,
        feedback.referenced_linked_decision_id,
        case
            when by_decision_id.decision_id is not null then 'decision_id'
            when by_linked_decision_id.decision_id is not null then 'linked_decision_id'
            when nearest_in_thread.decision_id is not null then 'nearest_in_thread'
        end as link_rule,
        coalesce(
            by_decision_id.decision_id, by_linked_decision_id.decision_id, nearest_in_thread.decision_id
        ) as decision_id,
        coalesce(
            by_decision_id.created_at, by_linked_decision_id.created_at, nearest_in_thread.created_at
        ) as decision_created_at,
        coalesce(
            by_decision_id.decision_date, by_linked_decision_id.decision_date, nearest_in_thread.decision_date
        ) as decision_date
    from feedback
    left join {{ ref('stg_router__decisions') }} as by_decision_id
        on feedback.referenced_decision_id = by_decision_id.decision_id
    left join {{ ref('stg_router__decisions') }} as by_linked_decision_id
        on feedback.referenced_linked_decision_id = by_linked_decision_id.decision_id
    left join nearest_in_thread
        on feedback.feedback_id = nearest_in_thread.feedback_id
),

-- The links stored before this run; in a full refresh there are none (the new links, filtered out).
previous_links as (
    select
        feedback_id,
        decision_id,
        decision_date
    from {{ this if from_date is not none else 'linked' }}
    where {{ 'true' if from_date is not none else 'false' }}
),

final as (
    select
        linked.feedback_id,
        linked.created_at,
        linked.feedback_date,
        linked.channel_id,
        linked.conversation_id,
        linked.thread_id,
        linked.source,
        linked.needs_review,
        linked.latency_from_decision_sec,
        linked.expected_tier,
        linked.expected_action,
        linked.referenced_decision_id,
        linked.referenced_linked_decision_id,
        linked.link_rule,
        linked.decision_id,
        linked.decision_created_at,
        linked.decision_date,
        -- The decision this feedback was linked to before this run, when the link moved.
        case
            when (previous_links.decision_id is distinct from linked.decision_id) then previous_links.decision_id
        end as superseded_decision_id,
        case
            when (previous_links.decision_id is distinct from linked.decision_id) then previous_links.decision_date
        end as superseded_decision_date
    from linked
    left join previous_links
        on linked.feedback_id = previous_links.feedback_id
)

select * from final
