"""The HTML report: one offline page with every plot embedded, each drawn from the built marts.

Runs on the session's three-week warehouse (landed and fully built by dbt). The page test checks the
structure (five sections, each a decodable embedded PNG, nothing fetched from elsewhere); the plot
tests check that each figure shows the numbers of its mart.
"""

from __future__ import annotations

import base64
import io
from datetime import date, timedelta
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pandas as pd
import pytest

from routerloop import contract, db, report
from routerloop.config import dbt_var

matplotlib.use("Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def day(three_week_url):
    with db.connect(three_week_url, autocommit=True) as conn:
        return conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()[0]


@pytest.fixture
def conn(three_week_url):
    with db.connect(three_week_url, autocommit=True) as connection:
        yield connection


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.sections: list[str] = []
        self.images: list[tuple[str | None, str]] = []  # (section, src)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section":
            self.sections.append(attributes.get("id"))
        if tag == "img":
            self.images.append((self.sections[-1] if self.sections else None, attributes.get("src") or ""))


def test_report_page_embeds_every_plot_and_references_nothing_outside(three_week_url, day, tmp_path):
    path = report.write_report(day, out_dir=tmp_path, url=three_week_url)
    assert path == report.report_path(day, tmp_path) and path.exists()
    text = path.read_text()
    page = _Page()
    page.feed(text)

    expected = [section_id for section_id, _, _ in report.SECTIONS]
    assert expected == ["tier-confusion", "reliability", "sla-csat", "weights", "ab-lifts"]
    assert page.sections == expected
    assert [section for section, _ in page.images] == expected  # one image in each section

    import matplotlib.image as mpimg

    for section, src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), section
        data = base64.b64decode(src[len(prefix):], validate=True)
        assert data.startswith(PNG_MAGIC), section
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300, section
        assert pixels[..., :3].std() > 0.05, f"{section}: the image is blank"
        assert b"http" not in data, f"{section}: the PNG carries a URL in its metadata"

    # offline: no scripts, stylesheets, frames or any attribute pointing elsewhere
    assert not [tag for tag, _ in page.tags if tag in {"script", "link", "iframe", "object", "embed"}]
    for tag, attributes in page.tags:
        for name, value in attributes.items():
            if name in {"src", "href", "srcset", "action", "poster", "data"}:
                assert (value or "").startswith("data:"), f"<{tag} {name}={value[:40]!r}> is not embedded"
    assert "http:" not in text and "https:" not in text and "url(" not in text


def _lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_confusion_heatmap_shows_the_counts_of_the_last_days(conn, day):
    fig = report.plot_confusion(conn, day)
    shown = fig.axes[0].images[0].get_array()
    rows = conn.execute(
        "select expected_tier, predicted_tier, sum(n) from marts.tier_confusion_daily"
        " where decision_date > %s and decision_date <= %s group by 1, 2",
        (day - timedelta(days=report.REPORT_CONFUSION_DAYS), day),
    ).fetchall()
    expected = np.zeros((len(contract.TIERS), len(contract.TIERS)))
    for expected_tier, predicted_tier, n in rows:
        expected[contract.TIERS.index(expected_tier), contract.TIERS.index(predicted_tier)] += float(n)
    assert expected.sum() > 0
    np.testing.assert_array_equal(np.asarray(shown), expected)


def test_reliability_curve_plots_each_rule_version_against_the_diagonal(conn, day):
    fig = report.plot_reliability(conn, day)
    ax = fig.axes[0]
    diagonal = [line for line in ax.get_lines() if line.get_label() == "perfect calibration"]
    assert len(diagonal) == 1 and list(diagonal[0].get_xdata()) == [0, 1]
    window = min(int(w) for w in dbt_var("quality_windows"))
    rows = conn.execute(  # the curve runs through the bins with enough decisions (the other test below)
        "select rule_version, mean_confidence, tier_accuracy from marts.confidence_calibration"
        " where as_of_date = %s and window_days = %s and n >= %s order by rule_version, bin",
        (day, window, int(dbt_var("calibration_min_bin_decisions"))),
    ).fetchall()
    assert rows
    curves = {line.get_label(): line for line in ax.get_lines() if line.get_label() != "perfect calibration"}
    assert set(curves) == {str(r[0]) for r in rows}
    for version, line in curves.items():
        assert list(line.get_xdata()) == pytest.approx([float(c) for v, c, _ in rows if str(v) == version])
        assert list(line.get_ydata()) == pytest.approx([float(a) for v, _, a in rows if str(v) == version])


def test_sla_and_csat_trends_have_one_line_per_team(conn, day):
    fig = report.plot_sla_csat(conn, day)
    left, right = fig.axes
    window = min(int(w) for w in dbt_var("rolling_windows"))
    teams = [r[0] for r in conn.execute(
        "select distinct team_id from marts.team_sla_csat_rolling where window_days = %s and as_of_date > %s"
        " and as_of_date <= %s order by 1",
        (window, day - timedelta(days=report.REPORT_TREND_DAYS), day),
    )]
    assert len(teams) >= 2
    assert sorted(line.get_label() for line in _lines(left)) == teams
    assert sorted(line.get_label() for line in _lines(right)) == teams
    team = teams[0]
    rates = [float(r[0]) for r in conn.execute(
        "select attainment_rate from marts.team_sla_csat_rolling where window_days = %s and team_id = %s"
        " and as_of_date > %s and as_of_date <= %s order by as_of_date",
        (window, team, day - timedelta(days=report.REPORT_TREND_DAYS), day),
    )]
    line = next(line for line in _lines(left) if line.get_label() == team)
    assert list(line.get_ydata()) == pytest.approx(rates, nan_ok=True)


def test_weight_trends_draw_floor_and_ceiling(conn, day):
    fig = report.plot_weights(conn, day)
    base = float(dbt_var("weights_base"))
    floor, ceiling = base * float(dbt_var("weights_floor_ratio")), base * float(dbt_var("weights_ceiling_ratio"))
    strategies = [s for s in dbt_var("weight_strategies") if s != "static"]
    assert len(fig.axes) == len(strategies)
    teams = sorted(r[0] for r in conn.execute(
        "select distinct team_id from marts.routing_weights where as_of_date = %s", (day,)
    ))
    for ax, strategy in zip(fig.axes, strategies, strict=True):
        assert strategy in ax.get_title()
        lines = {line.get_label(): line for line in _lines(ax)}
        assert list(lines["floor"].get_ydata()) == [floor, floor]
        assert list(lines["ceiling"].get_ydata()) == [ceiling, ceiling]
        assert sorted(set(lines) - {"floor", "ceiling"}) == teams
        team = teams[0]
        mean_today = conn.execute(
            "select avg(weight) from marts.routing_weights where as_of_date = %s and strategy = %s and team_id = %s",
            (day, strategy, team),
        ).fetchone()[0]
        assert lines[team].get_ydata()[-1] == pytest.approx(float(mean_today))


def test_ab_lifts_show_each_variant_and_metric_with_its_interval(conn, day):
    fig = report.plot_ab_lifts(conn, day)
    ax = fig.axes[0]
    # the interval the verdict reads: the confidence sequence while running, the fixed CI when final
    rows = conn.execute(
        "select * from (select experiment_id, metric, variant, lift_rel,"
        " case when analysis_phase = 'running' then lift_rel_seq_ci_low else lift_rel_ci_low end as low,"
        " case when analysis_phase = 'running' then lift_rel_seq_ci_high else lift_rel_ci_high end as high"
        " from marts.ab_results"
        " where as_of_date = (select max(as_of_date) from marts.ab_results where as_of_date <= %s)"
        " and not is_control) as shown where lift_rel is not null and low is not null"
        " and high is not null order by experiment_id, metric, variant",
        (day,),
    ).fetchall()
    assert rows
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{e}: {m} ({v})" for e, m, v, *_ in rows]
    points = ax.containers[0]
    marker = points.lines[0]
    assert list(marker.get_xdata()) == pytest.approx([float(r[3]) for r in rows])
    # the horizontal error bars span exactly [ci_low, ci_high]
    segments = points.lines[2][0].get_segments()
    spans = [x for s in segments for x in (s[0][0], s[1][0])]
    assert spans == pytest.approx([float(x) for r in rows for x in (r[4], r[5])])


# --------------------------------------------------------------------------- readability of the plots


def _fake_query(monkeypatch, frame: pd.DataFrame) -> None:
    """Let a plot read `frame` instead of its mart (for shapes the generated data may not have)."""
    monkeypatch.setattr(report, "_query", lambda conn, sql, params=(): frame.copy())


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_reliability_bins_of_few_decisions_stay_off_the_curve_with_their_counts(monkeypatch):
    min_n = int(dbt_var("calibration_min_bin_decisions"))
    _fake_query(monkeypatch, pd.DataFrame({
        "rule_version": ["v1"] * 4,
        "bin": [1, 2, 3, 4],
        "n": [2, 0, min_n, 10 * min_n],
        "mean_confidence": [0.05, None, 0.55, 0.85],
        "tier_accuracy": [0.5, None, 0.5, 0.8],
    }))
    ax = report.plot_reliability(None, date(2026, 11, 7)).axes[0]
    curve = next(line for line in ax.get_lines() if line.get_label() == "v1")
    assert list(curve.get_xdata()) == [0.55, 0.85]  # the bin of two decisions is not on the curve
    assert "n=2" in _texts(ax)  # ... but shown, with its count
    hollow = [c for c in ax.collections if len(c.get_offsets()) and not c.get_facecolor().any()]
    assert [list(map(float, xy)) for c in hollow for xy in c.get_offsets()] == [[0.05, 0.5]]
    filled = next(c for c in ax.collections if len(c.get_offsets()) == 2)
    small, large = filled.get_sizes()
    assert large > small  # marker areas grow with the decisions in the bin


def test_reliability_says_when_the_date_has_no_calibration(conn, day):
    ax = report.plot_reliability(conn, day + timedelta(days=60)).axes[0]
    assert f"no calibrated decisions on {day + timedelta(days=60)}" in _texts(ax)


def test_weight_axis_fits_the_weights_and_caps_are_grey_and_named(conn, day):
    fig = report.plot_weights(conn, day)
    base = float(dbt_var("weights_base"))
    floor, ceiling = base * float(dbt_var("weights_floor_ratio")), base * float(dbt_var("weights_ceiling_ratio"))
    for ax in fig.axes:
        lines = {line.get_label(): line for line in _lines(ax)}
        teams = [line for label, line in lines.items() if label not in {"floor", "ceiling"}]
        weights = [float(y) for line in teams for y in line.get_ydata()]
        bottom, top = ax.get_ylim()
        assert bottom <= min(weights) and max(weights) <= top
        # scaled to the data, not squeezed between floor and ceiling
        assert top - bottom < 0.5 * (ceiling - floor)
        assert top - bottom <= 1.5 * (max([*weights, base]) - min([*weights, base])) + 0.05 * base
        # the caps look unlike every team line
        cap_colors = {matplotlib.colors.to_hex(lines[c].get_color()) for c in ("floor", "ceiling")}
        assert not cap_colors & {matplotlib.colors.to_hex(line.get_color()) for line in teams}
        assert len({matplotlib.colors.to_hex(line.get_color()) for line in teams}) == len(teams)
        # a cap off the scale is named at its edge
        if ceiling > top:
            assert f"ceiling {ceiling:g} (above)" in _texts(ax)
        if floor < bottom:
            assert f"floor {floor:g} (below)" in _texts(ax)
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert f"floor {floor:g} (cap)" in legend and f"ceiling {ceiling:g} (cap)" in legend


def test_ab_lifts_say_which_direction_is_better_for_each_metric(conn, day):
    ax = report.plot_ab_lifts(conn, day).axes[0]
    directions = [r[0] for r in conn.execute(
        "select metric_direction from marts.ab_results where as_of_date = %s and not is_control"
        " and lift_rel is not null and (case when analysis_phase = 'running' then lift_rel_seq_ci_low"
        " else lift_rel_ci_low end) is not null"
        " order by experiment_id, metric, variant",
        (day,),
    )]
    assert directions and set(directions) <= {"lower", "higher"}
    assert _texts(ax) == [f"{d} is better" for d in directions]


def test_ab_lift_points_are_green_when_better_and_red_when_worse(monkeypatch):
    _fake_query(monkeypatch, pd.DataFrame({
        "experiment_id": ["e"] * 4,
        "metric": ["sla_breach", "sla_breach", "csat_rating", "csat_rating"],
        "variant": ["a", "b", "a", "b"],
        "metric_direction": ["lower", "lower", "higher", "higher"],
        "lift_rel": [-0.2, 0.2, 0.1, 0.01],
        "lift_rel_ci_low": [-0.3, 0.1, 0.05, -0.02],
        "lift_rel_ci_high": [-0.1, 0.3, 0.15, 0.04],
    }))
    ax = report.plot_ab_lifts(None, date(2026, 11, 7)).axes[0]
    points = next(c for c in ax.collections if len(c.get_offsets()) == 4)
    shown = [matplotlib.colors.to_hex(c) for c in points.get_facecolors()]
    assert shown == [matplotlib.colors.to_hex(c) for c in ("tab:green", "tab:red", "tab:green", "grey")]


def test_ab_lifts_of_a_date_without_results_say_so_instead_of_showing_another_date(conn, day):
    later = day + timedelta(days=60)
    ax = report.plot_ab_lifts(conn, later).axes[0]
    assert not ax.containers  # no lifts of an earlier date
    assert _texts(ax) == [f"no A/B results for {later} (the newest are of {day})"]
    earlier = conn.execute("select min(as_of_date) - 1 from marts.ab_results").fetchone()[0]
    assert _texts(report.plot_ab_lifts(conn, earlier).axes[0]) == [f"no A/B results for {earlier}"]


def test_a_report_for_a_day_without_data_says_so_and_exits_non_zero(database_url, tmp_path, monkeypatch, capsys):
    from routerloop import cli
    from routerloop.config import reload_settings

    name = db.url_parts(database_url)["dbname"] + "_report_empty"
    url = db.create_database(database_url, name)
    try:
        with db.connect(url, autocommit=True) as connection:
            connection.execute("create schema marts; create table marts.routing_weights (as_of_date date)")
            monkeypatch.setenv("ROUTERLOOP_DATABASE_URL", url)
            monkeypatch.setenv("ROUTERLOOP_REPORT_DIR", str(tmp_path))
            reload_settings()
            assert cli.main(["report"]) == 1  # no day at all
            assert "the marts hold no day yet" in capsys.readouterr().err
            connection.execute("insert into marts.routing_weights values ('2026-11-06'), ('2026-11-07')")
            assert cli.main(["report", "--date", "2026-12-25"]) == 1
    finally:
        monkeypatch.undo()
        reload_settings()
        db.drop_database(database_url, name)
    err = capsys.readouterr().err
    assert "no data for 2026-12-25: the marts do not hold that day (they hold 2026-11-06 to 2026-11-07)" in err
    assert list(tmp_path.iterdir()) == []
