{{ config(materialized='table') }}

{#-
    Per-class and summary classification metrics of the router's tiers and actions against the expected
    ones, over rolling windows of decision dates. Rebuilt from the daily confusion marts on every run
    (a few rows per day), so a full refresh equals any sequence of runs.
-#}

with

daily as (
    select
        'tier' as label_kind,
        decision_date,
        expected_tier as expected,
        predicted_tier as predicted,
        sum(n) as n
    from {{ ref('tier_confusion_daily') }}
    group by decision_date, expected_tier, predicted_tier
    union all
    select
        'action' as label_kind,
        decision_date,
        expected_action as expected,
        predicted_action as predicted,
        sum(n) as n
    from {{ ref('action_confusion_daily') }}
    group by decision_date, expected_action, predicted_action
),

spine as (
    {{ quality_window_spine() }}
),

-- The window's confusion matrix: decisions per expected x predicted label.
matrix as (
    select
        spine.as_of_date,
        spine.window_days,
        spine.window_start_date,
        daily.label_kind,
        daily.expected,
        daily.predicted,
        sum(daily.n)::bigint as n
    from spine
    inner join daily
        on daily.decision_date between spine.window_start_date and spine.as_of_date
    group by
        spine.as_of_date, spine.window_days, spine.window_start_date, daily.label_kind, daily.expected, daily.predicted
),

-- The classes of a window: the labels expected or predicted in it (expected_count is the support).
class_counts as (
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        class_label,
        sum(expected_count)::bigint as expected_count,
        sum(predicted_count)::bigint as predicted_count,
        sum(true_positives)::bigint as true_positives
    from (
        select
            as_of_date,
            window_days,
            window_start_date,
            label_kind,
            expected as class_label,
            n as expected_count,
            0 as predicted_count,
            case when expected = predicted then n else 0 end as true_positives
        from matrix
        union all
        select
            as_of_date,
            window_days,
            window_start_date,
            label_kind,
            predicted as class_label,
            0 as expected_count,
            n as predicted_count,
            0 as true_positives
        from matrix
    ) as margins
    group by as_of_date, window_days, window_start_date, label_kind, class_label
),

per_class as (
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        class_label,
        expected_count,
        predicted_count,
        true_positives,
        true_positives::double precision / nullif(predicted_count, 0) as precision_value,
        true_positives::double precision / nullif(expected_count, 0) as recall,
        2 * true_positives::double precision / nullif(expected_count + predicted_count, 0) as f1
    from class_counts
),

summaries as (
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        sum(expected_count)::bigint as decisions,
        sum(true_positives)::bigint as correct,
        -- Sum over classes of (expected count x predicted count): N^2 times the chance agreement.
        sum(expected_count::double precision * predicted_count) as chance_products,
        {{ exact_avg('precision_value') }} as macro_precision,
        {{ exact_avg('recall') }} as macro_recall,
        {{ exact_avg('f1') }} as macro_f1,
        {{ exact_sum('precision_value * expected_count') }}
        / nullif(sum(expected_count) filter (where precision_value is not null), 0) as weighted_precision,
        {{ exact_sum('recall * expected_count') }}
        / nullif(sum(expected_count) filter (where recall is not null), 0) as weighted_recall,
        {{ exact_sum('f1 * expected_count') }}
        / nullif(sum(expected_count) filter (where f1 is not null), 0) as weighted_f1
    from per_class
    group by as_of_date, window_days, window_start_date, label_kind
),

-- Tier only: disagreement weighted by the squared tier distance, observed and expected by chance
-- (sum over tier pairs of expected count x predicted count x distance^2, over N), and triage errors.
tier_observed as (
    select
        as_of_date,
        window_days,
        sum(n * ({{ tier_rank('predicted') }} - {{ tier_rank('expected') }}) ^ 2) as weighted_disagreement,
        sum(n) filter (where {{ tier_rank('predicted') }} > {{ tier_rank('expected') }}) as under_triaged,
        sum(n) filter (where {{ tier_rank('predicted') }} < {{ tier_rank('expected') }}) as over_triaged,
        sum(n * abs({{ tier_rank('predicted') }} - {{ tier_rank('expected') }})) as tier_distance_sum
    from matrix
    where label_kind = 'tier'
    group by as_of_date, window_days
),

tier_chance as (
    select
        expected_margin.as_of_date,
        expected_margin.window_days,
        sum(
            expected_margin.expected_count::double precision * predicted_margin.predicted_count
            * ({{ tier_rank('predicted_margin.class_label') }} - {{ tier_rank('expected_margin.class_label') }}) ^ 2
        ) as weighted_chance_products
    from class_counts as expected_margin
    inner join class_counts as predicted_margin
        on
            expected_margin.as_of_date = predicted_margin.as_of_date
            and expected_margin.window_days = predicted_margin.window_days
            and expected_margin.label_kind = predicted_margin.label_kind
    where expected_margin.label_kind = 'tier'
    group by expected_margin.as_of_date, expected_margin.window_days
),

class_rows as (
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        class_label,
        expected_count,
        predicted_count,
        true_positives,
        precision_value,
        recall,
        f1,
        null::double precision as accuracy,
        null::double precision as cohen_kappa,
        null::double precision as quadratic_weighted_kappa,
        null::double precision as under_triage_rate,
        null::double precision as over_triage_rate,
        null::double precision as mean_abs_tier_distance
    from per_class
),

average_rows as (
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        'macro' as class_label,
        decisions as expected_count,
        decisions as predicted_count,
        correct as true_positives,
        macro_precision as precision_value,
        macro_recall as recall,
        macro_f1 as f1,
        null::double precision as accuracy,
        null::double precision as cohen_kappa,
        null::double precision as quadratic_weighted_kappa,
        null::double precision as under_triage_rate,
        null::double precision as over_triage_rate,
        null::double precision as mean_abs_tier_distance
    from summaries
    union all
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        'weighted' as class_label,
        decisions as expected_count,
        decisions as predicted_count,
        correct as true_positives,
        weighted_precision as precision_value,
        weighted_recall as recall,
        weighted_f1 as f1,
        null::double precision as accuracy,
        null::double precision as cohen_kappa,
        null::double precision as quadratic_weighted_kappa,
        null::double precision as under_triage_rate,
        null::double precision as over_triage_rate,
        null::double precision as mean_abs_tier_distance
    from summaries
),

-- kappa = 1 - observed disagreement / disagreement expected by chance (sklearn's form), with
-- unit weights for cohen_kappa and squared tier distances for quadratic_weighted_kappa.
overall_rows as (
    select
        summaries.as_of_date,
        summaries.window_days,
        summaries.window_start_date,
        summaries.label_kind,
        'overall' as class_label,
        summaries.decisions as expected_count,
        summaries.decisions as predicted_count,
        summaries.correct as true_positives,
        null::double precision as precision_value,
        null::double precision as recall,
        null::double precision as f1,
        -- a window without labelled decisions: null figures, not a division by zero
        summaries.correct::double precision / nullif(summaries.decisions, 0) as accuracy,
        1 - (summaries.decisions - summaries.correct)
        / nullif(summaries.decisions - summaries.chance_products / nullif(summaries.decisions, 0), 0) as cohen_kappa,
        1 - tier_observed.weighted_disagreement
        / nullif(tier_chance.weighted_chance_products / nullif(summaries.decisions, 0), 0) as quadratic_weighted_kappa,
        case
            when summaries.label_kind = 'tier'
                then coalesce(tier_observed.under_triaged, 0)::double precision / nullif(summaries.decisions, 0)
        end as under_triage_rate,
        case
            when summaries.label_kind = 'tier'
                then coalesce(tier_observed.over_triaged, 0)::double precision / nullif(summaries.decisions, 0)
        end as over_triage_rate,
        tier_observed.tier_distance_sum::double precision / nullif(summaries.decisions, 0) as mean_abs_tier_distance
    from summaries
    left join tier_observed
        on
            summaries.as_of_date = tier_observed.as_of_date
            and summaries.window_days = tier_observed.window_days
            and summaries.label_kind = 'tier'
    left join tier_chance
        on
            summaries.as_of_date = tier_chance.as_of_date
            and summaries.window_days = tier_chance.window_days
            and summaries.label_kind = 'tier'
),

metric_rows as (
    select * from class_rows
    union all
    select * from average_rows
    union all
    select * from overall_rows
),

-- The analyst-facing names class, support and precision are SQL keywords (PostgreSQL accepts them).
final as (
    select
        as_of_date,
        window_days,
        window_start_date,
        label_kind,
        class_label as class, -- noqa: RF04
        expected_count as support, -- noqa: RF04
        predicted_count,
        true_positives,
        precision_value as precision, -- noqa: RF04
        recall,
        f1,
        accuracy,
        cohen_kappa,
        quadratic_weighted_kappa,
        under_triage_rate,
        over_triage_rate,
        mean_abs_tier_distance
    from metric_rows
)

select * from final
