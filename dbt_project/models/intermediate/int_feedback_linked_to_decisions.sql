{#-
    Every feedback with the decision it belongs to, by the first rule that applies: its decisionId if
    that decision exists; else its linkedDecisionId if that decision exists; else the nearest decision
    created at or before the feedback in the same channel, conversation and thread.
    An incremental run of a data interval re-links only what changes can move (macros/watermarks.sql):
    the feedback staged since this model's last run, the feedback naming a decision staged since then
    (a decision may arrive after feedback that names it), and the feedback of a thread created at or
    after a decision staged since then (rule 3). Rewritten rows carry linked_at, from which the models
    downstream recompute what this run changed.
-#}
{%- set changes_only = reads_changes_only() %}
{%- set previous_id = 'previous_links.decision_id' if changes_only else 'null::text' %}
{%- set previous_date = 'previous_links.decision_date' if changes_only else 'null::date' %}

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
            {'columns': ['linked_at']},
        ],
        post_hook="{{ record_watermark() }}",
    )
}}

with

{%- if changes_only %}

changed_decisions as materialized (
    select
        decision_id,
        channel_id,
        conversation_id,
        thread_id,
        created_at
    from {{ ref('stg_router__decisions') }}
    where staged_at > {{ last_run_watermark() }}
),
{%- endif %}

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
    {%- if changes_only %}
    where staged_at > {{ last_run_watermark() }}
    -- Unions, not `or`s: each side uses its own index.
    union
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
    where decision_id = any(array(select changed_decisions.decision_id from changed_decisions))
    union
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
    where linked_decision_id = any(array(select changed_decisions.decision_id from changed_decisions))
    union
    select
        feedback.feedback_id,
        feedback.created_at,
        (feedback.created_at at time zone 'UTC')::date as feedback_date,
        feedback.channel_id,
        feedback.conversation_id,
        feedback.thread_id,
        feedback.source,
        feedback.needs_review,
        feedback.latency_from_decision_sec,
        feedback.expected_tier,
        feedback.expected_action,
        feedback.decision_id as referenced_decision_id,
        feedback.linked_decision_id as referenced_linked_decision_id
    from changed_decisions
    inner join {{ ref('stg_router__feedback') }} as feedback
        on
            changed_decisions.channel_id = feedback.channel_id
            and changed_decisions.conversation_id = feedback.conversation_id
            and changed_decisions.thread_id = feedback.thread_id
            and changed_decisions.created_at <= feedback.created_at
    {%- endif %}
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
    -- Look-ups per feedback (lateral, limit 1) through the decisions' indexes: the feedback of a run are
    -- few next to the decisions, and a hash join would read every decision.
    left join lateral (
        select
            decisions.decision_id,
            decisions.created_at,
            decisions.decision_date
        from {{ ref('stg_router__decisions') }} as decisions
        where decisions.decision_id = feedback.referenced_decision_id
        order by decisions.decision_id
        limit 1
    ) as by_decision_id on true
    left join lateral (
        select
            decisions.decision_id,
            decisions.created_at,
            decisions.decision_date
        from {{ ref('stg_router__decisions') }} as decisions
        where decisions.decision_id = feedback.referenced_linked_decision_id
        order by decisions.decision_id
        limit 1
    ) as by_linked_decision_id on true
    -- Rule 3: the latest decision created at or before the feedback in its channel, conversation and
    -- thread (all three equal and not null); a created_at tie goes to the greatest decision_id.
    left join lateral (
        select
            decisions.decision_id,
            decisions.created_at,
            decisions.decision_date
        from {{ ref('stg_router__decisions') }} as decisions
        where
            decisions.channel_id = feedback.channel_id
            and decisions.conversation_id = feedback.conversation_id
            and decisions.thread_id = feedback.thread_id
            and decisions.created_at <= feedback.created_at
        order by decisions.created_at desc, decisions.decision_id desc
        limit 1
    ) as nearest_in_thread on true
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
        -- The decision this feedback was linked to before this run, when the link moved (none in a
        -- full refresh).
        case
            when ({{ previous_id }} is distinct from linked.decision_id) then {{ previous_id }}
        end as superseded_decision_id,
        case
            when ({{ previous_id }} is distinct from linked.decision_id) then {{ previous_date }}
        end as superseded_decision_date,
        now() as linked_at
    from linked
    {%- if changes_only %}
    -- The link stored before this run, looked up through the unique index.
    left join lateral (
        select
            stored.decision_id,
            stored.decision_date
        from {{ this }} as stored
        where stored.feedback_id = linked.feedback_id
        order by stored.feedback_id
        limit 1
    ) as previous_links on true
    {%- endif %}
)

select * from final
