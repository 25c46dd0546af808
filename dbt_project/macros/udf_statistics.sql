{#-
    Statistics functions in schema `udf` for the A/B results (PostgreSQL has no normal, t or
    chi-square distribution functions). Created by an on-run-start hook, so every dbt invocation
    finds them; `create or replace` keeps the hook idempotent and an advisory lock serialises
    concurrent dbt runs on the same database.

    Every function is immutable, strict (null in -> null out) and parallel safe. Accuracy against
    scipy.stats is checked by tests/test_stats_functions.py (relative error < 1e-9, in practice ~1e-14):
      udf.erfc(x)                 W. J. Cody's rational Chebyshev approximation (Math. Comp. 1969)
      udf.norm_cdf(z), norm_sf(z) standard normal distribution via erfc
      udf.norm_ppf(p)             Acklam's approximation + one Halley step on norm_cdf
      udf.lbeta(a, b)             log of the beta function, cancellation-free for large a or b
      udf.betainc(a, b, x)        regularised incomplete beta I_x(a, b), Lentz continued fraction
      udf.t_cdf(t, df), t_sf      Student t distribution (any real df > 0) via betainc
      udf.t_ppf(p, df)            Student t quantile: Hill's algorithm 396 + Newton on t_cdf
      udf.gammainc_lower/upper    regularised incomplete gamma P(a, x), Q(a, x): series / continued fraction
      udf.chi2_sf(x, df)          chi-square survival function = Q(df/2, x/2)
    PostgreSQL raises an error on floating-point underflow, so tiny results are built in log space
    and exponentiated with udf.exp_or_zero.
-#}
{% macro create_statistics_udfs() %}
{{ routerloop_lock('udf_statistics') }};

create schema if not exists udf;

-- exp(x), but 0 instead of PostgreSQL's underflow error when the result is below the normal range.
create or replace function udf.exp_or_zero(x double precision) returns double precision
language sql immutable strict parallel safe
as $$ select case when x < -708.0 then 0.0::double precision else exp(x) end $$;

-- log(1 + x), accurate near 0 (PostgreSQL has no log1p): Goldberg's correction of ln(1 + x).
create or replace function udf.log1p(x double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    w double precision := 1.0 + x;
begin
    if x < -1.0 or x = 'NaN'::double precision then
        return 'NaN'::double precision;
    elsif x = -1.0 then
        return '-Infinity'::double precision;
    elsif w = 1.0 then
        return x;
    elsif w = 'Infinity'::double precision then
        return w;
    end if;
    return ln(w) * x / (w - 1.0);
end
$$;

-- Complementary error function, W. J. Cody's CALERF (three rational approximations).
create or replace function udf.erfc(x double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    y double precision := abs(x);
    ysq double precision;
    xnum double precision;
    xden double precision;
    del double precision;
    result double precision;
    a double precision[] := array[
        3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
        3.20937758913846947e03, 1.85777706184603153e-1];
    b double precision[] := array[
        2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
        2.84423683343917062e03];
    c double precision[] := array[
        5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
        2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
        2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8];
    d double precision[] := array[
        1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
        1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
        3.43936767414372164e03, 1.23033935480374942e03];
    p double precision[] := array[
        3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
        1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2];
    q double precision[] := array[
        2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
        6.05183413124413191e-2, 2.33520497626869185e-3];
begin
    if x = 'NaN'::double precision then
        return x;
    end if;
    if y <= 0.46875 then
        -- erf by the first approximation; erfc = 1 - erf loses nothing here (erf <= 0.49).
        ysq := case when y > 1.11e-16 then y * y else 0.0 end;
        xnum := a[5] * ysq;
        xden := ysq;
        for i in 1..3 loop
            xnum := (xnum + a[i]) * ysq;
            xden := (xden + b[i]) * ysq;
        end loop;
        return 1.0 - x * (xnum + a[4]) / (xden + b[4]);
    end if;
    if y >= 26.543 then
        result := 0.0;  -- below the smallest double
    else
        if y <= 4.0 then
            xnum := c[9] * y;
            xden := y;
            for i in 1..7 loop
                xnum := (xnum + c[i]) * y;
                xden := (xden + d[i]) * y;
            end loop;
            result := (xnum + c[8]) / (xden + d[8]);
        else
            ysq := 1.0 / (y * y);
            xnum := p[6] * ysq;
            xden := ysq;
            for i in 1..4 loop
                xnum := (xnum + p[i]) * ysq;
                xden := (xden + q[i]) * ysq;
            end loop;
            result := ysq * (xnum + p[5]) / (xden + q[5]);
            result := (0.56418958354775628695 - result) / y;
        end if;
        -- exp(-y*y) split as exp(-ysq*ysq) * exp(-del) with ysq = y truncated to 1/16: ysq*ysq is exact.
        ysq := trunc(y * 16.0) / 16.0;
        del := (y - ysq) * (y + ysq);
        if y > 26.0 then
            result := udf.exp_or_zero(-ysq * ysq - del + ln(result));
        else
            result := exp(-ysq * ysq) * exp(-del) * result;
        end if;
    end if;
    if x < 0 then
        result := 2.0 - result;
    end if;
    return result;
end
$$;

-- Standard normal CDF and survival function; each is accurate in relative terms in its own tail.
create or replace function udf.norm_cdf(z double precision) returns double precision
language sql immutable strict parallel safe
as $$ select 0.5 * udf.erfc(-z * 0.70710678118654752440) $$;

create or replace function udf.norm_sf(z double precision) returns double precision
language sql immutable strict parallel safe
as $$ select 0.5 * udf.erfc(z * 0.70710678118654752440) $$;

-- Standard normal quantile: Acklam's rational approximation (relative error < 1.15e-9), then one
-- Halley step on udf.norm_cdf (cubic convergence -> full double precision). Upper half by symmetry,
-- so both tails are computed from the exact lower-tail probability.
create or replace function udf.norm_ppf(p double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    a double precision[] := array[
        -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
        1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
    b double precision[] := array[
        -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
        6.680131188771972e+01, -1.328068155288572e+01];
    c double precision[] := array[
        -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
        -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
    d double precision[] := array[
        7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
        3.754408661907416e+00];
    q double precision;
    r double precision;
    x double precision;
    e double precision;
    u double precision;
begin
    if p = 'NaN'::double precision or p < 0.0 or p > 1.0 then
        raise exception 'udf.norm_ppf: probability % is outside [0, 1]', p;
    elsif p = 0.0 then
        return '-Infinity'::double precision;
    elsif p = 1.0 then
        return 'Infinity'::double precision;
    elsif p > 0.5 then
        return -udf.norm_ppf(1.0 - p);  -- 1 - p is exact for p in [0.5, 1]
    end if;
    if p < 0.02425 then
        q := sqrt(-2.0 * ln(p));
        x := (((((c[1] * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) * q + c[6])
            / ((((d[1] * q + d[2]) * q + d[3]) * q + d[4]) * q + 1.0);
    else
        q := p - 0.5;
        r := q * q;
        x := (((((a[1] * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * r + a[6]) * q
            / (((((b[1] * r + b[2]) * r + b[3]) * r + b[4]) * r + b[5]) * r + 1.0);
    end if;
    if p >= 1e-300 then
        -- Halley: u = (Phi(x) - p) / phi(x); the ratio is taken in log space to stay finite.
        e := udf.norm_cdf(x) - p;
        u := e * exp(0.5 * x * x + 0.91893853320467274178);
        x := x - u / (1.0 + 0.5 * x * u);
    end if;
    return x;
end
$$;

-- ln(Gamma(x)) - Stirling's approximation, for x >= 10 (asymptotic series, error < 1e-17).
create or replace function udf.lgamma_correction(x double precision) returns double precision
language sql immutable strict parallel safe
as $$
    select (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - (1.0 / 1188.0
            - (691.0 / 360360.0 - (1.0 / 156.0 - 3617.0 / 122400.0 / (x * x)) / (x * x))
            / (x * x)) / (x * x)) / (x * x)) / (x * x)) / (x * x)) / x
$$;

-- ln(Gamma(x)) for x > 0. PostgreSQL has lgamma() only from version 18 on: Stirling with the
-- correction series above for x >= 10, reached by the recurrence Gamma(x + 1) = x Gamma(x).
create or replace function udf.lgamma(x double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    shifted double precision := x;
    log_product double precision := 0.0;
begin
    if x <= 0.0 then
        raise exception 'udf.lgamma: argument must be positive (got %)', x;
    end if;
    while shifted < 10.0 loop
        log_product := log_product + ln(shifted);
        shifted := shifted + 1.0;
    end loop;
    return (shifted - 0.5) * ln(shifted) - shifted + 0.91893853320467274178
        + udf.lgamma_correction(shifted) - log_product;
end
$$;

-- ln B(a, b). lgamma(a + b) - lgamma(a) - lgamma(b) cancels badly when a or b is large (t with
-- large df); the split into Stirling corrections keeps full precision (as R's lbeta does).
create or replace function udf.lbeta(a double precision, b double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    p double precision := least(a, b);
    q double precision := greatest(a, b);
    corr double precision;
begin
    if p <= 0.0 then
        raise exception 'udf.lbeta: arguments must be positive (got %, %)', a, b;
    end if;
    if p >= 10.0 then
        corr := udf.lgamma_correction(p) + udf.lgamma_correction(q) - udf.lgamma_correction(p + q);
        return -0.5 * ln(q) + 0.91893853320467274178 + corr + (p - 0.5) * ln(p / (p + q))
            + q * udf.log1p(-p / (p + q));
    elsif q >= 10.0 then
        corr := udf.lgamma_correction(q) - udf.lgamma_correction(p + q);
        return udf.lgamma(p) + corr + p - p * ln(p + q) + (q - 0.5) * udf.log1p(-p / (p + q));
    end if;
    return udf.lgamma(p) + udf.lgamma(q) - udf.lgamma(p + q);
end
$$;

-- Continued fraction of the incomplete beta function (Numerical Recipes betacf, modified Lentz).
-- y = 1 - x is passed separately so callers can supply it without cancellation.
create or replace function udf.betacf(a double precision, b double precision, x double precision)
returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    tiny constant double precision := 1e-300;
    qab double precision := a + b;
    qap double precision := a + 1.0;
    qam double precision := a - 1.0;
    c double precision := 1.0;
    d double precision;
    h double precision;
    aa double precision;
    del double precision;
    m2 double precision;
begin
    d := 1.0 - qab * x / qap;
    if abs(d) < tiny then d := tiny; end if;
    d := 1.0 / d;
    h := d;
    for m in 1..100000 loop
        m2 := 2 * m;
        aa := m * (b - m) * x / ((qam + m2) * (a + m2));
        d := 1.0 + aa * d;
        if abs(d) < tiny then d := tiny; end if;
        c := 1.0 + aa / c;
        if abs(c) < tiny then c := tiny; end if;
        d := 1.0 / d;
        h := h * d * c;
        aa := -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d := 1.0 + aa * d;
        if abs(d) < tiny then d := tiny; end if;
        c := 1.0 + aa / c;
        if abs(c) < tiny then c := tiny; end if;
        d := 1.0 / d;
        del := d * c;
        h := h * del;
        if abs(del - 1.0) <= 3e-16 then
            return h;
        end if;
    end loop;
    raise exception 'udf.betacf: no convergence for a=%, b=%, x=%', a, b, x;
end
$$;

-- I_x(a, b) from x, y = 1 - x and their logarithms, each supplied accurately by the caller.
create or replace function udf.betainc_from_parts(
    a double precision, b double precision,
    x double precision, y double precision,
    log_x double precision, log_y double precision
) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    log_front double precision;
begin
    if a <= 0.0 or b <= 0.0 then
        raise exception 'udf.betainc: a and b must be positive (got %, %)', a, b;
    elsif x <= 0.0 then
        return 0.0;
    elsif y <= 0.0 then
        return 1.0;
    end if;
    -- x^a y^b / B(a, b), in log space (tiny tails must not underflow on the way).
    log_front := a * log_x + b * log_y - udf.lbeta(a, b);
    if x < 1e-200 then
        return udf.exp_or_zero(log_front - ln(a));  -- leading series term; relative error O(x)
    elsif y < 1e-200 then
        return 1.0 - udf.exp_or_zero(log_front - ln(b));
    elsif x < (a + 1.0) / (a + b + 2.0) then
        return udf.exp_or_zero(log_front + ln(udf.betacf(a, b, x)) - ln(a));
    end if;
    return 1.0 - udf.exp_or_zero(log_front + ln(udf.betacf(b, a, y)) - ln(b));
end
$$;

-- Regularised incomplete beta function I_x(a, b) for 0 <= x <= 1.
create or replace function udf.betainc(a double precision, b double precision, x double precision)
returns double precision
language plpgsql immutable strict parallel safe
as $$
begin
    if x < 0.0 or x > 1.0 or x = 'NaN'::double precision then
        raise exception 'udf.betainc: x = % is outside [0, 1]', x;
    elsif x = 0.0 then
        return case when a > 0.0 and b > 0.0 then 0.0 end;
    elsif x = 1.0 then
        return case when a > 0.0 and b > 0.0 then 1.0 end;
    end if;
    return udf.betainc_from_parts(a, b, x, 1.0 - x, ln(x), udf.log1p(-x));
end
$$;

-- Student t CDF for real df > 0 (df = Infinity is the normal distribution):
-- P(T <= -|t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2), y = 1 - x = t^2 / (df + t^2).
create or replace function udf.t_cdf(t double precision, df double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    r double precision;
    log_r double precision;
    x double precision;
    y double precision;
    log_x double precision;
    log_y double precision;
    tail double precision;
begin
    if df <= 0.0 or df = 'NaN'::double precision then
        raise exception 'udf.t_cdf: df must be positive (got %)', df;
    elsif t = 'NaN'::double precision then
        return t;
    elsif df = 'Infinity'::double precision then
        return udf.norm_cdf(t);
    elsif t = 0.0 then
        return 0.5;
    elsif abs(t) = 'Infinity'::double precision then
        return case when t > 0 then 1.0 else 0.0 end;
    end if;
    -- r = t^2 / df (or its inverse) from logarithms, so extreme t neither overflows nor underflows.
    log_r := 2.0 * ln(abs(t)) - ln(df);
    if log_r < 0.0 then
        r := udf.exp_or_zero(log_r);  -- t^2/df < 1
        x := 1.0 / (1.0 + r);
        y := r / (1.0 + r);
        log_x := -udf.log1p(r);
        log_y := log_r - udf.log1p(r);
    else
        r := udf.exp_or_zero(-log_r);  -- df/t^2 <= 1
        x := r / (1.0 + r);
        y := 1.0 / (1.0 + r);
        log_x := -log_r - udf.log1p(r);
        log_y := -udf.log1p(r);
    end if;
    tail := 0.5 * udf.betainc_from_parts(0.5 * df, 0.5, x, y, log_x, log_y);
    return case when t < 0 then tail else 1.0 - tail end;
end
$$;

create or replace function udf.t_sf(t double precision, df double precision) returns double precision
language sql immutable strict parallel safe
as $$ select udf.t_cdf(-t, df) $$;

-- Student t density (used by udf.t_ppf's Newton steps).
create or replace function udf.t_pdf(t double precision, df double precision) returns double precision
language sql immutable strict parallel safe
as $$
    select udf.exp_or_zero(
        -udf.lbeta(0.5 * df, 0.5) - 0.5 * ln(df) - 0.5 * (df + 1.0) * udf.log1p(t * t / df)
    )
$$;

-- Student t quantile for real df > 0. Start: exact for df = 1 and 2, Hill's algorithm 396 (as in R's
-- qt) for df > 1, the power-law tail for df < 1; then Newton on udf.t_cdf for the lower-tail
-- probability, in log-log coordinates in the tail (where ln F is nearly linear in ln|t|).
create or replace function udf.t_ppf(p double precision, df double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    q double precision;       -- lower-tail probability < 0.5
    two_q double precision;   -- two-sided probability
    x double precision;       -- the lower-tail quantile (negative)
    a double precision;
    b double precision;
    c double precision;
    d double precision;
    y double precision;
    z double precision;
    f double precision;
    step double precision;
    x_new double precision;
begin
    if df <= 0.0 or df = 'NaN'::double precision then
        raise exception 'udf.t_ppf: df must be positive (got %)', df;
    elsif p = 'NaN'::double precision or p < 0.0 or p > 1.0 then
        raise exception 'udf.t_ppf: probability % is outside [0, 1]', p;
    elsif p = 0.0 then
        return '-Infinity'::double precision;
    elsif p = 1.0 then
        return 'Infinity'::double precision;
    elsif p = 0.5 then
        return 0.0;
    elsif df = 'Infinity'::double precision then
        return udf.norm_ppf(p);
    elsif p > 0.5 then
        return -udf.t_ppf(1.0 - p, df);  -- 1 - p is exact for p in [0.5, 1]
    end if;
    q := p;
    two_q := 2.0 * q;
    if df = 1.0 then
        return -1.0 / tan(pi() * q);  -- Cauchy, exact
    elsif df = 2.0 then
        return (two_q - 1.0) / sqrt(two_q * (1.0 - q));  -- exact: (2q - 1) / sqrt(2 q (1 - q))
    elsif df < 1.0 then
        -- F(x) ~ |x|^-df / (df B(df/2, 1/2)) * df^(df/2) for large |x|
        x := -exp((0.5 * df * ln(df) - ln(df) - udf.lbeta(0.5 * df, 0.5) - ln(q)) / df);
    else
        a := 1.0 / (df - 0.5);
        b := 48.0 / (a * a);
        c := ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36;
        d := ((94.5 / (b + c) - 3.0) / b + 1.0) * sqrt(a * pi() / 2.0) * df;
        y := udf.exp_or_zero(2.0 / df * ln(d * two_q));
        if (df < 2.1 and two_q > 0.5) or y > 0.05 + a then
            z := udf.norm_ppf(q);
            y := z * z;
            if df < 5.0 then
                c := c + 0.3 * (df - 4.5) * (z + 0.6);
            end if;
            c := (((0.05 * d * z - 5.0) * z - 7.0) * z - 2.0) * z + b + c;
            y := (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * z;
            y := a * y * y;
            y := case when y < 1e-5 then y + 0.5 * y * y else exp(y) - 1.0 end;
        else
            y := ((1.0 / (((df + 6.0) / (df * y) - 0.089 * d - 0.822) * (df + 2.0) * 3.0)
                + 0.5 / (df + 4.0)) * y - 1.0) * (df + 1.0) / (df + 2.0) + 1.0 / y;
        end if;
        x := -sqrt(df * y);
    end if;
    if x >= 0.0 or x = 'NaN'::double precision then
        x := -1.0;  -- a start on the wrong side (never seen); Newton recovers from any negative start
    end if;
    for i in 1..100 loop
        f := udf.t_cdf(x, df);
        if q < 0.05 and f > 0.0 then
            -- Newton on ln F(x) = ln q in s = ln(-x): ds = -(ln F - ln q) F / (pdf x)
            step := (ln(f) - ln(q)) * f / (udf.t_pdf(x, df) * x);
            step := greatest(least(step, 20.0), -20.0);  -- a bad start cannot overflow exp
            x_new := x * exp(-step);
        else
            x_new := x - (f - q) / udf.t_pdf(x, df);
            if x_new >= 0.0 then
                x_new := 0.5 * x;  -- stay in the lower half
            end if;
        end if;
        exit when abs(x_new - x) <= 2e-16 * abs(x);
        x := x_new;
    end loop;
    return x_new;
end
$$;

-- Regularised lower incomplete gamma P(a, x) (series for x < a + 1, else 1 - Q by continued fraction).
create or replace function udf.gammainc_lower(a double precision, x double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    ap double precision := a;
    term double precision;
    total double precision;
begin
    if a <= 0.0 or x < 0.0 or a = 'NaN'::double precision or x = 'NaN'::double precision then
        raise exception 'udf.gammainc_lower: need a > 0 and x >= 0 (got a=%, x=%)', a, x;
    elsif x = 0.0 then
        return 0.0;
    elsif x >= a + 1.0 then
        return 1.0 - udf.gammainc_upper(a, x);
    elsif x < 1e-200 then
        return udf.exp_or_zero(a * ln(x) - udf.lgamma(a + 1.0));  -- leading series term; relative error O(x)
    end if;
    term := 1.0 / a;
    total := term;
    for n in 1..100000 loop
        ap := ap + 1.0;
        term := term * x / ap;
        total := total + term;
        if abs(term) < abs(total) * 1e-17 then
            return udf.exp_or_zero(ln(total) - x + a * ln(x) - udf.lgamma(a));
        end if;
    end loop;
    raise exception 'udf.gammainc_lower: no convergence for a=%, x=%', a, x;
end
$$;

-- Regularised upper incomplete gamma Q(a, x) = 1 - P(a, x) (modified Lentz continued fraction).
create or replace function udf.gammainc_upper(a double precision, x double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
declare
    tiny constant double precision := 1e-300;
    b double precision;
    c double precision;
    d double precision;
    h double precision;
    an double precision;
    del double precision;
begin
    if a <= 0.0 or x < 0.0 or a = 'NaN'::double precision or x = 'NaN'::double precision then
        raise exception 'udf.gammainc_upper: need a > 0 and x >= 0 (got a=%, x=%)', a, x;
    elsif x = 'Infinity'::double precision then
        return 0.0;
    elsif x < a + 1.0 then
        return 1.0 - udf.gammainc_lower(a, x);
    end if;
    b := x + 1.0 - a;
    c := 1.0 / tiny;
    d := 1.0 / b;
    h := d;
    for i in 1..100000 loop
        an := -i * (i - a);
        b := b + 2.0;
        d := an * d + b;
        if abs(d) < tiny then d := tiny; end if;
        c := b + an / c;
        if abs(c) < tiny then c := tiny; end if;
        d := 1.0 / d;
        del := d * c;
        h := h * del;
        if abs(del - 1.0) <= 3e-16 then
            return udf.exp_or_zero(ln(h) - x + a * ln(x) - udf.lgamma(a));
        end if;
    end loop;
    raise exception 'udf.gammainc_upper: no convergence for a=%, x=%', a, x;
end
$$;

-- Chi-square survival function P(X > x) with df degrees of freedom (df > 0, real).
create or replace function udf.chi2_sf(x double precision, df double precision) returns double precision
language plpgsql immutable strict parallel safe
as $$
begin
    if df <= 0.0 or df = 'NaN'::double precision then
        raise exception 'udf.chi2_sf: df must be positive (got %)', df;
    elsif x <= 0.0 then
        return 1.0;
    elsif x < 1e-290 then
        -- x / 2 would underflow: 1 - P(df/2, x/2) with P's leading term
        return 1.0 - udf.exp_or_zero(0.5 * df * (ln(x) - ln(2.0)) - udf.lgamma(0.5 * df + 1.0));
    end if;
    return udf.gammainc_upper(0.5 * df, 0.5 * x);
end
$$;
{% endmacro %}

{#- `dbt run-operation install_statistics_udfs`: the same functions without a dbt run. -#}
{% macro install_statistics_udfs() %}
    {% do run_query(create_statistics_udfs()) %}
    {% do log('statistics functions installed in schema udf', info=true) %}
{% endmacro %}
