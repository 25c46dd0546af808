{#- Rows of marts.ab_results that break an invariant of their definition. -#}
with

results as (
    select * from {{ ref('ab_results') }}
),

broken as (
    select experiment_id, as_of_date, metric, variant, 'control row with a comparison' as problem
    from results
    where is_control and coalesce(lift_abs, lift_rel, p_value, p_value_holm, mde, test_statistic) is not null
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
    select experiment_id, as_of_date, metric, variant, 'non-control row without a verdict'
    from results
    where not is_control and verdict is null
    union all
    select experiment_id, as_of_date, metric, variant, 'control verdict other than invalid_srm'
    from results
    where is_control and verdict != 'invalid_srm'
    union all
    select experiment_id, as_of_date, null, variant, 'verdict differs between metrics of a variant'
    from results
    group by experiment_id, as_of_date, variant
    having count(distinct coalesce(verdict, '-')) > 1
)

select * from broken
