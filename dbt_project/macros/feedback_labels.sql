{#-
    Helpers of the routing-quality models (int_feedback_linked_to_decisions, int_decisions_labelled_by_feedback
    and the marts built on them).

    An incremental run of int_feedback_linked_to_decisions re-links the feedback that changes can move
    and stamps them with linked_at. A re-linked feedback changes the labels of its
    decision and, when its link moved, of the decision it was linked to before
    (int_feedback_linked_to_decisions.superseded_decision_id). These macros name those decisions and
    their dates, so that the downstream models recompute exactly them.
-#}

{#- reprocess_from_date() as an instant (midnight UTC), so that indexes on timestamps can serve it. -#}
{% macro reprocess_from_timestamp() -%}
    ({{ reprocess_from_date() }})::timestamp at time zone 'UTC'
{%- endmacro %}

{#-
    `where`-clause fragment over int_feedback_linked_to_decisions (as `alias`): the feedback (re)linked
    since this model's last run (macros/watermarks.sql), whose links or labels may have changed.
-#}
{% macro relinked_in_run(alias) -%}
    {{ alias }}.linked_at > {{ last_run_watermark() }}
{%- endmacro %}

{#-
    Subquery: the decisions whose labels this run may have changed (column decision_id). Only called
    when reprocess_from_date() is not none.
-#}
{% macro relabelled_decision_ids() -%}
    select relinked.decision_id
    from {{ ref('int_feedback_linked_to_decisions') }} as relinked
    where {{ relinked_in_run('relinked') }} and relinked.decision_id is not null
    union
    select relinked.superseded_decision_id as decision_id
    from {{ ref('int_feedback_linked_to_decisions') }} as relinked
    where {{ relinked_in_run('relinked') }} and relinked.superseded_decision_id is not null
{%- endmacro %}

{#- Subquery: the UTC decision dates of relabelled_decision_ids() (column decision_date). -#}
{% macro relabelled_decision_dates() -%}
    select relinked.decision_date
    from {{ ref('int_feedback_linked_to_decisions') }} as relinked
    where {{ relinked_in_run('relinked') }} and relinked.decision_date is not null
    union
    select relinked.superseded_decision_date as decision_date
    from {{ ref('int_feedback_linked_to_decisions') }} as relinked
    where {{ relinked_in_run('relinked') }} and relinked.superseded_decision_date is not null
{%- endmacro %}

{#-
    Pre-hook of an incremental model keyed by `column` (decision_id or decision_date): empties the
    decisions / dates this run recomputes, so that one that lost all its rows loses them in the table
    too (delete+insert only replaces the keys the new rows carry).
-#}
{% macro delete_relabelled(column) -%}
    {%- if reprocess_from_date() is not none -%}
        delete from {{ this }} where {{ column }} in (
            {{ relabelled_decision_ids() if column == 'decision_id' else relabelled_decision_dates() }}
        )
    {%- endif -%}
{%- endmacro %}

{#-
    Confidence bin of a confidence in [0, 1]: 1 .. bins, bin b holding (b - 1) / bins <= confidence
    < b / bins, the last bin closed (it holds 1.0). Computed in numeric, so that a confidence exactly on
    an edge (0.3, 0.7) falls in the bin it starts whatever the bin count (in double precision 0.7 / 0.1
    is 6.999999999999999).
-#}
{% macro confidence_bin(confidence, bins) -%}
    least(floor({{ confidence }}::numeric * {{ bins }})::integer + 1, {{ bins }})
{%- endmacro %}

{#- Tier number (1 for T1, the most severe .. 4 for T4) of a tier `T<n>`. -#}
{% macro tier_rank(tier) -%}
    substr({{ tier }}, 2)::integer
{%- endmacro %}

{#-
    Pre-hook of training_samples: empties the decisions this run recomputes: those whose decision or
    outcome changed since its last run (int_decisions_joined_to_outcomes.joined_at), and the relabelled
    ones.
-#}
{% macro delete_training_samples_to_recompute() -%}
    {%- if reprocess_from_date() is not none -%}
        delete from {{ this }} where decision_id in (
            {{ training_sample_decision_ids() }}
        )
    {%- endif -%}
{%- endmacro %}

{#- Subquery: the decisions an incremental run of training_samples recomputes (column decision_id). -#}
{% macro training_sample_decision_ids() -%}
    select outcomes.decision_id
    from {{ ref('int_decisions_joined_to_outcomes') }} as outcomes
    where outcomes.joined_at > {{ last_run_watermark() }}
    union
    {{ relabelled_decision_ids() }}
{%- endmacro %}

{#-
    `where`-clause fragments: true when `column` (a decision_id / a decision date) must be recomputed in
    this run; always true when the whole history is built. Rendered on one line: they are inlined into
    other expressions.
-#}
{% macro in_relabelled_decisions(column) -%}
    {%- if reprocess_from_date() is none -%}
        true
    {%- else -%}
        {{ column }} in ({{ relabelled_decision_ids() | replace('\n', ' ') }})
    {%- endif -%}
{%- endmacro %}

{% macro in_relabelled_dates(column) -%}
    {%- if reprocess_from_date() is none -%}
        true
    {%- else -%}
        {{ column }} in ({{ relabelled_decision_dates() | replace('\n', ' ') }})
    {%- endif -%}
{%- endmacro %}

{% macro in_training_sample_decisions(column) -%}
    {%- if reprocess_from_date() is none -%}
        true
    {%- else -%}
        {{ column }} in ({{ training_sample_decision_ids() | replace('\n', ' ') }})
    {%- endif -%}
{%- endmacro %}
