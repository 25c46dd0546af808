"""The statistics functions in schema `udf` (dbt_project/macros/udf_statistics.sql) against scipy.

Values are compared with a relative tolerance of 1e-9 (so tail probabilities such as norm.sf(8) = 6e-16
are checked to 9 significant digits, not merely to 1e-9 absolute); quantiles, which cross zero, with
1e-9 * max(1, |reference|).
"""

from __future__ import annotations

import math
import re

import numpy as np
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from routerloop.build import run_dbt

REL_TOL = 1e-9
FUNCTIONS = (
    "exp_or_zero", "log1p", "erfc", "norm_cdf", "norm_sf", "norm_ppf", "lgamma_correction", "lgamma", "lbeta",
    "betacf", "betainc_from_parts", "betainc", "t_cdf", "t_sf", "t_pdf", "t_ppf",
    "gammainc_lower", "gammainc_upper", "chi2_sf",
)
INTEGER_DF = [*range(1, 11), 15, 20, 30, 50, 100, 300, 1000, 3000, 10000]
FRACTIONAL_DF = [0.5, 1.5, 2.7, 3.25, 7.9, 33.3, 123.45, 999.9, 9999.5]
T_VALUES = [-1e4, -500.0, -60.0, -20.0, -8.0, -5.0, -3.5, -2.5, -1.96, -1.2, -0.7, -0.25, -1e-3, -1e-8,
            0.0, 1e-6, 0.1, 0.5, 1.0, 1.645, 2.0, 3.0, 4.5, 7.0, 12.0, 40.0, 1e3]
PROBABILITIES = sorted(
    {*np.logspace(-10, math.log10(0.5), 60).tolist(), *(1.0 - np.logspace(-10, math.log10(0.5), 60)).tolist(),
     0.001, 0.01, 0.025, 0.05, 0.1, 0.2, 0.8, 0.9, 0.95, 0.975, 0.99, 0.999, 1e-10, 1.0 - 1e-10}
)


@pytest.fixture(scope="module")
def udf_conn(database_url, tmp_path_factory):
    """The session database with the functions installed by the project's own macro."""
    target = tmp_path_factory.mktemp("stats_dbt")
    with pytest.MonkeyPatch.context() as patch:
        # Private dbt artifacts: other dbt runs (parallel sessions) must not share target/.
        patch.setenv("DBT_TARGET_PATH", str(target / "target"))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        result = run_dbt(["run-operation", "install_statistics_udfs"], url=database_url, quiet=True)
    assert result.success
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def evaluate(conn, expression: str, *columns: list[float]) -> np.ndarray:
    """expression over rows built from equal-length columns c1, c2, ... (order preserved)."""
    names = [f"c{i + 1}" for i in range(len(columns))]
    casts = ", ".join("%s::float8[]" for _ in columns)
    rows = conn.execute(
        f"select {expression} from unnest({casts}) with ordinality as u({', '.join(names)}, ord) order by ord",
        [list(map(float, c)) for c in columns],
    ).fetchall()
    return np.array([r[0] if r[0] is not None else np.nan for r in rows], dtype=float)


def assert_relative(ours, ref, inputs, tol: float = REL_TOL) -> None:
    """Relative error <= tol; below 1e-300 the functions flush to 0 (PostgreSQL raises on underflow),
    so there both sides must merely be < 1e-300."""
    ours, ref = np.atleast_1d(np.asarray(ours, dtype=float)), np.atleast_1d(np.asarray(ref, dtype=float))
    inputs = [np.atleast_1d(c) for c in inputs]
    error = np.where(
        (np.abs(ref) < 1e-300) & (np.abs(ours) < 1e-300), 0.0, np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-300)
    )
    worst = int(np.argmax(error))
    assert error[worst] <= tol, (
        f"relative error {error[worst]:.3g} at {[c[worst] for c in inputs]}: ours {ours[worst]!r}, "
        f"scipy {ref[worst]!r}"
    )


def t_cdf_reference(t, df):
    """scipy's Student t CDF; for df = 1 its Cauchy form, because stats.t.cdf(t, 1) loses ~3e-9 relative
    for |t| < 1e-6 (0.5 + atan(t) / pi is exact there, and udf.t_cdf agrees with it)."""
    return stats.cauchy.cdf(t) if df == 1 else stats.t.cdf(t, df)


def assert_quantile(ours: np.ndarray, ref: np.ndarray, inputs, tol: float = REL_TOL) -> None:
    error = np.abs(ours - ref) / np.maximum(np.abs(ref), 1.0)
    worst = int(np.argmax(error))
    assert error[worst] <= tol, (
        f"error {error[worst]:.3g} at {[c[worst] for c in inputs]}: ours {ours[worst]!r}, scipy {ref[worst]!r}"
    )


# --------------------------------------------------------------------------- properties


def test_every_function_is_immutable_strict_and_parallel_safe(udf_conn):
    rows = udf_conn.execute(
        """
        select p.proname, p.provolatile, p.proisstrict, p.proparallel
        from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'udf' and p.proname = any(%s)
        """,
        [list(FUNCTIONS)],
    ).fetchall()
    assert {r[0] for r in rows} == set(FUNCTIONS)
    assert all(r[1:] == ("i", True, "s") for r in rows), rows


def test_null_in_null_out(udf_conn):
    row = udf_conn.execute(
        "select udf.norm_cdf(null), udf.norm_ppf(null), udf.t_cdf(1, null), udf.t_ppf(null, 3),"
        " udf.chi2_sf(null, 1)"
    ).fetchone()
    assert row == (None, None, None, None, None)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select udf.norm_ppf(1.5)", "outside [0, 1]"),
        ("select udf.t_ppf(-0.1, 4)", "outside [0, 1]"),
        ("select udf.t_cdf(1, 0)", "df must be positive"),
        ("select udf.t_ppf(0.3, -2)", "df must be positive"),
        ("select udf.betainc(1, 2, 1.2)", "outside [0, 1]"),
        ("select udf.chi2_sf(3, 0)", "df must be positive"),
    ],
)
def test_invalid_arguments_raise_clear_errors(udf_conn, sql, message):
    with pytest.raises(psycopg.errors.RaiseException, match=re.escape(message)):
        udf_conn.execute(sql)


def test_limits(udf_conn):
    row = udf_conn.execute(
        "select udf.norm_ppf(0), udf.norm_ppf(1), udf.t_ppf(0, 5), udf.t_ppf(1, 5), udf.t_ppf(0.5, 7),"
        " udf.t_cdf(0, 3), udf.t_cdf(1.5, 'Infinity'), udf.norm_cdf(-40), udf.norm_cdf(40),"
        " udf.chi2_sf(0, 2), udf.chi2_sf(1e5, 1)"
    ).fetchone()
    assert row[:6] == (-math.inf, math.inf, -math.inf, math.inf, 0.0, 0.5)
    assert row[6] == pytest.approx(stats.norm.cdf(1.5), rel=1e-15)
    assert row[7:] == (0.0, 1.0, 1.0, 0.0)


# --------------------------------------------------------------------------- normal


def test_norm_cdf_and_sf_grid(udf_conn):
    z = np.concatenate([np.linspace(-8, 8, 641), [-37.5, -30.0, -12.0, 12.0, 1e-12, -1e-12]])
    assert_relative(evaluate(udf_conn, "udf.norm_cdf(c1)", z), stats.norm.cdf(z), [z])
    assert_relative(evaluate(udf_conn, "udf.norm_sf(c1)", z), stats.norm.sf(z), [z])
    x = np.linspace(-6, 6, 241)
    assert_relative(evaluate(udf_conn, "udf.erfc(c1)", x), special.erfc(x), [x])


@settings(max_examples=150, deadline=None)
@given(z=st.floats(min_value=-8.0, max_value=8.0, allow_nan=False))
def test_norm_cdf_property(udf_conn, z):
    ours = udf_conn.execute("select udf.norm_cdf(%s), udf.norm_sf(%s)", (z, z)).fetchone()
    assert_relative(ours, [stats.norm.cdf(z), stats.norm.sf(z)], [[z, z]])


def test_norm_ppf_grid(udf_conn):
    p = np.array(PROBABILITIES)
    ours = evaluate(udf_conn, "udf.norm_ppf(c1)", p)
    assert_quantile(ours, stats.norm.ppf(p), [p])
    # The quantile inverts the CDF: round trip in the lower tail to full relative precision.
    lower = p[p < 0.5]
    assert_relative(evaluate(udf_conn, "udf.norm_cdf(udf.norm_ppf(c1))", lower), lower, [lower], tol=1e-13)


@settings(max_examples=150, deadline=None)
@given(p=st.floats(min_value=1e-10, max_value=1.0 - 1e-10, allow_nan=False))
def test_norm_ppf_property(udf_conn, p):
    ours = udf_conn.execute("select udf.norm_ppf(%s)", (p,)).fetchone()[0]
    ref = stats.norm.ppf(p)
    assert abs(ours - ref) <= REL_TOL * max(1.0, abs(ref))


# --------------------------------------------------------------------------- Student t


@pytest.mark.parametrize("df", INTEGER_DF + FRACTIONAL_DF)
def test_t_cdf_grid(udf_conn, df):
    t = np.array(T_VALUES)
    dfs = np.full_like(t, df)
    assert_relative(evaluate(udf_conn, "udf.t_cdf(c1, c2)", t, dfs), t_cdf_reference(t, df), [t, dfs])
    assert_relative(evaluate(udf_conn, "udf.t_sf(c1, c2)", t, dfs), t_cdf_reference(-t, df), [t, dfs])
    assert_relative(evaluate(udf_conn, "udf.t_pdf(c1, c2)", t, dfs), stats.t.pdf(t, df), [t, dfs])


@pytest.mark.parametrize("df", INTEGER_DF + FRACTIONAL_DF)
def test_t_ppf_grid(udf_conn, df):
    p = np.array(PROBABILITIES)
    dfs = np.full_like(p, df)
    assert_quantile(evaluate(udf_conn, "udf.t_ppf(c1, c2)", p, dfs), stats.t.ppf(p, df), [p, dfs])


@settings(max_examples=120, deadline=None)
@given(
    t=st.floats(min_value=-50.0, max_value=50.0, allow_nan=False),
    df=st.floats(min_value=1.0, max_value=10000.0, allow_nan=False),
)
def test_t_cdf_property(udf_conn, t, df):
    ours = udf_conn.execute("select udf.t_cdf(%s, %s)", (t, df)).fetchone()[0]
    assert_relative(ours, t_cdf_reference(t, df), [t, df])


@settings(max_examples=120, deadline=None)
@given(
    p=st.floats(min_value=1e-10, max_value=1.0 - 1e-10, allow_nan=False),
    df=st.floats(min_value=1.0, max_value=10000.0, allow_nan=False),
)
def test_t_ppf_property(udf_conn, p, df):
    ours = udf_conn.execute("select udf.t_ppf(%s, %s)", (p, df)).fetchone()[0]
    ref = stats.t.ppf(p, df)
    assert abs(ours - ref) <= REL_TOL * max(1.0, abs(ref))


# --------------------------------------------------------------------------- chi-square and helpers


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 1.5, 2.5])
def test_chi2_sf_grid(udf_conn, df):
    x = np.concatenate([[1e-10, 1e-6, 1e-3], np.linspace(0.01, 30, 120), [40, 60, 100, 200, 500, 1200]])
    dfs = np.full_like(x, df)
    assert_relative(evaluate(udf_conn, "udf.chi2_sf(c1, c2)", x, dfs), stats.chi2.sf(x, df), [x, dfs])


@settings(max_examples=120, deadline=None)
@given(
    x=st.floats(min_value=0.0, max_value=300.0, allow_nan=False),
    df=st.integers(min_value=1, max_value=5),
)
def test_chi2_sf_property(udf_conn, x, df):
    ours = udf_conn.execute("select udf.chi2_sf(%s, %s)", (x, df)).fetchone()[0]
    assert_relative(ours, stats.chi2.sf(x, df), [x, df])


def test_incomplete_beta_gamma_and_lbeta(udf_conn):
    rng = np.random.default_rng(7)
    a = np.exp(rng.uniform(math.log(0.3), math.log(5000), 300))
    b = np.exp(rng.uniform(math.log(0.3), math.log(5000), 300))
    x = rng.uniform(0, 1, 300)
    ours, ref = evaluate(udf_conn, "udf.betainc(c1, c2, c3)", a, b, x), special.betainc(a, b, x)
    # scipy's betainc flushes results below ~1e-250 to 0; there only check that ours is as tiny.
    representable = ref > 1e-250
    assert np.all(ours[~representable] < 1e-250)
    assert_relative(ours[representable], ref[representable], [a[representable], b[representable]])
    assert_relative(evaluate(udf_conn, "udf.lbeta(c1, c2)", a, b), special.betaln(a, b), [a, b])
    s = rng.uniform(0.5, 3.0, 300)
    y = np.exp(rng.uniform(math.log(1e-4), math.log(80), 300))
    assert_relative(evaluate(udf_conn, "udf.gammainc_lower(c1, c2)", s, y), special.gammainc(s, y), [s, y])
    assert_relative(evaluate(udf_conn, "udf.gammainc_upper(c1, c2)", s, y), special.gammaincc(s, y), [s, y])
    small = np.array([1e-300, 1e-20, 1e-9, 1e-5, 0.1, 1.0, 700.0])
    assert_relative(evaluate(udf_conn, "udf.log1p(c1)", small), np.log1p(small), [small], tol=1e-15)


def test_lgamma_matches_scipy_gammaln(udf_conn):
    """udf.lgamma exists because PostgreSQL < 18 has no lgamma(); it crosses zero at 1 and 2, so the
    error is taken relative to max(1, |reference|)."""
    xs = [1e-8, 1e-3, 0.1, 0.5, 0.999, 1.0, 1.5, 2.0, 2.5, 3.7, 9.99, 10.0, 10.5, 33.3, 171.5, 1e4, 1e8]
    ours = evaluate(udf_conn, "udf.lgamma(c1)", xs)
    reference = special.gammaln(xs)
    error = np.abs(ours - reference) / np.maximum(1.0, np.abs(reference))
    assert error.max() <= 1e-12, dict(zip(xs, error, strict=True))
