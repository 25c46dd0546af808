-- depends_on: {{ ref('int_feedback_linked_to_decisions') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_date', 'channel_id', 'rule_version', 'expected_tier', 'predicted_tier'],
        on_schema_change='fail',
        pre_hook="{{ delete_relabelled('decision_date') }}",
        post_hook="{{ record_watermark() }}",
        indexes=[
            {
                'columns': ['decision_date', 'channel_id', 'rule_version', 'expected_tier', 'predicted_tier'],
                'unique': true,
            },
        ],
    )
}}

{#-
    Predicted vs expected tier per decision date, channel and rule version, over the decisions with an
    expected tier. An incremental run recomputes the decision dates of the relabelled decisions.
-#}

with

labelled as (
    select
        decision_date,
        channel_id,
        rule_version,
        expected_tier,
        predicted_tier
    from {{ ref('int_decisions_labelled_by_feedback') }}
    where
        expected_tier is not null
        and {{ in_relabelled_dates('decision_date') }}
),

final as (
    select
        decision_date,
        channel_id,
        rule_version,
        expected_tier,
        predicted_tier,
        count(*) as n,
        {{ tier_rank('predicted_tier') }} - {{ tier_rank('expected_tier') }} as tier_distance,
        predicted_tier = expected_tier as is_match
    from labelled
    group by decision_date, channel_id, rule_version, expected_tier, predicted_tier
)

select * from final
