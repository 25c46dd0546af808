-- depends_on: {{ ref('int_feedback_linked_to_decisions') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['decision_date', 'reason_tag', 'expected_tier', 'predicted_tier'],
        on_schema_change='fail',
        pre_hook="{{ delete_relabelled('decision_date') }}",
        post_hook="{{ record_watermark() }}",
        indexes=[
            {'columns': ['decision_date', 'reason_tag', 'expected_tier', 'predicted_tier'], 'unique': true},
        ],
    )
}}

{#-
    Decisions with an expected tier per decision date, reason tag, expected and predicted tier: the
    additive parts of marts.reason_tag_confusion. An incremental run recomputes the decision dates of
    the relabelled decisions.
-#}

with

labelled as (
    select
        decision_id,
        decision_date,
        expected_tier,
        predicted_tier,
        reason_tags
    from {{ ref('int_decisions_labelled_by_feedback') }}
    where
        expected_tier is not null
        and {{ in_relabelled_dates('decision_date') }}
),

-- A tag listed twice on one decision counts once.
decision_tags as (
    select distinct
        labelled.decision_id,
        labelled.decision_date,
        labelled.expected_tier,
        labelled.predicted_tier,
        tags.reason_tag
    from labelled
    cross join unnest(labelled.reason_tags) as tags (reason_tag)
),

final as (
    select
        decision_date,
        reason_tag,
        expected_tier,
        predicted_tier,
        count(*) as n
    from decision_tags
    group by decision_date, reason_tag, expected_tier, predicted_tier
)

select * from final
