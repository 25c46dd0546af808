"""The routing-quality marts, proven against an independent recomputation in pandas and scikit-learn.

Every mart is recomputed straight from the generated JSONL files (never from the warehouse): the 3-rule
feedback link, the latest label per decision, the confusion matrices, scikit-learn's
precision_recall_fscore_support / cohen_kappa_score (with and without quadratic weights) per window, the
calibration bins (edges in decimal arithmetic), the feedback operations and the training samples.
Counts must be equal and rates agree within 1e-9. A second test lands a late file that moves feedback
links and labels into an already-built history and checks that the next incremental build equals a full
refresh.
"""

from __future__ import annotations

import bisect
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support
from test_marts_sla_ops import (
    FAILED,
    LATE_START,
    assert_frames_match,
    dates_between,
    iso,
    land_hours,
    mart,
    read_records,
    read_stream,
    utc,
    utc_moment,
)

from routerloop import db
from routerloop.build import run_dbt
from routerloop.config import dbt_var

pytestmark = pytest.mark.slow

TIERS = ["T1", "T2", "T3", "T4"]  # T1 most severe; a tier's rank is its number
QUALITY_MARTS = {
    "tier_confusion_daily": ["decision_date", "channel_id", "rule_version", "expected_tier", "predicted_tier"],
    "action_confusion_daily": ["decision_date", "channel_id", "rule_version", "expected_action", "predicted_action"],
    "reason_tag_confusion": ["as_of_date", "window_days", "reason_tag", "expected_tier", "predicted_tier"],
    "classification_metrics": ["as_of_date", "window_days", "label_kind", "class"],
    "confidence_calibration": ["as_of_date", "window_days", "rule_version", "bin"],
    "calibration_summary": ["as_of_date", "window_days", "rule_version"],
    "feedback_operations_daily": ["feedback_date", "channel_id", "source"],
    "training_samples": ["decision_id"],
}
# The marts with their parents, built with cautious indirect selection.
QUALITY_SELECT = [f"+{name}" for name in QUALITY_MARTS]


def rank(tier: str) -> int:
    return int(tier[1:])


def nullable(value):
    """NaN / None -> None, numpy scalars -> Python scalars."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------- reference: links and labels


def decisions_frame(landing: Path) -> pd.DataFrame:
    decisions = read_stream(landing, "router_decisions").drop_duplicates("decisionId", keep="first").copy()
    decisions["created_at"] = utc(decisions["createdAt"])
    decisions["decision_date"] = decisions["created_at"].dt.date
    decisions["confidence"] = pd.to_numeric(decisions["confidence"], errors="coerce").astype(float)
    decisions.index = pd.Index(decisions["decisionId"].to_numpy())
    return decisions


def feedback_frame(landing: Path) -> pd.DataFrame:
    feedback = read_stream(landing, "router_feedback").drop_duplicates("feedbackId", keep="first").copy()
    feedback["created_at"] = utc(feedback["createdAt"])
    feedback["feedback_date"] = feedback["created_at"].dt.date
    return feedback


def link_feedback(feedback: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The 3-rule link, row by row: decisionId, else linkedDecisionId (if the decision exists), else the
    nearest decision at or before the feedback in the same channel, conversation and thread."""
    known = set(decisions["decisionId"])
    threads: dict[tuple, list] = {}
    ordered = decisions.dropna(subset=["conversationId", "threadId"]).sort_values(["created_at", "decisionId"])
    for row in ordered.itertuples(index=False):
        threads.setdefault((row.channelId, row.conversationId, row.threadId), []).append(
            (row.created_at, row.decisionId)
        )
    rules, linked = [], []
    for row in feedback.itertuples(index=False):
        if isinstance(row.decisionId, str) and row.decisionId in known:
            rules.append("decision_id")
            linked.append(row.decisionId)
        elif isinstance(row.linkedDecisionId, str) and row.linkedDecisionId in known:
            rules.append("linked_decision_id")
            linked.append(row.linkedDecisionId)
        else:
            candidates = threads.get((row.channelId, row.conversationId, row.threadId), [])
            times = [created for created, _ in candidates]
            position = bisect.bisect_right(times, row.created_at) - 1  # the last of equal times: greatest id
            if position >= 0:
                rules.append("nearest_in_thread")
                linked.append(candidates[position][1])
            else:
                rules.append(None)
                linked.append(None)
    out = feedback.copy()
    out["link_rule"] = rules
    out["linked_decision"] = linked
    return out


def labelled_decisions(landing: Path) -> pd.DataFrame:
    """Every decision some feedback links to, with its latest expected tier / action (ties: greatest id)."""
    decisions = decisions_frame(landing)
    links = link_feedback(feedback_frame(landing), decisions).dropna(subset=["linked_decision"])
    links = links.sort_values(["created_at", "feedbackId"])
    rows = []
    for decision_id, own in links.groupby("linked_decision"):
        tiers, actions = own.dropna(subset=["expectedTier"]), own.dropna(subset=["expectedAction"])
        rows.append(
            {
                "decision_id": decision_id,
                "linked_feedback": len(own),
                "expected_tier": tiers["expectedTier"].iloc[-1] if len(tiers) else None,
                "expected_tier_feedback_id": tiers["feedbackId"].iloc[-1] if len(tiers) else None,
                "expected_action": actions["expectedAction"].iloc[-1] if len(actions) else None,
                "expected_action_feedback_id": actions["feedbackId"].iloc[-1] if len(actions) else None,
            }
        )
    labels = pd.DataFrame(rows).set_index("decision_id")
    return decisions.join(labels, how="inner")


# --------------------------------------------------------------------------- reference: marts


def expected_confusion_daily(labelled: pd.DataFrame, kind: str) -> pd.DataFrame:
    expected, predicted = f"expected_{kind}", f"predicted_{kind}"
    part = labelled.dropna(subset=[expected])
    frame = (
        part.groupby(["decision_date", "channelId", "ruleVersion", expected, f"predicted{kind.title()}"])
        .size()
        .reset_index(name="n")
    )
    frame.columns = ["decision_date", "channel_id", "rule_version", expected, predicted, "n"]
    frame["is_match"] = frame[expected] == frame[predicted]
    if kind == "tier":
        frame["tier_distance"] = frame[predicted].map(rank) - frame[expected].map(rank)
    return frame


def as_of_windows(labelled: pd.DataFrame):
    """(as_of_date, window_days, window_start_date) of the rolling marts."""
    dated = labelled[labelled["expected_tier"].notna() | labelled["expected_action"].notna()]["decision_date"]
    for as_of in dates_between(dated.min(), dated.max()):
        for window in dbt_var("quality_windows"):
            yield as_of, window, as_of - timedelta(days=window - 1)


def in_window(frame: pd.DataFrame, start: date, as_of: date) -> pd.DataFrame:
    return frame[(frame["decision_date"] >= start) & (frame["decision_date"] <= as_of)]


def expected_reason_tag_confusion(labelled: pd.DataFrame) -> pd.DataFrame:
    tiered = labelled.dropna(subset=["expected_tier"])
    tags = tiered[["decision_date", "reasonTags", "expected_tier", "predictedTier"]].copy()
    tags["reasonTags"] = tags["reasonTags"].map(lambda values: sorted(set(values)))
    tags = tags.explode("reasonTags").dropna(subset=["reasonTags"])
    rows = []
    for as_of, window, start in as_of_windows(labelled):
        part = in_window(tags, start, as_of)
        for tag, own in part.groupby("reasonTags"):
            mismatches = int((own["expected_tier"] != own["predictedTier"]).sum())
            for (expected, predicted), cell in own.groupby(["expected_tier", "predictedTier"]):
                rows.append(
                    {
                        "as_of_date": as_of,
                        "window_days": window,
                        "window_start_date": start,
                        "reason_tag": tag,
                        "expected_tier": expected,
                        "predicted_tier": predicted,
                        "n": len(cell),
                        "is_match": expected == predicted,
                        "tag_decisions": len(own),
                        "tag_mismatches": mismatches,
                        "mismatch_rate": mismatches / len(own),
                    }
                )
    return pd.DataFrame(rows)


def classification_rows(y_true: list, y_pred: list, kind: str) -> list[dict]:
    """Per class, macro, weighted and overall rows of one window, from scikit-learn."""
    classes = sorted(set(y_true) | set(y_pred))
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    support, predicted, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=np.nan
    )
    n, correct = len(y_true), int(hits.sum())
    rows = [
        {
            "class": label,
            "support": int(support[i]),
            "predicted_count": int(predicted[i]),
            "true_positives": int(hits[i]),
            "precision": nullable(float(precision[i])),
            "recall": nullable(float(recall[i])),
            "f1": nullable(float(f1[i])),
        }
        for i, label in enumerate(classes)
    ]
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=np.nan)
        rows.append(
            {
                "class": average,
                "support": n,
                "predicted_count": n,
                "true_positives": correct,
                "precision": nullable(float(p)),
                "recall": nullable(float(r)),
                "f1": nullable(float(f)),
            }
        )
    overall = {
        "class": "overall",
        "support": n,
        "predicted_count": n,
        "true_positives": correct,
        "accuracy": correct / n,
        "cohen_kappa": nullable(float(cohen_kappa_score(y_true, y_pred))),
    }
    if kind == "tier":
        distance = np.array([rank(p) for p in y_pred]) - np.array([rank(t) for t in y_true])
        overall |= {
            "quadratic_weighted_kappa": nullable(
                float(cohen_kappa_score(y_true, y_pred, labels=TIERS, weights="quadratic"))
            ),
            "under_triage_rate": float((distance > 0).mean()),
            "over_triage_rate": float((distance < 0).mean()),
            "mean_abs_tier_distance": float(np.abs(distance).mean()),
        }
    rows.append(overall)
    return rows


def expected_classification_metrics(labelled: pd.DataFrame) -> pd.DataFrame:
    columns = ["precision", "recall", "f1", "accuracy", "cohen_kappa", "quadratic_weighted_kappa"]
    columns += ["under_triage_rate", "over_triage_rate", "mean_abs_tier_distance"]
    rows = []
    for as_of, window, start in as_of_windows(labelled):
        part = in_window(labelled, start, as_of)
        for kind in ("tier", "action"):
            own = part.dropna(subset=[f"expected_{kind}"])
            if own.empty:
                continue
            y_true, y_pred = list(own[f"expected_{kind}"]), list(own[f"predicted{kind.title()}"])
            for row in classification_rows(y_true, y_pred, kind):
                full = {column: None for column in columns} | row
                rows.append(
                    {"as_of_date": as_of, "window_days": window, "window_start_date": start, "label_kind": kind}
                    | full
                )
    return pd.DataFrame(rows)


def confidence_bin(confidence: float, bins: int) -> int:
    """1-based bin; edges in decimal arithmetic, the last bin closed."""
    return min(int(Decimal(repr(confidence)) * bins) + 1, bins)


def expected_calibration(labelled: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    bins = int(dbt_var("calibration_bins"))
    calibrated = labelled.dropna(subset=["expected_tier", "confidence"]).copy()
    calibrated["bin"] = calibrated["confidence"].map(lambda c: confidence_bin(c, bins))
    calibrated["match"] = calibrated["expected_tier"] == calibrated["predictedTier"]
    per_bin, summary = [], []
    for as_of, window, start in as_of_windows(labelled):
        part = in_window(calibrated, start, as_of)
        for rule_version, own in part.groupby("ruleVersion"):
            ece = 0.0
            for b in range(1, bins + 1):
                cell = own[own["bin"] == b]
                n = len(cell)
                mean_confidence = cell["confidence"].mean() if n else None
                accuracy = cell["match"].mean() if n else None
                if n:
                    ece += n / len(own) * abs(accuracy - mean_confidence)
                per_bin.append(
                    {
                        "as_of_date": as_of,
                        "window_days": window,
                        "window_start_date": start,
                        "rule_version": rule_version,
                        "bin": b,
                        "bin_lower": (b - 1) / bins,
                        "bin_upper": b / bins,
                        "n": n,
                        "tier_matches": int(cell["match"].sum()),
                        "mean_confidence": mean_confidence,
                        "tier_accuracy": accuracy,
                    }
                )
            summary.append(
                {
                    "as_of_date": as_of,
                    "window_days": window,
                    "window_start_date": start,
                    "rule_version": rule_version,
                    "n": len(own),
                    "mean_confidence": own["confidence"].mean(),
                    "tier_accuracy": own["match"].mean(),
                    "ece": ece,
                }
            )
    return pd.DataFrame(per_bin), pd.DataFrame(summary)


def expected_feedback_operations(landing: Path) -> pd.DataFrame:
    linked = link_feedback(feedback_frame(landing), decisions_frame(landing))
    linked["latency"] = pd.to_numeric(linked["latencyFromDecisionSec"], errors="coerce").astype(float)
    rows = []
    for (day, channel, source), own in linked.groupby(["feedback_date", "channelId", "source"]):
        n, rules = len(own), own["link_rule"].value_counts()
        latencies = own["latency"].dropna().to_numpy()
        p50, p90 = np.percentile(latencies, [50, 90], method="linear") if len(latencies) else (None, None)
        linked_count = int(own["link_rule"].notna().sum())
        review = int((own["needsReview"] == True).sum())  # noqa: E712  (a column of Python booleans)
        rows.append(
            {
                "feedback_date": day,
                "channel_id": channel,
                "source": source,
                "feedback": n,
                "linked": linked_count,
                "unlinked": n - linked_count,
                "linked_by_decision_id": int(rules.get("decision_id", 0)),
                "linked_by_linked_decision_id": int(rules.get("linked_decision_id", 0)),
                "linked_by_nearest_in_thread": int(rules.get("nearest_in_thread", 0)),
                "needs_review": review,
                "with_expected_tier": int(own["expectedTier"].notna().sum()),
                "with_expected_action": int(own["expectedAction"].notna().sum()),
                "with_latency": len(latencies),
                "linked_pct": 100 * linked_count / n,
                "needs_review_pct": 100 * review / n,
                "latency_p50_sec": p50,
                "latency_p90_sec": p90,
            }
        )
    return pd.DataFrame(rows)


def expected_training_samples(landing: Path, labelled: pd.DataFrame) -> pd.DataFrame:
    outcomes = read_stream(landing, "decision_outcomes").drop_duplicates("outcomeId", keep="first").copy()
    outcomes["recorded_at"] = utc(outcomes["recordedAt"])
    assert not outcomes.duplicated(["decisionId", "recorded_at"]).any(), "tied outcomes make 'latest' ambiguous"
    latest = outcomes.sort_values(["decisionId", "recorded_at"]).drop_duplicates("decisionId", keep="last")
    negative = latest[latest["outcomePositive"].map(lambda v: v is False)].set_index("decisionId")
    decisions = decisions_frame(landing)
    joined = decisions.join(negative[["outcomeId", "outcomeType", "outcomeValue", "recorded_at"]], how="inner")
    labels = labelled[
        ["expected_tier", "expected_tier_feedback_id", "expected_action", "expected_action_feedback_id", "linked_feedback"]
    ]
    joined = joined.join(labels, how="left")
    frame = pd.DataFrame(
        {
            "decision_id": joined["decisionId"],
            "created_at": joined["created_at"],
            "decision_date": joined["decision_date"],
            "channel_id": joined["channelId"],
            "conversation_id": joined["conversationId"],
            "thread_id": joined["threadId"],
            "input_message_id": joined["inputMessageId"],
            "ticket_id": joined["ticketId"],
            "team_id": joined["teamId"],
            "agent_id": joined["agentId"],
            "reason_tags": joined["reasonTags"],
            "rule_version": joined["ruleVersion"],
            "weights_version": joined["weightsVersion"],
            "experiment_id": joined["experimentId"],
            "variant": joined["variant"],
            "predicted_tier": joined["predictedTier"],
            "predicted_action": joined["predictedAction"],
            "confidence": joined["confidence"],
            "outcome_id": joined["outcomeId"],
            "outcome_type": joined["outcomeType"],
            "outcome_value": pd.to_numeric(joined["outcomeValue"], errors="coerce").astype(float),
            "outcome_recorded_at": joined["recorded_at"],
            "expected_tier": joined["expected_tier"],
            "expected_tier_feedback_id": joined["expected_tier_feedback_id"],
            "expected_action": joined["expected_action"],
            "expected_action_feedback_id": joined["expected_action_feedback_id"],
            "linked_feedback": joined["linked_feedback"].fillna(0).astype(int),
        }
    )
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- comparison


def quality_mart(url: str, name: str) -> pd.DataFrame:
    frame = mart(url, name, ", ".join(QUALITY_MARTS[name]))
    for column in ("created_at", "outcome_recorded_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def assert_mart_matches(url: str, name: str, expected: pd.DataFrame) -> None:
    actual = quality_mart(url, name)
    assert set(actual.columns) == set(expected.columns), "every column of the mart is recomputed"
    assert_frames_match(actual, expected, QUALITY_MARTS[name])


@pytest.fixture(scope="module")
def labelled(three_week_warehouse) -> pd.DataFrame:
    return labelled_decisions(three_week_warehouse)


# --------------------------------------------------------------------------- tests


def test_feedback_links_match_the_three_rules(three_week_warehouse, three_week_url):
    linked = link_feedback(feedback_frame(three_week_warehouse), decisions_frame(three_week_warehouse))
    # The data exercises every rule and unlinked feedback.
    assert set(linked["link_rule"].dropna()) == {"decision_id", "linked_decision_id", "nearest_in_thread"}
    assert linked["link_rule"].isna().any()
    with db.connect(three_week_url) as conn:
        rows = conn.execute(
            "select feedback_id, link_rule, decision_id from intermediate.int_feedback_linked_to_decisions"
        ).fetchall()
    actual = pd.DataFrame(rows, columns=["feedbackId", "link_rule", "linked_decision"])
    expected = linked[["feedbackId", "link_rule", "linked_decision"]]
    assert_frames_match(actual, expected, ["feedbackId"])


def test_confusion_daily_marts_match_independent_recomputation(three_week_url, labelled):
    for kind in ("tier", "action"):
        expected = expected_confusion_daily(labelled, kind)
        assert (~expected["is_match"]).any() and expected["is_match"].any()
        assert_mart_matches(three_week_url, f"{kind}_confusion_daily", expected)


def test_reason_tag_confusion_matches_independent_recomputation(three_week_url, labelled):
    expected = expected_reason_tag_confusion(labelled)
    assert expected["tag_mismatches"].sum() > 0
    assert_mart_matches(three_week_url, "reason_tag_confusion", expected)


def test_classification_metrics_match_scikit_learn(three_week_url, labelled):
    expected = expected_classification_metrics(labelled)
    overall = expected[expected["class"] == "overall"]
    assert overall["cohen_kappa"].notna().all() and overall["quadratic_weighted_kappa"].notna().any()
    assert (overall["accuracy"] < 1).all() and set(overall["label_kind"]) == {"tier", "action"}
    assert_mart_matches(three_week_url, "classification_metrics", expected)


def test_calibration_marts_match_independent_recomputation(three_week_url, labelled):
    per_bin, summary = expected_calibration(labelled)
    assert (per_bin["n"] > 0).any() and (per_bin["n"] == 0).any()
    assert_mart_matches(three_week_url, "confidence_calibration", per_bin)
    assert_mart_matches(three_week_url, "calibration_summary", summary)


def test_feedback_operations_match_independent_recomputation(three_week_warehouse, three_week_url):
    expected = expected_feedback_operations(three_week_warehouse)
    assert expected["unlinked"].sum() > 0 and expected["needs_review"].sum() > 0
    assert_mart_matches(three_week_url, "feedback_operations_daily", expected)


def test_training_samples_match_independent_recomputation(three_week_warehouse, three_week_url, labelled):
    expected = expected_training_samples(three_week_warehouse, labelled)
    assert expected["expected_tier"].notna().any() and expected["expected_tier"].isna().any()
    assert_mart_matches(three_week_url, "training_samples", expected)


# --------------------------------------------------------------------------- late data


def build_quality(url: str, full_refresh: bool = False, start: datetime | None = None, end=None) -> None:
    args = ["build", "--select", *QUALITY_SELECT]
    args += ["--indirect-selection", "cautious", *(["--full-refresh"] if full_refresh else [])]
    result = run_dbt(args, url=url, quiet=True, start=start, end=end)
    failed = [f"{r.node.unique_id}: {r.message}" for r in result.result.results if str(r.status) in FAILED]
    assert result.success and not failed, "\n".join(failed)


def write_late_links(landing: Path, url: str, day: date, hour: int, first_day: date) -> dict[str, int]:
    """One extra file per stream in the already-landed partition dt=day/hr=hour.

    - decisions in the threads of feedback linked by rule 3 after `first_day + 1` (inside the next run's
      lookback), created just before the feedback, so the link moves to them (away from the one it had);
    - feedback created in that hour naming decisions of `first_day` (older than the next run's lookback)
      by decisionId, with labels that disagree with the router;
    - negative outcomes for other decisions of `first_day`.
    """
    at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    with db.connect(url) as conn:
        moved = conn.execute(
            "select feedback_id, created_at, channel_id, conversation_id, thread_id, decision_id"
            " from intermediate.int_feedback_linked_to_decisions"
            " where link_rule = 'nearest_in_thread' and expected_tier is not null and feedback_date > %s"
            " order by feedback_id limit 25",
            (first_day + timedelta(days=1),),
        ).fetchall()
    records = {r["decisionId"]: r for r in read_records(landing, "router_decisions")}
    old = [r for r in records.values() if utc_moment(r["createdAt"]).date() == first_day]
    late: dict[str, list[dict]] = {"router_decisions": [], "router_feedback": [], "decision_outcomes": []}
    for feedback_id, created_at, channel, conversation, thread, decision_id in moved:
        template = records[decision_id]
        late["router_decisions"].append(
            {
                **template,
                "decisionId": f"rd_late_{feedback_id[3:]}",
                "createdAt": iso(created_at - timedelta(milliseconds=1)),
                "channelId": channel,
                "conversationId": conversation,
                "threadId": thread,
                "predictedTier": "T4",
                "ticketId": None,
                "experimentId": None,
                "variant": None,
            }
        )
    for i, record in enumerate(old[:40]):
        late["router_feedback"].append(
            {
                "feedbackId": f"rf_late_{i:04d}",
                "createdAt": iso(at + timedelta(minutes=i)),
                "decisionId": record["decisionId"],
                "linkedDecisionId": None,
                "source": "explicit",
                "channelId": record["channelId"],
                "conversationId": record["conversationId"],
                "threadId": record["threadId"],
                "expectedTier": "T1" if record["predictedTier"] != "T1" else "T4",
                "expectedAction": "escalate" if record["predictedAction"] != "escalate" else "defer",
                "needsReview": True,
            }
        )
    for record in old[40:100]:
        late["decision_outcomes"].append(
            {
                "outcomeId": f"late_{record['decisionId']}",
                "decisionId": record["decisionId"],
                "recordedAt": iso(at + timedelta(minutes=45)),
                "outcomePositive": False,
                "outcomeType": "error",
                "source": "manual",
            }
        )
    for stream, rows in late.items():
        assert rows, f"no {stream} records for the late partition"
        folder = landing / stream / f"dt={day.isoformat()}" / f"hr={hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "late-delivery.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
    return {stream: len(rows) for stream, rows in late.items()}


def quality_snapshot(url: str) -> dict[str, pd.DataFrame]:
    return {name: quality_mart(url, name) for name in QUALITY_MARTS}


def test_late_links_then_incremental_build_equals_full_refresh(tmp_path, own_database):
    from routerloop.simulation import generate

    landing = tmp_path / "landing"
    generate(out=landing, start=LATE_START, hours=96, seed=7, decisions_per_hour=40, bad_rate=0.0)
    hour = timedelta(hours=1)
    land_hours(landing, LATE_START, LATE_START + 60 * hour)
    build_quality(own_database, full_refresh=True)
    for begin in (LATE_START + 60 * hour, LATE_START + 72 * hour):
        land_hours(landing, begin, begin + 12 * hour)
        build_quality(own_database, start=begin, end=begin + 12 * hour)
    before = quality_snapshot(own_database)

    # A late file for hour 10 of day 3 (already landed and built): moved links, and labels and outcomes
    # for day-0 decisions, which lie before the next run's lookback window.
    late_day, first_day = (LATE_START + 72 * hour).date(), LATE_START.date()
    written = write_late_links(landing, own_database, late_day, 10, first_day)
    next_hour = LATE_START + 84 * hour
    land_hours(landing, LATE_START + 82 * hour, LATE_START + 83 * hour)
    land_hours(landing, next_hour, next_hour + hour)
    build_quality(own_database, start=next_hour, end=next_hour + hour)
    incremental = quality_snapshot(own_database)
    with db.connect(own_database) as conn:
        relinked = conn.execute(
            "select count(*) from intermediate.int_feedback_linked_to_decisions where decision_id like 'rd_late_%'"
        ).fetchone()[0]
    assert relinked >= written["router_decisions"]

    # The late data reached day 0 (before the lookback): its tier confusion and training samples moved.
    def day_zero(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame[frame[column] == first_day].reset_index(drop=True)

    tier_before = day_zero(before["tier_confusion_daily"], "decision_date")
    tier_after = day_zero(incremental["tier_confusion_daily"], "decision_date")
    assert tier_after["n"].sum() > tier_before["n"].sum()
    samples_before = day_zero(before["training_samples"], "decision_date")
    samples_after = day_zero(incremental["training_samples"], "decision_date")
    assert len(samples_after) > len(samples_before)

    build_quality(own_database, full_refresh=True, start=next_hour, end=next_hour + hour)  # same vars
    full = quality_snapshot(own_database)
    for name, keys in QUALITY_MARTS.items():
        assert_frames_match(incremental[name], full[name], keys)
