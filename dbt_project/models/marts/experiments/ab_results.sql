{#-
    A/B results: one row per (experiment_id, as_of_date, metric, variant), cumulative from the
    experiment's start; statistics from int_experiment_variants_compared. This model adds:
      p_value_holm, p_value_seq_holm
                    Holm's step-down adjustment of p_value (fixed horizon) and of p_value_seq
                    (always valid) over the family "primary and secondary metrics x non-control
                    variants with a p-value" of one experiment and date. Guardrails are not in the
                    family: they are tested for non-inferiority (noninferiority_status).
      analysis_phase
                    running up to the window's last day (the verdict uses the sequential figures,
                    valid however often one looks), final afterwards (the fixed-horizon figures: the
                    planned read-out).
      verdict, decided_by, verdict_basis, verdict_reason
                    per (experiment, date, non-control variant), on its primary metric's row only
                    (see ab_results.yml).
-#}
with

compared as (
    select * from {{ ref('int_experiment_variants_compared') }}
),

windows as (
    select * from {{ ref('int_experiment_windows_reported') }}
),

p_values as (
    -- long form: one row per p-value to adjust, kind fixed (p_value) or sequential (p_value_seq)
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        'fixed' as p_kind,
        p_value as p
    from compared
    where
        not is_control
        and metric_role in ('primary', 'secondary')
        and p_value is not null
    union all
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        'sequential' as p_kind,
        p_value_seq as p
    from compared
    where
        not is_control
        and metric_role in ('primary', 'secondary')
        and p_value_seq is not null
),

holm_family as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        p_kind,
        p,
        count(*) over (partition by experiment_id, as_of_date, p_kind) as family_size,
        row_number() over (
            partition by experiment_id, as_of_date, p_kind
            order by p, metric, variant
        ) as p_rank
    from p_values
),

holm_adjusted as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        p_kind,
        least(
            1.0,
            max((family_size - p_rank + 1) * p) over (
                partition by experiment_id, as_of_date, p_kind
                order by p_rank
                rows between unbounded preceding and current row
            )
        ) as p_holm
    from holm_family
),

holm_pivoted as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        max(case when p_kind = 'fixed' then p_holm end) as p_value_holm,
        max(case when p_kind = 'sequential' then p_holm end) as p_value_seq_holm
    from holm_adjusted
    group by experiment_id, as_of_date, metric, variant
),

adjusted as (
    select
        compared.*,
        holm_pivoted.p_value_holm,
        holm_pivoted.p_value_seq_holm,
        case
            when compared.as_of_date <= windows.window_last_date then 'running' else 'final'
        end as analysis_phase,
        -- +1 when a higher value is better, -1 when lower is: improvement = sign * lift
        case when compared.metric_direction = 'higher' then 1 else -1 end as improvement_sign
    from compared
    inner join windows on compared.experiment_id = windows.experiment_id
    left join holm_pivoted
        on
            compared.experiment_id = holm_pivoted.experiment_id
            and compared.as_of_date = holm_pivoted.as_of_date
            and compared.metric = holm_pivoted.metric
            and compared.variant = holm_pivoted.variant
),

decision_figures as (
    -- the figures the verdict reads: sequential while the experiment runs, fixed horizon afterwards
    select
        *,
        case when analysis_phase = 'running' then p_value_seq_holm else p_value_holm end as decision_p_holm,
        case
            when analysis_phase = 'running' then improvement_sign * lift_rel_seq_ci_low
            else improvement_sign * lift_rel_ci_low
        end as signed_ci_a,
        case
            when analysis_phase = 'running' then improvement_sign * lift_rel_seq_ci_high
            else improvement_sign * lift_rel_ci_high
        end as signed_ci_b
    from adjusted
),

assessed as (
    select
        *,
        -- guardrails: non-inferior when the worst improvement the relative CI allows is above -margin
        case
            when metric_role != 'guardrail' or is_control then null
            when signed_ci_a is null or signed_ci_b is null then 'not_computable'
            when least(signed_ci_a, signed_ci_b) > -noninferiority_margin then 'non_inferior'
            when greatest(signed_ci_a, signed_ci_b) < -noninferiority_margin then 'inferior'
            else 'undecided'
        end as noninferiority_status
    from decision_figures
),

primary_rows as (
    select * from assessed
    where metric_role = 'primary'
),

variant_facts as (
    -- one row per non-control variant and date: what its verdict depends on
    select
        treatment.experiment_id,
        treatment.as_of_date,
        treatment.variant,
        treatment.analysis_phase,
        coalesce(treatment.srm_p_value < {{ var('ab_srm_alpha') }}, false) as has_srm,
        treatment.n >= treatment.min_sample_per_variant
        and control.n >= control.min_sample_per_variant as has_min_sample,
        coalesce(
            treatment.decision_p_holm < {{ var('ab_alpha') }} and treatment.improvement_sign * treatment.lift_abs > 0,
            false
        ) as primary_significantly_better,
        coalesce(
            treatment.decision_p_holm < {{ var('ab_alpha') }} and treatment.improvement_sign * treatment.lift_abs < 0,
            false
        ) as primary_significantly_worse,
        coalesce(
            treatment.improvement_sign * treatment.lift_rel >= treatment.min_relative_lift, false
        ) as primary_reaches_min_lift,
        -- the best improvement the relative CI allows is below the required lift
        coalesce(
            greatest(treatment.signed_ci_a, treatment.signed_ci_b) < treatment.min_relative_lift, false
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
        string_agg(metric, ',' order by metric) filter (where noninferiority_status = 'inferior')
            as inferior_guardrails,
        string_agg(metric, ',' order by metric) filter (where noninferiority_status != 'non_inferior')
            as unproven_guardrails
    from assessed
    where noninferiority_status is not null
    group by experiment_id, as_of_date, variant
),

experiment_srm as (
    select distinct
        experiment_id,
        as_of_date
    from compared
    where srm_p_value < {{ var('ab_srm_alpha') }}
),

decided as (
    select
        variant_facts.experiment_id,
        variant_facts.as_of_date,
        variant_facts.variant,
        case when variant_facts.analysis_phase = 'running' then 'sequential' else 'fixed_horizon' end
            as verdict_basis,
        guardrail_facts.inferior_guardrails,
        guardrail_facts.unproven_guardrails,
        case
            when variant_facts.has_srm or experiment_srm.experiment_id is not null then 'sample_ratio_mismatch'
            when not variant_facts.has_min_sample then 'min_sample'
            when variant_facts.primary_significantly_worse then 'primary_worse'
            when guardrail_facts.inferior_guardrails is not null then 'guardrail_inferior'
            when variant_facts.primary_significantly_better and variant_facts.primary_reaches_min_lift
                and guardrail_facts.unproven_guardrails is not null
                then 'guardrail_unproven'
            when variant_facts.primary_significantly_better and variant_facts.primary_reaches_min_lift
                then 'primary_better'
            when variant_facts.primary_below_min_lift then 'primary_below_min_lift'
            when variant_facts.primary_significantly_better then 'primary_better_below_min_lift'
            else 'primary_not_significant'
        end as decided_by
    from variant_facts
    left join guardrail_facts
        on
            variant_facts.experiment_id = guardrail_facts.experiment_id
            and variant_facts.as_of_date = guardrail_facts.as_of_date
            and variant_facts.variant = guardrail_facts.variant
    left join experiment_srm
        on
            variant_facts.experiment_id = experiment_srm.experiment_id
            and variant_facts.as_of_date = experiment_srm.as_of_date
),

verdicts as (
    select
        experiment_id,
        as_of_date,
        variant,
        verdict_basis,
        decided_by,
        case decided_by
            when 'sample_ratio_mismatch' then 'invalid_srm'
            when 'primary_worse' then 'keep_control'
            when 'guardrail_inferior' then 'keep_control'
            when 'primary_better' then 'ship'
            when 'primary_below_min_lift' then 'keep_control'
            else 'inconclusive'
        end as verdict,
        case decided_by
            when 'sample_ratio_mismatch' then 'sample ratio mismatch'
            when 'min_sample' then 'primary metric below min_sample_per_variant'
            when 'primary_worse' then 'primary metric significantly worse'
            when 'guardrail_inferior'
                then 'guardrail worse than its non-inferiority margin: ' || inferior_guardrails
            when 'guardrail_unproven'
                then 'primary metric better, but guardrail not yet shown non-inferior: ' || unproven_guardrails
            when 'primary_better' then 'primary metric significantly better by at least min_relative_lift'
            when 'primary_below_min_lift' then 'primary lift confidently below min_relative_lift'
            when 'primary_better_below_min_lift' then 'primary metric better but below min_relative_lift'
            else 'primary metric not significant'
        end || ' (' || replace(verdict_basis, '_', '-') || ')' as verdict_reason
    from decided
),

final as (
    select
        assessed.experiment_id,
        assessed.as_of_date,
        assessed.metric,
        assessed.variant,
        assessed.variant_kind,
        assessed.is_control,
        assessed.metric_role,
        assessed.metric_kind,
        assessed.metric_direction,
        assessed.n,
        assessed.mean,
        assessed.sd,
        assessed.se,
        assessed.lift_abs,
        assessed.lift_abs_ci_low,
        assessed.lift_abs_ci_high,
        assessed.lift_rel,
        assessed.lift_rel_ci_low,
        assessed.lift_rel_ci_high,
        assessed.test_statistic,
        assessed.degrees_of_freedom,
        assessed.p_value,
        assessed.p_value_holm,
        assessed.p_value_seq,
        assessed.p_value_seq_holm,
        assessed.lift_abs_seq_ci_low,
        assessed.lift_abs_seq_ci_high,
        assessed.lift_rel_seq_ci_low,
        assessed.lift_rel_seq_ci_high,
        case when assessed.metric_role = 'guardrail' then assessed.noninferiority_margin end
            as noninferiority_margin,
        assessed.noninferiority_status,
        assessed.mde,
        assessed.mde_rel,
        assessed.traffic_share,
        assessed.assigned_tickets,
        assessed.srm_p_value,
        assessed.min_sample_per_variant,
        assessed.min_relative_lift,
        assessed.analysis_phase,
        case
            when assessed.n >= assessed.min_sample_per_variant then 'sufficient' else 'insufficient'
        end as sample_status,
        verdicts.verdict,
        verdicts.decided_by,
        verdicts.verdict_basis,
        verdicts.verdict_reason
    from assessed
    left join verdicts
        on
            assessed.experiment_id = verdicts.experiment_id
            and assessed.as_of_date = verdicts.as_of_date
            and assessed.variant = verdicts.variant
            and assessed.metric_role = 'primary'
)

select * from final
