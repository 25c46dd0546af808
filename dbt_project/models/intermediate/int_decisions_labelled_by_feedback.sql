{#-
    Every decision some feedback links to, with what the router predicted and what people expected:
    the expected tier (action) is that of the latest linked feedback carrying one (greatest created_at,
    ties broken by the greatest feedback_id).
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_id'],
        on_schema_change='fail',
        pre_hook="{{ delete_relabelled('decision_id') }}",
        post_hook="{{ record_watermark() }}",
        indexes=[
            {'columns': ['decision_id'], 'unique': true},
            {'columns': ['decision_date']},
        ],
    )
}}

with

links as materialized (
    select
        decision_id,
        feedback_id,
        created_at,
        expected_tier,
        expected_action
    from {{ ref('int_feedback_linked_to_decisions') }}
    where
        decision_id is not null
        and {{ in_relabelled_decisions('decision_id') }}
),

feedback_counts as (
    select
        decision_id,
        count(*) as linked_feedback,
        max(created_at) as last_feedback_at
    from links
    group by decision_id
),

expected_tiers as (
    select distinct on (decision_id)
        decision_id,
        feedback_id as expected_tier_feedback_id,
        expected_tier
    from links
    where expected_tier is not null
    order by decision_id asc, created_at desc, feedback_id desc
),

expected_actions as (
    select distinct on (decision_id)
        decision_id,
        feedback_id as expected_action_feedback_id,
        expected_action
    from links
    where expected_action is not null
    order by decision_id asc, created_at desc, feedback_id desc
),

decisions as (
    select
        decision_id,
        created_at,
        decision_date,
        channel_id,
        rule_version,
        predicted_tier,
        predicted_action,
        confidence,
        reason_tags
    from {{ ref('stg_router__decisions') }}
),

final as (
    select
        decisions.decision_id,
        decisions.created_at,
        decisions.decision_date,
        decisions.channel_id,
        decisions.rule_version,
        decisions.predicted_tier,
        decisions.predicted_action,
        decisions.confidence,
        decisions.reason_tags,
        feedback_counts.linked_feedback,
        feedback_counts.last_feedback_at,
        expected_tiers.expected_tier,
        expected_tiers.expected_tier_feedback_id,
        expected_actions.expected_action,
        expected_actions.expected_action_feedback_id
    from decisions
    inner join feedback_counts
        on decisions.decision_id = feedback_counts.decision_id
    left join expected_tiers
        on decisions.decision_id = expected_tiers.decision_id
    left join expected_actions
        on decisions.decision_id = expected_actions.decision_id
)

select * from final
