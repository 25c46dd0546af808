"""`routerloop report --date D`: one static HTML page with embedded PNG plots, viewable offline.

It only reads marts (the numbers are computed in dbt): tier confusion, reliability, SLA and CSAT trends,
weight trends with their caps, and A/B lifts with confidence intervals.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from routerloop import contract, db
from routerloop.config import dbt_var, settings
from routerloop.weight_rows import day_is_built

# Layout of the page: trends look back this many days from the report date; the confusion heatmap
# sums the last REPORT_CONFUSION_DAYS. The rolling and calibration windows shown are the shortest the
# marts compute (dbt vars rolling_windows and quality_windows).
REPORT_TREND_DAYS = 28
REPORT_CONFUSION_DAYS = 7


def _rolling_window() -> int:
    return min(int(w) for w in dbt_var("rolling_windows"))


def _calibration_window() -> int:
    return min(int(w) for w in dbt_var("quality_windows"))


def _query(conn, sql: str, params: tuple = ()) -> pd.DataFrame:
    cursor = conn.execute(sql, params)
    columns = [c.name for c in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def _png(fig) -> str:
    buffer = io.BytesIO()
    # No metadata: the default names matplotlib's web site; the page must not point anywhere.
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _date_axis(ax) -> None:
    import matplotlib.dates as mdates

    low, high = ax.get_xlim()  # in days; whole-day ticks, at most about eight of them
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, -(-int(high - low) // 8))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.tick_params(axis="x", rotation=45)


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot_confusion(conn, day: date):
    import matplotlib.pyplot as plt

    df = _query(
        conn,
        "select expected_tier, predicted_tier, sum(n)::bigint as n from marts.tier_confusion_daily"
        " where decision_date > %s and decision_date <= %s group by 1, 2",
        (day - timedelta(days=REPORT_CONFUSION_DAYS), day),
    )
    fig, ax = plt.subplots(figsize=(5, 4.2))
    if df.empty:
        _empty(ax, f"no labelled decisions in the {REPORT_CONFUSION_DAYS} days to {day}")
        return fig
    grid = df.pivot_table(index="expected_tier", columns="predicted_tier", values="n", aggfunc="sum")
    grid = grid.reindex(index=contract.TIERS, columns=contract.TIERS).fillna(0)
    ax.imshow(grid.values, cmap="Blues")
    for i in range(len(contract.TIERS)):
        for j in range(len(contract.TIERS)):
            ax.text(j, i, int(grid.values[i, j]), ha="center", va="center", fontsize=9)
    ax.set_xticks(range(4), contract.TIERS)
    ax.set_yticks(range(4), contract.TIERS)
    ax.set_xlabel("predicted tier")
    ax.set_ylabel("expected tier (feedback)")
    ax.set_title(f"Tier confusion, {REPORT_CONFUSION_DAYS} days to {day}")
    return fig


def _marker_areas(n: pd.Series, largest: float) -> pd.Series:
    """Scatter marker areas (points^2) that grow with the number of decisions behind each point."""
    return 12 + 150 * n.astype(float) / max(largest, 1.0)


def plot_reliability(conn, day: date):
    """Accuracy against confidence per bin: a curve through the bins with enough decisions.

    Marker areas grow with the bin's decisions. Bins under `calibration_min_bin_decisions` (dbt var)
    stay off the curve, hollow and grey, with their count: one or two decisions make no accuracy.
    """
    import matplotlib.pyplot as plt

    min_n = int(dbt_var("calibration_min_bin_decisions"))
    df = _query(
        conn,
        "select rule_version, bin, n, mean_confidence, tier_accuracy from marts.confidence_calibration"
        " where as_of_date = %s and window_days = %s order by rule_version, bin",
        (day, _calibration_window()),
    )
    df = df[df["n"] > 0]
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    largest = float(df["n"].max()) if not df.empty else 1.0
    for index, (rule_version, part) in enumerate(df.groupby("rule_version")):
        color = f"C{index}"
        enough, few = part[part["n"] >= min_n], part[part["n"] < min_n]
        x, y = enough["mean_confidence"].astype(float), enough["tier_accuracy"].astype(float)
        ax.plot(x, y, color=color, label=str(rule_version))
        ax.scatter(x, y, s=_marker_areas(enough["n"], largest), color=color, zorder=3)
        ax.scatter(few["mean_confidence"].astype(float), few["tier_accuracy"].astype(float),
                   s=_marker_areas(few["n"], largest), facecolors="none", edgecolors="grey", zorder=3)
        for row in few.itertuples():
            ax.annotate(f"n={row.n}", (float(row.mean_confidence), float(row.tier_accuracy)), xytext=(5, 3),
                        textcoords="offset points", fontsize=7, color="dimgrey")
    if df.empty:
        ax.text(0.5, 0.6, f"no calibrated decisions on {day}", ha="center", transform=ax.transAxes)
    ax.scatter([], [], s=40, facecolors="none", edgecolors="grey",
               label=f"bin of < {min_n} decisions (n shown; off the curve)")
    ax.set_xlabel("mean confidence (marker area: decisions in the bin)")
    ax.set_ylabel("tier accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability, {_calibration_window()}-day window at {day}")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_sla_csat(conn, day: date):
    import matplotlib.pyplot as plt

    df = _query(
        conn,
        "select as_of_date, team_id, attainment_rate, csat_mean from marts.team_sla_csat_rolling"
        " where window_days = %s and as_of_date > %s and as_of_date <= %s order by as_of_date",
        (_rolling_window(), day - timedelta(days=REPORT_TREND_DAYS), day),
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for team_id, part in df.groupby("team_id"):
        left.plot(part["as_of_date"], part["attainment_rate"].astype(float), label=team_id)
        right.plot(part["as_of_date"], part["csat_mean"].astype(float), label=team_id)
    left.set_title(f"SLA attainment ({_rolling_window()}-day rolling)")
    right.set_title(f"CSAT mean ({_rolling_window()}-day rolling)")
    for ax in (left, right):
        _date_axis(ax)
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _team_colors(teams) -> dict:
    """A distinct colour per team from tab10, without its grey (the caps and the base line are grey)."""
    import matplotlib.pyplot as plt

    palette = [plt.get_cmap("tab10")(i) for i in range(10) if i != 7]
    return {team: palette[i % len(palette)] for i, team in enumerate(sorted(teams))}


def _scale_to_the_data(ax, values: list[float], base: float, floor: float, ceiling: float) -> None:
    """y limits around the weights and the base, not the caps; a cap off the scale is named at its edge."""
    low, high = min([*values, base]), max([*values, base])
    pad = max(0.08 * (high - low), 0.02 * base)
    bottom, top = low - pad, high + pad
    ax.set_ylim(bottom, top)
    if ceiling > top:
        ax.text(0.99, 0.98, f"ceiling {ceiling:g} (above)", transform=ax.transAxes, ha="right", va="top",
                fontsize=7, color="dimgrey")
    if floor < bottom:
        ax.text(0.99, 0.02, f"floor {floor:g} (below)", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7, color="dimgrey")


def plot_weights(conn, day: date):
    """Mean weight over tiers per team and strategy; the y axis fits the weights, the caps are grey."""
    import matplotlib.pyplot as plt

    strategies = [s for s in dbt_var("weight_strategies") if s != "static"]
    df = _query(
        conn,
        "select as_of_date, strategy, team_id, tier, weight from marts.routing_weights"
        " where as_of_date > %s and as_of_date <= %s and strategy <> 'static' order by as_of_date",
        (day - timedelta(days=REPORT_TREND_DAYS), day),
    )
    base = float(dbt_var("weights_base"))
    floor, ceiling = base * float(dbt_var("weights_floor_ratio")), base * float(dbt_var("weights_ceiling_ratio"))
    colors = _team_colors(df["team_id"].unique())
    fig, axes = plt.subplots(1, max(1, len(strategies)), figsize=(5.5 * max(1, len(strategies)), 4), squeeze=False)
    for ax, strategy in zip(axes[0], strategies or ["-"], strict=False):
        part = df[df["strategy"] == strategy]
        values = []
        # One line per team: its mean weight over tiers, so the trend of each team is readable.
        for team_id, team in part.groupby("team_id"):
            series = team.groupby("as_of_date")["weight"].mean().astype(float)
            ax.plot(series.index, series.values, label=team_id, color=colors[team_id], linewidth=1.8)
            values += list(series.values)
        ax.axhline(floor, color="grey", linestyle=":", linewidth=1, label="floor")
        ax.axhline(ceiling, color="grey", linestyle="--", linewidth=1, label="ceiling")
        base_line = ax.axhline(base, color="lightgrey", linewidth=0.8)
        _scale_to_the_data(ax, values, base, floor, ceiling)
        ax.set_title(f"strategy {strategy}: mean weight over tiers", fontsize=10)
        _date_axis(ax)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    labels = [{"floor": f"floor {floor:g} (cap)", "ceiling": f"ceiling {ceiling:g} (cap)"}.get(x, x) for x in labels]
    axes[0][-1].legend([*handles, base_line], [*labels, f"base weight {base:g}"], fontsize=7, loc="upper left",
                       bbox_to_anchor=(1.01, 1))
    return fig


def _no_ab_results(conn, day: date) -> str:
    """What to say for a date without A/B results: the newest date that has some, if any."""
    newest = conn.execute("select max(as_of_date) from marts.ab_results where as_of_date <= %s", (day,)).fetchone()[0]
    return f"no A/B results for {day}" + (f" (the newest are of {newest})" if newest else "")


def plot_ab_lifts(conn, day: date):
    """The relative lift of every variant and metric on `day` (that date only), with its 95 % interval:
    the confidence sequence while the experiment runs (valid under daily looking), the fixed-horizon
    CI once its window has ended (the final read-out), as the verdict reads them.

    Each row says which direction is better for its metric (dbt var ab_metric_directions, in the mart);
    a point is green when the whole interval lies on the better side, red when on the worse side.
    """
    import matplotlib.pyplot as plt

    df = _query(
        conn,
        "select experiment_id, metric, variant, metric_direction, lift_rel,"
        " case when analysis_phase = 'running' then lift_rel_seq_ci_low else lift_rel_ci_low end as lift_rel_ci_low,"
        " case when analysis_phase = 'running' then lift_rel_seq_ci_high else lift_rel_ci_high end as lift_rel_ci_high"
        " from marts.ab_results where as_of_date = %s and not is_control"
        " order by experiment_id, metric, variant",
        (day,),
    )
    df = df.dropna(subset=["lift_rel", "lift_rel_ci_low", "lift_rel_ci_high"])
    fig, ax = plt.subplots(figsize=(7, 0.6 * max(len(df), 3) + 1))
    if df.empty:
        _empty(ax, _no_ab_results(conn, day))
        return fig
    labels = [f"{r.experiment_id}: {r.metric} ({r.variant})" for r in df.itertuples()]
    lift = df["lift_rel"].astype(float).values
    ci_low, ci_high = df["lift_rel_ci_low"].astype(float).values, df["lift_rel_ci_high"].astype(float).values
    ax.errorbar(lift, range(len(df)), xerr=[lift - ci_low, ci_high - lift], fmt="o", color="grey", capsize=4)
    # Signed so that positive means better: lower-is-better metrics flip.
    sign = [1.0 if direction == "higher" else -1.0 for direction in df["metric_direction"]]
    colors = ["tab:green" if min(s * ci_low[i], s * ci_high[i]) > 0 else
              "tab:red" if max(s * ci_low[i], s * ci_high[i]) < 0 else "grey" for i, s in enumerate(sign)]
    ax.scatter(lift, range(len(df)), color=colors, zorder=3)
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks(range(len(df)), labels, fontsize=8)
    for i, direction in enumerate(df["metric_direction"]):
        ax.annotate(f"{direction} is better", xy=(1.02, i), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8, color="dimgrey")
    ax.set_xlabel("relative lift vs control (95 %: confidence sequence while running, CI when final);\n"
                  "green: better, red: worse, grey: not significant")
    ax.set_title(f"A/B lifts on {day}")
    return fig


# (section id, title, plot): the page shows them in this order.
SECTIONS = (
    ("tier-confusion", "Tier confusion", plot_confusion),
    ("reliability", "Reliability curve", plot_reliability),
    ("sla-csat", "SLA attainment and CSAT per team", plot_sla_csat),
    ("weights", "Routing weights per team, with floor and ceiling", plot_weights),
    ("ab-lifts", "A/B lifts with 95 % confidence intervals", plot_ab_lifts),
)


class NoDataForDay(LookupError):
    """The marts do not hold the report's day: a page of empty plots would say nothing."""


def report_path(day: date, out_dir: Path | None = None) -> Path:
    return (out_dir or settings().report_dir) / f"routerloop-report-{day}.html"


def write_report(day: date, out_dir: Path | None = None, url: str | None = None) -> Path:
    """Render the report for `day` (one self-contained HTML file, written atomically); return its path."""
    import matplotlib

    from routerloop.files import write_atomically

    matplotlib.use("Agg")
    parts = []
    with db.connect(url or db.database_url()) as conn:
        if not day_is_built(conn, day):
            first, last = conn.execute("select min(as_of_date), max(as_of_date) from marts.routing_weights").fetchone()
            held = f"they hold {first} to {last}" if first else "they hold no day yet"
            raise NoDataForDay(f"no data for {day}: the marts do not hold that day ({held}); no report written")
        for section_id, title, plot in SECTIONS:
            image = _png(plot(conn, day))
            parts.append(
                f'<section id="{section_id}"><h2>{html.escape(title)}</h2>'
                f'<img alt="{html.escape(title)}" src="data:image/png;base64,{image}"></section>'
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>routerloop report {day}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}img{max-width:100%}</style>"
        f"</head><body><h1>routerloop report for {day}</h1>{''.join(parts)}</body></html>"
    )
    path = report_path(day, out_dir)
    write_atomically(path, page.encode())
    return path
