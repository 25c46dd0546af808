-- depends_on: {{ ref('int_feedback_linked_to_decisions') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_date', 'channel_id', 'rule_version', 'expected_action', 'predicted_action'],
        on_schema_change='fail',
        pre_hook="{{ delete_relabelled('decision_date') }}",
        post_hook="{{ record_watermark() }}",
        indexes=[
            {
                'columns': ['decision_date', 'channel_id', 'rule_version', 'expected_action', 'predicted_action'],
                'unique': true,
            },
        ],
    )
}}

{#-
    Predicted vs expected action per decision date, channel and rule version, over the decisions with
    an expected action. An incremental run recomputes the decision dates of the relabelled decisions.
-#}

with

labelled as (
    select
        decision_date,
        channel_id,
        rule_version,
        expected_action,
        predicted_action
    from {{ ref('int_decisions_labelled_by_feedback') }}
    where
        expected_action is not null
        and {{ in_relabelled_dates('decision_date') }}
),

final as (
    select
        decision_date,
        channel_id,
        rule_version,
        expected_action,
        predicted_action,
        count(*) as n,
        predicted_action = expected_action as is_match
    from labelled
    group by decision_date, channel_id, rule_version, expected_action, predicted_action
)

select * from final
