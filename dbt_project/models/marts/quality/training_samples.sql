-- depends_on: {{ ref('int_feedback_linked_to_decisions') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_id'],
        on_schema_change='fail',
        pre_hook="{{ delete_training_samples_to_recompute() }}",
        post_hook="{{ record_watermark() }}",
        indexes=[
            {'columns': ['decision_id'], 'unique': true},
            {'columns': ['decision_date']},
        ],
    )
}}

{#-
    Regression examples for the routing rubric: every decision whose latest outcome is negative, with
    what the router saw, what it predicted, what happened and, when feedback says so, what was expected.
    An incremental run recomputes the decisions dated in the window, those whose latest outcome was
    recorded in it and the relabelled ones (a decision whose outcome turned positive leaves the table).
-#}

with

negative_outcomes as (
    select
        decision_id,
        outcome_id,
        outcome_value,
        outcome_recorded_at
    from {{ ref('int_decisions_joined_to_outcomes') }}
    where
        outcome_positive = false
        and {{ in_training_sample_decisions('decision_id') }}
),

outcome_types as (
    select
        outcome_id,
        outcome_type
    from {{ ref('stg_router__decision_outcomes') }}
    where outcome_id in (select negative_outcomes.outcome_id from negative_outcomes)
),

decisions as (
    select
        decision_id,
        created_at,
        decision_date,
        channel_id,
        conversation_id,
        thread_id,
        input_message_id,
        ticket_id,
        team_id,
        agent_id,
        reason_tags,
        rule_version,
        weights_version,
        experiment_id,
        variant,
        predicted_tier,
        predicted_action,
        confidence
    from {{ ref('stg_router__decisions') }}
    where decision_id in (select negative_outcomes.decision_id from negative_outcomes)
),

labels as (
    select
        decision_id,
        linked_feedback,
        expected_tier,
        expected_tier_feedback_id,
        expected_action,
        expected_action_feedback_id
    from {{ ref('int_decisions_labelled_by_feedback') }}
),

final as (
    select
        decisions.decision_id,
        decisions.created_at,
        decisions.decision_date,
        decisions.channel_id,
        decisions.conversation_id,
        decisions.thread_id,
        decisions.input_message_id,
        decisions.ticket_id,
        decisions.team_id,
        decisions.agent_id,
        decisions.reason_tags,
        decisions.rule_version,
        decisions.weights_version,
        decisions.experiment_id,
        decisions.variant,
        decisions.predicted_tier,
        decisions.predicted_action,
        decisions.confidence,
        negative_outcomes.outcome_id,
        outcome_types.outcome_type,
        negative_outcomes.outcome_value,
        negative_outcomes.outcome_recorded_at,
        labels.expected_tier,
        labels.expected_tier_feedback_id,
        labels.expected_action,
        labels.expected_action_feedback_id,
        coalesce(labels.linked_feedback, 0) as linked_feedback
    from decisions
    inner join negative_outcomes
        on decisions.decision_id = negative_outcomes.decision_id
    left join outcome_types
        on negative_outcomes.outcome_id = outcome_types.outcome_id
    left join labels
        on decisions.decision_id = labels.decision_id
)

select * from final
