"""The simulation's HTML page: the overall table, the daily figures, the differences against static with
their 95 % CIs, and each team's weight path per tier with its step caps, floor and ceiling."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = (("breach_rate", "breach rate"), ("mttr_p50", "MTTR p50 (min)"), ("mttr_p90", "MTTR p90 (min)"),
           ("csat_satisfied", "CSAT satisfied share"))


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def daily_plot(result: dict) -> str:
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2))
    for ax, (key, title) in zip(axes, METRICS, strict=True):
        for strategy, figs in result["figures"].items():
            days = [d for d, f in enumerate(figs["days"], 1) if f[key] is not None]
            ax.plot(days, [figs["days"][d - 1][key] for d in days], marker="o", label=strategy)
        ax.set_title(title)
        ax.set_xlabel("day")
    axes[0].legend()
    return _png(fig)


def difference_plot(result: dict) -> str:
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2))
    for ax, (key, title) in zip(axes, METRICS, strict=True):
        for strategy, cmp in result["comparisons"].items():
            days = [d for d, c in enumerate(cmp["days"], 1) if key in c and c[key]["diff"] is not None]
            diffs = [cmp["days"][d - 1][key]["diff"] for d in days]
            errors = [[diffs[i] - cmp["days"][d - 1][key]["ci"][0] for i, d in enumerate(days)],
                      [cmp["days"][d - 1][key]["ci"][1] - diffs[i] for i, d in enumerate(days)]]
            ax.errorbar(days, diffs, yerr=errors, marker="o", capsize=3, label=f"{strategy} - static")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"{title}: difference, 95 % CI")
        ax.set_xlabel("day")
    axes[0].legend()
    return _png(fig)


def weight_plot(strategy: str, paths: list[dict], limits: dict) -> str:
    """One panel per tier: each team's weight by as-of date, its step-cap band, the floor and ceiling."""
    tiers = sorted({p["tier"] for p in paths})
    fig, axes = plt.subplots(1, max(1, len(tiers)), figsize=(4.2 * max(1, len(tiers)), 3.4), sharey=True)
    axes = list(axes) if len(tiers) > 1 else [axes]
    cap = limits["step_cap"]
    for ax, tier in zip(axes, tiers, strict=True):
        for team in sorted({p["team_id"] for p in paths}):
            rows = [p for p in paths if p["tier"] == tier and p["team_id"] == team]
            days = [r["day"] for r in rows]
            line, = ax.plot(days, [r["weight"] for r in rows], marker=".", label=team.removeprefix("team_"))
            capped = [(r["day"], r["previous_weight"]) for r in rows if r["previous_weight"] is not None]
            if capped:
                ax.fill_between([d for d, _ in capped], [w * (1 - cap) for _, w in capped],
                                [w * (1 + cap) for _, w in capped], color=line.get_color(), alpha=0.12)
        ax.axhline(limits["floor"], color="black", linestyle="--", linewidth=0.8)
        ax.axhline(limits["ceiling"], color="black", linestyle="--", linewidth=0.8)
        ax.axhspan(limits["base"] * (1 - limits["deadband"]), limits["base"] * (1 + limits["deadband"]),
                   color="grey", alpha=0.2)
        ax.set_title(f"{strategy}: {tier}")
        ax.set_xlabel("as-of day")
    axes[0].set_ylabel("weight (band: previous x (1 +/- step cap))")
    axes[-1].legend(fontsize=7)
    return _png(fig)


def _cell(c: dict | None) -> str:
    if not c or c.get("diff") is None:
        return "<td>-</td>"
    return f"<td>{c['diff']:+.4g} [{c['ci'][0]:+.4g}, {c['ci'][1]:+.4g}], p = {c['p']:.3g}</td>"


def overall_table(result: dict) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in METRICS)
    rows = []
    for strategy, figs in result["figures"].items():
        o = figs["overall"]
        cells = "".join(f"<td>{o[k]:.4g}</td>" if o[k] is not None else "<td>-</td>" for k, _ in METRICS)
        rows.append(f"<tr><td>{html.escape(strategy)}</td><td>{o['tickets']}</td>{cells}</tr>")
    for strategy, cmp in result["comparisons"].items():
        cells = "".join(_cell(cmp["overall"].get(k)) for k, _ in METRICS)
        rows.append(f"<tr><td>{html.escape(strategy)} - static</td><td>{cmp['overall']['tickets']}</td>{cells}</tr>")
    return f"<table><tr><th>strategy</th><th>tickets</th>{head}</tr>{''.join(rows)}</table>"


def write_page(result: dict, path: Path) -> Path:
    weights = "".join(f"<h3>{html.escape(s)}</h3>{weight_plot(s, p, result['limits'])}"
                      for s, p in result["weight_paths"].items())
    body = (
        f"<h1>routerloop simulate: world {html.escape(result['world'])}, seed {result['seed']},"
        f" {result['days']} days x {result['decisions_per_hour']} decisions/hour</h1>"
        f"<h2>Overall</h2>{overall_table(result)}"
        f"<h2>Per day</h2>{daily_plot(result)}<h2>Against static (paired)</h2>{difference_plot(result)}"
        f"<h2>Weight paths</h2><p>Dashed: floor and ceiling; grey: the deadband around base; shaded: the"
        f" step cap around the previous day's weight.</p>{weights}"
        f"<h2>Run</h2><pre>{html.escape(json.dumps(result['run'], indent=2, default=str))}</pre>"
    )
    style = "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>routerloop simulate</title>"
                    f"<style>{style}</style></head><body>{body}</body></html>\n")
    return path
