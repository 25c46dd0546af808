{#- Rows of marts.ab_results that break an invariant of their definition. -#}
with

results as (
    select * from {{ ref('ab_results') }}
),

broken as (
    select experiment_id, as_of_date, metric, variant, 'control row with a comparison' as problem
    from results
    where
        is_control
        and coalesce(lift_abs, lift_rel, p_value, p_value_holm, p_value_seq, lift_abs_seq_ci_low, mde, test_statistic)
        is not null
    union all
    select experiment_id, as_of_date, metric, variant, 'probability outside [0, 1]'
    from results
    where
        not coalesce(p_value between 0 and 1, true)
        or not coalesce(p_value_holm between 0 and 1, true)
        or not coalesce(srm_p_value between 0 and 1, true)
    union all
    select experiment_id, as_of_date, metric, variant, 'Holm p-value below the raw p-value'
    from results
    where p_value_holm < p_value
    union all
    select experiment_id, as_of_date, metric, variant, 'point estimate outside its CI'
    from results
    where
        not coalesce(lift_abs between lift_abs_ci_low and lift_abs_ci_high, true)
        or not coalesce(lift_rel between lift_rel_ci_low and lift_rel_ci_high, true)
    union all
    select experiment_id, as_of_date, metric, variant, 'sequential probability outside [0, 1] or below the fixed one'
    from results
    where
        not coalesce(p_value_seq between 0 and 1, true)
        or not coalesce(p_value_seq_holm between 0 and 1, true)
        or p_value_seq_holm < p_value_seq
    union all
    select experiment_id, as_of_date, metric, variant, 'point estimate outside its confidence sequence'
    from results
    where
        not coalesce(lift_abs between lift_abs_seq_ci_low and lift_abs_seq_ci_high, true)
        or not coalesce(lift_rel between lift_rel_seq_ci_low and lift_rel_seq_ci_high, true)
    union all
    select experiment_id, as_of_date, metric, variant, 'primary row of a non-control variant without a verdict'
    from results
    where
        not is_control and metric_role = 'primary'
        and (verdict is null or decided_by is null or verdict_basis is null or verdict_reason is null)
    union all
    select experiment_id, as_of_date, metric, variant, 'verdict outside the verdict row'
    from results
    where (is_control or metric_role != 'primary') and coalesce(verdict, decided_by, verdict_reason) is not null
    union all
    select experiment_id, as_of_date, metric, variant, 'verdict basis other than the phase says'
    from results
    where verdict_basis != case when analysis_phase = 'running' then 'sequential' else 'fixed_horizon' end
    union all
    select experiment_id, as_of_date, metric, variant, 'non-inferiority status outside a guardrail row'
    from results
    where (noninferiority_status is not null) != (metric_role = 'guardrail' and not is_control)
)

select * from broken
