{#-
    A/B results: one row per (experiment_id, as_of_date, metric, variant), cumulative from the
    experiment's start; statistics from int_experiment_variants_compared. This model adds:
      p_value_holm  Holm's step-down adjustment over the family "primary and secondary metrics x
                    non-control variants with a p-value" of one experiment and date. Guardrails are
                    not in the family: a guardrail is a veto checked on its raw p_value (stricter for
                    the variant), so its p_value_holm is null, as is the control's.
      verdict       per (experiment, date, variant), the same on all its metric rows (see ab_results.yml).
-#}
with

compared as (
    select * from {{ ref('int_experiment_variants_compared') }}
),

holm_family as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        p_value,
        count(*) over (partition by experiment_id, as_of_date) as family_size,
        row_number() over (
            partition by experiment_id, as_of_date
            order by p_value, metric, variant
        ) as p_rank
    from compared
    where
        not is_control
        and metric_role in ('primary', 'secondary')
        and p_value is not null
),

holm_adjusted as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        least(
            1.0,
            max((family_size - p_rank + 1) * p_value) over (
                partition by experiment_id, as_of_date
                order by p_rank
                rows between unbounded preceding and current row
            )
        ) as p_value_holm
    from holm_family
),

adjusted as (
    select
        compared.*,
        holm_adjusted.p_value_holm,
        -- +1 when a higher value is better, -1 when lower is: improvement = sign * lift
        case when compared.metric_direction = 'higher' then 1 else -1 end as improvement_sign
    from compared
    left join holm_adjusted
        on
            compared.experiment_id = holm_adjusted.experiment_id
            and compared.as_of_date = holm_adjusted.as_of_date
            and compared.metric = holm_adjusted.metric
            and compared.variant = holm_adjusted.variant
),

primary_rows as (
    select * from adjusted
    where metric_role = 'primary'
),

variant_facts as (
    -- one row per non-control variant and date: what its verdict depends on
    select
        treatment.experiment_id,
        treatment.as_of_date,
        treatment.variant,
        coalesce(treatment.srm_p_value < {{ var('ab_srm_alpha') }}, false) as has_srm,
        treatment.n >= treatment.min_sample_per_variant
        and control.n >= control.min_sample_per_variant as has_min_sample,
        coalesce(
            treatment.p_value_holm < {{ var('ab_alpha') }} and treatment.improvement_sign * treatment.lift_abs > 0,
            false
        ) as primary_significantly_better,
        coalesce(
            treatment.p_value_holm < {{ var('ab_alpha') }} and treatment.improvement_sign * treatment.lift_abs < 0,
            false
        ) as primary_significantly_worse,
        coalesce(
            treatment.improvement_sign * treatment.lift_rel >= treatment.min_relative_lift, false
        ) as primary_reaches_min_lift,
        -- the best improvement the relative CI allows is below the required lift
        coalesce(
            greatest(
                treatment.improvement_sign * treatment.lift_rel_ci_low,
                treatment.improvement_sign * treatment.lift_rel_ci_high
            ) < treatment.min_relative_lift,
            false
        ) as primary_below_min_lift
    from primary_rows as treatment
    inner join primary_rows as control
        on
            treatment.experiment_id = control.experiment_id
            and treatment.as_of_date = control.as_of_date
            and control.is_control
    where not treatment.is_control
),

guardrail_facts as (
    select
        experiment_id,
        as_of_date,
        variant,
        string_agg(metric, ',' order by metric) as worse_guardrails
    from adjusted
    where
        metric_role = 'guardrail'
        and not is_control
        and p_value < {{ var('ab_alpha') }}
        and improvement_sign * lift_abs < 0
    group by experiment_id, as_of_date, variant
),

verdicts as (
    select
        variant_facts.experiment_id,
        variant_facts.as_of_date,
        variant_facts.variant,
        case
            when variant_facts.has_srm then 'invalid_srm'
            when not variant_facts.has_min_sample then 'inconclusive'
            when variant_facts.primary_significantly_worse or guardrail_facts.worse_guardrails is not null
                then 'keep_control'
            when variant_facts.primary_significantly_better and variant_facts.primary_reaches_min_lift
                then 'ship'
            when variant_facts.primary_below_min_lift then 'keep_control'
            else 'inconclusive'
        end as verdict,
        case
            when variant_facts.has_srm then 'sample ratio mismatch'
            when not variant_facts.has_min_sample then 'primary metric below min_sample_per_variant'
            when variant_facts.primary_significantly_worse then 'primary metric significantly worse'
            when guardrail_facts.worse_guardrails is not null
                then 'guardrail significantly worse: ' || guardrail_facts.worse_guardrails
            when variant_facts.primary_significantly_better and variant_facts.primary_reaches_min_lift
                then 'primary metric significantly better by at least min_relative_lift'
            when variant_facts.primary_below_min_lift then 'primary lift confidently below min_relative_lift'
            when variant_facts.primary_significantly_better then 'primary metric better but below min_relative_lift'
            else 'primary metric not significant'
        end as verdict_reason
    from variant_facts
    left join guardrail_facts
        on
            variant_facts.experiment_id = guardrail_facts.experiment_id
            and variant_facts.as_of_date = guardrail_facts.as_of_date
            and variant_facts.variant = guardrail_facts.variant
),

experiment_srm as (
    select distinct
        experiment_id,
        as_of_date
    from compared
    where srm_p_value < {{ var('ab_srm_alpha') }}
),

final as (
    select
        adjusted.experiment_id,
        adjusted.as_of_date,
        adjusted.metric,
        adjusted.variant,
        adjusted.variant_kind,
        adjusted.is_control,
        adjusted.metric_role,
        adjusted.metric_kind,
        adjusted.metric_direction,
        adjusted.n,
        adjusted.mean,
        adjusted.sd,
        adjusted.se,
        adjusted.lift_abs,
        adjusted.lift_abs_ci_low,
        adjusted.lift_abs_ci_high,
        adjusted.lift_rel,
        adjusted.lift_rel_ci_low,
        adjusted.lift_rel_ci_high,
        adjusted.test_statistic,
        adjusted.degrees_of_freedom,
        adjusted.p_value,
        adjusted.p_value_holm,
        adjusted.mde,
        adjusted.mde_rel,
        adjusted.traffic_share,
        adjusted.assigned_tickets,
        adjusted.srm_p_value,
        adjusted.min_sample_per_variant,
        adjusted.min_relative_lift,
        case
            when adjusted.n >= adjusted.min_sample_per_variant then 'sufficient' else 'insufficient'
        end as sample_status,
        case
            when experiment_srm.experiment_id is not null then 'invalid_srm'
            else verdicts.verdict
        end as verdict,
        case
            when experiment_srm.experiment_id is not null then 'sample ratio mismatch'
            else verdicts.verdict_reason
        end as verdict_reason
    from adjusted
    left join verdicts
        on
            adjusted.experiment_id = verdicts.experiment_id
            and adjusted.as_of_date = verdicts.as_of_date
            and adjusted.variant = verdicts.variant
    left join experiment_srm
        on
            adjusted.experiment_id = experiment_srm.experiment_id
            and adjusted.as_of_date = experiment_srm.as_of_date
)

select * from final
