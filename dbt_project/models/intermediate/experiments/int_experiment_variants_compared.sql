{#-
    Each variant against its experiment's control, per (experiment, as_of_date, metric), plus the sample
    ratio mismatch test per (experiment, as_of_date). Control rows keep their own figures and null
    comparisons. alpha = var ab_alpha; critical value q:
      binary      two-proportion z-test: p-value from the pooled SE (as statsmodels proportions_ztest);
                  CI from the unpooled SE (Wald, as confint_proportions_2indep method='wald'); q = z(1 - alpha/2).
      continuous  Welch's t-test: t = diff / sqrt(s1^2/n1 + s0^2/n0), df by Welch-Satterthwaite
                  (as scipy ttest_ind equal_var=False); q = t(1 - alpha/2, df).
      relative    lift_rel = diff / control mean; its CI by the delta method for the ratio of two
                  independent means: se_rel^2 = se1^2 / m0^2 + m1^2 se0^2 / m0^4, lift_rel +- q se_rel.
      mde         closed-form normal: (z(1 - alpha/2) + z(var ab_power)) * control sd * sqrt(1/n0 + 1/n1),
                  the smallest true difference detected with that power at the observed sample sizes.
      srm         chi-square goodness of fit of assigned tickets per variant against the traffic shares
                  (df = variants - 1), as scipy.stats.chisquare.
      sequential  always-valid p-value and confidence sequences (asymptotic, Waudby-Smith et al. 2023, eq. 9
                  and 155, rho from eq. 161), exactly as gbstats' SequentialTwoSidedTTest computes them:
                  N = n + n0, v = variance of the estimate (absolute: se^2 + se0^2; relative: the delta
                  method above), rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / N* (N* = var
                  ab_sequential_tuning_parameter);
                  half-width = sqrt(v N) sqrt(2 (N rho^2 + 1) ln(sqrt(N rho^2 + 1) / alpha) / (N rho)^2);
                  p = min(1, sqrt(N rho^2 + 1) exp(-rho^2 (d^2 N / v) / (2 (N rho^2 + 1)))), d = lift_abs.
                  Null when v is null or 0 (gbstats returns no result there either).
-#}
with

accumulated as (
    select * from {{ ref('int_experiment_metrics_accumulated') }}
),

critical_values as materialized (
    select
        udf.norm_ppf(1.0 - {{ var('ab_alpha') }} / 2.0) as z_alpha,
        udf.norm_ppf({{ var('ab_power') }}) as z_power,
        -- rho^2 of the confidence sequences (gbstats SequentialTwoSidedTTest.rho, squared)
        (-2.0 * ln({{ var('ab_alpha') }}) + ln(-2.0 * ln({{ var('ab_alpha') }}) + 1.0))
        / {{ var('ab_sequential_tuning_parameter') }}::double precision as rho_squared
),

controls as (
    select * from accumulated
    where is_control
),

sample_ratio as (
    -- one row per (experiment, as_of_date, variant): the metric rows repeat each variant's ticket count
    select
        experiment_id,
        as_of_date,
        variant,
        traffic_share,
        max(assigned_tickets) as assigned_tickets
    from accumulated
    group by experiment_id, as_of_date, variant, traffic_share
),

sample_ratio_chi_square as (
    select
        experiment_id,
        as_of_date,
        sum(assigned_tickets) as total_tickets,
        count(*) - 1 as degrees_of_freedom,
        -- null on a date without assigned tickets (nothing expected): no test, srm_p_value null
        sum(
            (assigned_tickets - expected_tickets) * (assigned_tickets - expected_tickets)
            / nullif(expected_tickets, 0)
        ) as chi_square
    from (
        select
            sample_ratio.*,
            sum(sample_ratio.assigned_tickets) over (
                partition by sample_ratio.experiment_id, sample_ratio.as_of_date
            ) * sample_ratio.traffic_share as expected_tickets
        from sample_ratio
    ) as expected
    group by experiment_id, as_of_date
),

sample_ratio_test as materialized (
    select
        experiment_id,
        as_of_date,
        case when total_tickets > 0 then udf.chi2_sf(chi_square, degrees_of_freedom) end as srm_p_value
    from sample_ratio_chi_square
),

-- Every row with its control's figures and the SRM result; from here on one row in, one row out.
paired as (
    select
        accumulated.*,
        controls.n as control_n,
        controls.value_sum as control_value_sum,
        controls.mean as control_mean,
        nullif(controls.mean, 0.0) as control_mean_nonzero,
        controls.variance as control_variance,
        sample_ratio_test.srm_p_value,
        case
            when not accumulated.is_control and accumulated.n > 0 and controls.n > 0
                then accumulated.mean - controls.mean
        end as lift_abs,
        -- variance of each mean: p (1 - p) / n, or s^2 / n
        accumulated.variance / nullif(accumulated.n, 0) as mean_variance,
        controls.variance / nullif(controls.n, 0) as control_mean_variance
    from accumulated
    inner join controls
        on
            accumulated.experiment_id = controls.experiment_id
            and accumulated.as_of_date = controls.as_of_date
            and accumulated.metric = controls.metric
    inner join sample_ratio_test
        on
            accumulated.experiment_id = sample_ratio_test.experiment_id
            and accumulated.as_of_date = sample_ratio_test.as_of_date
),

tested as (
    select
        paired.*,
        case when paired.lift_abs is not null then sqrt(paired.mean_variance + paired.control_mean_variance) end
            as se_diff,
        -- binary: the pooled proportion under H0 (both variants share one success rate)
        case
            when paired.metric_kind = 'binary' and paired.lift_abs is not null
                then (paired.value_sum + paired.control_value_sum) / (paired.n + paired.control_n)
        end as pooled_rate,
        -- continuous: Welch-Satterthwaite; null without variance or with a single unit
        case
            when paired.metric_kind = 'continuous' and paired.lift_abs is not null and paired.n > 1
                and paired.control_n > 1
                then
                    (paired.mean_variance + paired.control_mean_variance)
                    * (paired.mean_variance + paired.control_mean_variance)
                    / nullif(
                        paired.mean_variance * paired.mean_variance / (paired.n - 1)
                        + paired.control_mean_variance * paired.control_mean_variance / (paired.control_n - 1),
                        0.0
                    )
        end as degrees_of_freedom
    from paired
),

-- materialized: the statistics functions run exactly once per row, whatever the plan
tested_statistics as materialized (
    select
        tested.*,
        critical_values.z_alpha,
        critical_values.z_power,
        critical_values.rho_squared,
        case
            when tested.pooled_rate > 0.0 and tested.pooled_rate < 1.0
                then
                    tested.lift_abs / sqrt(
                        tested.pooled_rate * (1.0 - tested.pooled_rate) * (1.0 / tested.n + 1.0 / tested.control_n)
                    )
            when tested.degrees_of_freedom is not null then tested.lift_abs / nullif(tested.se_diff, 0.0)
        end as test_statistic,
        case
            when tested.pooled_rate is not null then critical_values.z_alpha
            when tested.degrees_of_freedom is not null
                then udf.t_ppf(1.0 - {{ var('ab_alpha') }} / 2.0, tested.degrees_of_freedom)
        end as critical_value
    from tested
    cross join critical_values
),

compared as materialized (
    select
        *,
        case
            when test_statistic is null then null
            when metric_kind = 'binary' then 2.0 * udf.norm_sf(abs(test_statistic))
            else 2.0 * udf.t_sf(abs(test_statistic), degrees_of_freedom)
        end as p_value,
        lift_abs / control_mean_nonzero as lift_rel,
        -- delta method for the ratio of two independent means
        critical_value * sqrt(
            mean_variance / (control_mean_nonzero * control_mean_nonzero)
            + mean * mean * control_mean_variance
            / (control_mean_nonzero * control_mean_nonzero)
            / (control_mean_nonzero * control_mean_nonzero)
        ) as lift_rel_margin,
        case
            when lift_abs is not null
                then (z_alpha + z_power) * sqrt(control_variance) * sqrt(1.0 / control_n + 1.0 / n)
        end as mde,
        -- the sequential figures' inputs: N, N rho^2 + 1, and the variances of both estimates (null when 0)
        (n + control_n)::double precision as total_n,
        (n + control_n) * rho_squared + 1.0 as sequence_scale,
        nullif(se_diff * se_diff, 0.0) as diff_variance,
        nullif(
            mean_variance / (control_mean_nonzero * control_mean_nonzero)
            + mean * mean * control_mean_variance
            / (control_mean_nonzero * control_mean_nonzero)
            / (control_mean_nonzero * control_mean_nonzero),
            0.0
        ) as rel_variance
    from tested_statistics
),

sequential as (
    select
        *,
        -- half-width / sqrt(v): sqrt(N) sqrt(2 (N rho^2 + 1) ln(sqrt(N rho^2 + 1) / alpha) / (N rho)^2)
        sqrt(total_n) * sqrt(
            2.0 * sequence_scale * ln(sqrt(sequence_scale) / {{ var('ab_alpha') }})
            / nullif(total_n * total_n * rho_squared, 0.0)
        ) as sequence_factor,
        -- 1 / e-value, built in log space (the e-value overflows for a large effect); null with lift_abs
        -- or diff_variance null
        udf.exp_or_zero(
            0.5 * ln(sequence_scale)
            - rho_squared * (lift_abs * lift_abs * total_n / diff_variance) / (2.0 * sequence_scale)
        ) as inverse_e_value
    from compared
),

final as (
    select
        experiment_id,
        as_of_date,
        metric,
        variant,
        variant_kind,
        is_control,
        traffic_share,
        metric_role,
        metric_kind,
        metric_direction,
        min_sample_per_variant,
        min_relative_lift,
        n,
        mean,
        sd,
        se,
        lift_abs,
        lift_abs - critical_value * se_diff as lift_abs_ci_low,
        lift_abs + critical_value * se_diff as lift_abs_ci_high,
        lift_rel,
        lift_rel - lift_rel_margin as lift_rel_ci_low,
        lift_rel + lift_rel_margin as lift_rel_ci_high,
        test_statistic,
        degrees_of_freedom,
        p_value,
        mde,
        mde / abs(control_mean_nonzero) as mde_rel,
        -- least() skips nulls: the case keeps an undefined p-value null
        case when inverse_e_value is not null then least(1.0, inverse_e_value) end as p_value_seq,
        lift_abs - sequence_factor * sqrt(diff_variance) as lift_abs_seq_ci_low,
        lift_abs + sequence_factor * sqrt(diff_variance) as lift_abs_seq_ci_high,
        lift_rel - sequence_factor * sqrt(rel_variance) as lift_rel_seq_ci_low,
        lift_rel + sequence_factor * sqrt(rel_variance) as lift_rel_seq_ci_high,
        noninferiority_margin,
        assigned_tickets,
        srm_p_value
    from sequential
)

select * from final
