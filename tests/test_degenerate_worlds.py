"""Degenerate but valid data never crashes a model (issue 11 §3, and §2's unknown ids).

Each world is a handful of JSONL lines written here by hand, following the contract (not by the
generator: its data is not the world), taken through land -> build -> marts gate -> export. No step may
error; the figures that cannot be computed are nulls with a status, and the test asserts them.

What each world yields at the gates and the export (decided here, documented in README "Degenerate data"):
- a world with SLA evaluations or CSAT ratings on the day has routing weights for the whole roster grid
  (base weights where evidence is insufficient): every gate passes (the reference gaps gate may warn)
  and the export publishes;
- a world with neither (decisions only) has no weights day: every marts suite fails (the weights gate on
  the missing grid, the others on a day the marts do not hold) with a clear message and the export is
  refused (the router keeps its version); nothing crashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from routerloop import db

DAY = date(2026, 11, 3)  # inside the seed experiment's window (exp_weights_2026_11: 1 Nov - 31 Dec)
EXPERIMENT = "exp_weights_2026_11"
CONTROL, TREATMENT = "sla", "sla_csat"
POLICY = {"T1": ("sla_t1_4h", 240), "T2": ("sla_t2_8h", 480), "T3": ("sla_t3_24h", 1440), "T4": ("sla_t4_72h", 4320)}
ROSTER_TEAM = "team_billing"
ROSTER_AGENT = "ag_billing_01"


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@dataclass
class World:
    """Telemetry lines per stream; each line lands in the hour partition of its event time."""

    lines: dict[str, list[tuple[datetime, dict]]] = field(default_factory=dict)
    count: int = 0

    def _add(self, stream: str, moment: datetime, record: dict) -> None:
        self.lines.setdefault(stream, []).append((moment, record))

    def ticket(self, *, hour: int = 9, team: str = ROSTER_TEAM, agent: str | None = ROSTER_AGENT,
               tier: str = "T2", sla: str | None = "attained", resolve_minutes: float | None = 60,
               csat: int | None = None, outcome: bool | None = None, feedback: str | None = None,
               variant: str | None = None, experiment: str | None = EXPERIMENT, policy: str | None = None,
               day: date = DAY) -> str:
        """One routed ticket: its decision and, when asked, its SLA evaluation, CSAT rating, decision
        outcome and a feedback line (with a review item) expecting tier `feedback`."""
        self.count += 1
        n = self.count
        decision_id, ticket_id = f"rd_w{n:04d}", f"tk_w{n:04d}"
        created = _at(hour, 0, day)
        self._add("router_decisions", created, {
            "decisionId": decision_id, "createdAt": _ts(created), "channelId": "email",
            "conversationId": f"conv_{n}", "threadId": f"thr_{n}", "ticketId": ticket_id,
            "predictedTier": tier, "predictedAction": "handle", "confidence": 0.8, "reasonTags": ["billing"],
            "teamId": team, "agentId": agent, "ruleVersion": "v2.2",
            "experimentId": experiment if variant else None, "variant": variant, "latencyMs": 40,
        })
        if sla:
            sla_policy, target_minutes = POLICY[tier]
            resolved = created + timedelta(minutes=resolve_minutes) if resolve_minutes is not None else None
            evaluated = created + timedelta(minutes=max(resolve_minutes or 0, 1) + 1)
            self._add("sla_outcomes", evaluated, {
                "ticketId": ticket_id, "decisionId": decision_id, "teamId": team, "agentId": agent, "tier": tier,
                "slaPolicy": policy or sla_policy, "openedAt": _ts(created),
                "firstResponseAt": _ts(created + timedelta(minutes=1)),
                "resolvedAt": _ts(resolved) if resolved else None,
                "targetResolveBy": _ts(created + timedelta(minutes=target_minutes)),
                "outcome": sla, "evaluatedAt": _ts(evaluated),
            })
        if csat is not None:
            submitted = created + timedelta(minutes=(resolve_minutes or 0) + 5)
            self._add("csat_ratings", submitted, {
                "ratingId": f"cs_w{n:04d}", "ticketId": ticket_id, "teamId": team, "agentId": agent,
                "customerId": f"cust_{n}", "rating": csat, "submittedAt": _ts(submitted),
            })
        if outcome is not None:
            recorded = created + timedelta(minutes=30)
            self._add("decision_outcomes", recorded, {
                "outcomeId": f"oc_w{n:04d}", "decisionId": decision_id, "recordedAt": _ts(recorded),
                "outcomePositive": outcome, "outcomeType": "resolved" if outcome else "reopened",
                "source": "automated",
            })
        if feedback is not None:
            given = created + timedelta(minutes=2)
            self._add("router_feedback", given, {
                "feedbackId": f"rf_w{n:04d}", "createdAt": _ts(given), "decisionId": decision_id,
                "source": "explicit", "channelId": "email", "conversationId": f"conv_{n}", "threadId": f"thr_{n}",
                "expectedTier": feedback, "needsReview": True,
            })
            self._add("router_review_queue", given, {
                "reviewId": f"rv_w{n:04d}", "createdAt": _ts(given), "updatedAt": _ts(given),
                "linkedDecisionId": decision_id, "feedbackId": f"rf_w{n:04d}", "severity": "medium",
                "reason": "tier_mismatch", "status": "open",
            })
        return decision_id

    def write(self, root: Path) -> Path:
        for stream, lines in self.lines.items():
            by_hour: dict[datetime, list[dict]] = {}
            for moment, record in lines:
                by_hour.setdefault(moment.replace(minute=0, second=0, microsecond=0), []).append(record)
            for hour, records in by_hour.items():
                folder = root / stream / f"dt={hour:%Y-%m-%d}" / f"hr={hour:%H}"
                folder.mkdir(parents=True, exist_ok=True)
                text = "".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in records)
                (folder / "part-000.jsonl").write_text(text)
        return root


# --------------------------------------------------------------------------- the worlds


def one_ticket() -> World:
    w = World()
    w.ticket(sla="breach", resolve_minutes=600, csat=2, outcome=False, feedback="T1", variant=CONTROL)
    return w


def other_team_names() -> World:
    """Every team and agent is one the roster does not know (a desk whose telemetry nobody here wrote)."""
    w = World()
    for i in range(4):
        w.ticket(team=f"team_support_{i % 2}", agent=f"agent_{i}", csat=4, outcome=True, variant=CONTROL)
    return w


def empty_experiment_arm() -> World:
    """The experiment runs but every assigned ticket is in the control arm: the treatment has no traffic."""
    w = World()
    for i in range(5):
        w.ticket(hour=8 + i, sla="attained" if i % 2 else "breach", csat=3 + i % 3, outcome=bool(i % 2),
                 variant=CONTROL)
    return w


def no_csat_no_resolution() -> World:
    """No CSAT rating at all, and no ticket resolved yet (no resolution time: MTTR has no data)."""
    w = World()
    for i in range(4):
        w.ticket(hour=8 + i, sla=("warn", "breach")[i // 2], resolve_minutes=None, outcome=True,
                 variant=(CONTROL, TREATMENT)[i % 2])
    return w


def no_feedback() -> World:
    w = World()
    for i in range(4):
        w.ticket(hour=8 + i, csat=5 - i, outcome=bool(i % 2), variant=(CONTROL, TREATMENT)[i % 2])
    return w


def no_outcomes() -> World:
    """Neither decision outcomes nor SLA evaluations nor ratings: decisions and feedback only."""
    w = World()
    for i in range(4):
        w.ticket(hour=8 + i, sla=None, feedback="T3", variant=(CONTROL, TREATMENT)[i % 2])
    return w


def single_team() -> World:
    w = World()
    for i in range(6):
        w.ticket(hour=8 + i, tier=("T1", "T2", "T3")[i % 3], sla=("attained", "warn")[i % 2],
                 csat=4, outcome=True, feedback=("T1", None)[i % 2], variant=(CONTROL, TREATMENT)[i % 2])
    return w


def all_sla_met() -> World:
    w = World()
    for i in range(6):
        w.ticket(hour=8 + i, sla="attained", resolve_minutes=30 + i, csat=4, outcome=True,
                 variant=(CONTROL, TREATMENT)[i % 2])
    return w


def all_sla_breached() -> World:
    w = World()
    for i in range(6):
        w.ticket(hour=8 + i, tier="T1", sla="breach", resolve_minutes=300 + i, csat=1, outcome=False,
                 variant=(CONTROL, TREATMENT)[i % 2])
    return w


def zero_variance() -> World:
    """Every unit has the same value for every metric: equal resolution times and ratings."""
    w = World()
    for i in range(6):
        w.ticket(hour=8 + i, sla="attained", resolve_minutes=45, csat=5, outcome=True,
                 variant=(CONTROL, TREATMENT)[i % 2])
    return w


def n_one_per_arm() -> World:
    w = World()
    w.ticket(hour=9, sla="attained", resolve_minutes=30, csat=5, outcome=True, variant=CONTROL)
    w.ticket(hour=10, sla="breach", resolve_minutes=700, csat=2, outcome=False, variant=TREATMENT)
    return w


def no_experiment_traffic() -> World:
    """The experiment is enabled for the day, but no decision carries it."""
    w = World()
    for i in range(3):
        w.ticket(hour=8 + i, csat=4, outcome=True, variant=None)
    return w


def unknown_ids_everywhere() -> World:
    """A new hire, an unknown SLA policy, an unknown experiment and an unknown variant beside roster data."""
    w = World()
    w.ticket(hour=8, csat=4, outcome=True, variant=CONTROL)
    w.ticket(hour=9, agent="ag_new_hire", csat=5, outcome=True, variant=TREATMENT)
    w.ticket(hour=10, policy="sla_custom_2h", variant="sla_fancy")
    w.ticket(hour=11, variant="v9", experiment="exp_not_configured")
    return w


@dataclass(frozen=True)
class Expect:
    gates_pass: bool = True  # every marts gate passes (warnings allowed); False: the weights gate fails
    gap_ids: tuple[str, ...] = ()  # kind:id rows of marts.reference_gaps
    treatment_lift_null: bool | None = None  # the primary metric's lift of the treatment arm is null
    treatment_p_null: bool | None = None  # the primary metric's p-value of the treatment arm is null
    team_rows_not_in_roster: int = 0  # team mart rows of the day (7-day window) with in_roster false


WORLDS = {
    "one_ticket": (one_ticket, Expect(treatment_lift_null=True, treatment_p_null=True)),
    "other_team_names": (other_team_names, Expect(
        gap_ids=("agent:agent_0", "agent:agent_1", "agent:agent_2", "agent:agent_3",
                 "team:team_support_0", "team:team_support_1"),
        treatment_lift_null=True, treatment_p_null=True, team_rows_not_in_roster=2)),
    "empty_experiment_arm": (empty_experiment_arm, Expect(treatment_lift_null=True, treatment_p_null=True)),
    "no_csat_no_resolution": (no_csat_no_resolution, Expect(treatment_lift_null=False)),
    "no_feedback": (no_feedback, Expect(treatment_lift_null=False)),
    "no_outcomes": (no_outcomes, Expect(gates_pass=False, treatment_lift_null=True, treatment_p_null=True)),
    "single_team": (single_team, Expect(treatment_lift_null=False)),
    "all_sla_met": (all_sla_met, Expect(treatment_lift_null=False, treatment_p_null=True)),
    "all_sla_breached": (all_sla_breached, Expect(treatment_lift_null=False, treatment_p_null=True)),
    "zero_variance": (zero_variance, Expect(treatment_lift_null=False, treatment_p_null=True)),
    "n_one_per_arm": (n_one_per_arm, Expect(treatment_lift_null=False)),
    "no_experiment_traffic": (no_experiment_traffic, Expect(treatment_lift_null=True, treatment_p_null=True)),
    "unknown_ids_everywhere": (unknown_ids_everywhere, Expect(
        gap_ids=("agent:ag_new_hire", "experiment:exp_not_configured", "sla_policy:sla_custom_2h",
                 f"variant:{EXPERIMENT}/sla_fancy"),
        treatment_lift_null=False)),
}


@pytest.mark.parametrize("name", list(WORLDS))
def test_degenerate_world_runs_through(name, own_database, tmp_path):
    from routerloop import export, gates
    from routerloop.build import build
    from routerloop.landing import land

    make, expect = WORLDS[name]
    landing = make().write(tmp_path / "landing")
    url = own_database

    landed = land(landing=landing, progress=False, url=url)
    assert landed.ok, landed.error
    with db.connect(url) as conn:
        quarantined = conn.execute("select count(*) from raw.quarantine").fetchone()[0]
    assert quarantined == 0, "the hand-made world must follow the contract"

    built = build(url=url, quiet=True, unit_tests=False)
    assert built["ok"], "\n".join(f"{n['node']}: {n['message']}" for n in built["failed"])

    results = gates.gate_marts(DAY, url=url, raise_on_failure=False)
    by_suite = {r.suite: r for r in results}
    gaps_gate = by_suite[gates.REFERENCE_GAPS_SUITE]
    assert bool(gaps_gate.warnings) == bool(expect.gap_ids)
    # unknown ids only warn; on a day the marts do not hold every suite fails (nothing to vouch for)
    assert gaps_gate.success == expect.gates_pass

    with db.connect(url) as conn:
        gaps = {f"{k}:{i}" for k, i in conn.execute("select kind, id from marts.reference_gaps")}
        assert gaps == set(expect.gap_ids)
        not_in_roster = conn.execute(
            "select count(*) from marts.team_sla_csat_rolling"
            " where as_of_date = %s and window_days = 7 and not in_roster", (DAY,)
        ).fetchone()[0]
        assert not_in_roster == expect.team_rows_not_in_roster
        # A/B: every arm of the running experiment has its rows; what cannot be computed is null, and
        # a sample below the minimum says so.
        arms = conn.execute(
            "select variant, n, lift_abs, p_value, sample_status, verdict, p_value_seq, decided_by from marts.ab_results"
            " where as_of_date = %s and experiment_id = %s and metric_role = 'primary'",
            (DAY, EXPERIMENT),
        ).fetchall()
        assert {a[0] for a in arms} == {CONTROL, TREATMENT}
        assert all(a[4] == "insufficient" for a in arms)  # tiny worlds: below min_sample
        treatment = next(a for a in arms if a[0] == TREATMENT)
        assert treatment[5] in ("inconclusive", "invalid_srm")
        assert treatment[7] in ("min_sample", "sample_ratio_mismatch")  # the verdict row says which rule
        if expect.treatment_lift_null is not None:
            assert (treatment[2] is None) == expect.treatment_lift_null, treatment
        if expect.treatment_p_null is not None:
            assert (treatment[3] is None) == expect.treatment_p_null, treatment
            if expect.treatment_p_null:  # no variance: no sequential test either
                assert treatment[6] is None, treatment
        nan_rows = conn.execute(
            "select count(*) from marts.ab_results where 'NaN'::float8 in (mean, sd, se, lift_abs, lift_rel,"
            " p_value, test_statistic, mde, srm_p_value, p_value_seq, lift_abs_seq_ci_low, lift_abs_seq_ci_high,"
            " lift_rel_seq_ci_low, lift_rel_seq_ci_high)"
        ).fetchone()[0]
        assert nan_rows == 0

    weights_gate = by_suite["marts_routing_weights"]
    if expect.gates_pass:
        assert all(r.success for r in results), [r.to_dict() for r in results if not r.success]
        published = export.publish(DAY, url=url)
        with db.connect(url) as conn:
            grid = conn.execute(
                "select count(*) from intermediate.int_routing_weight_keys_enumerated").fetchone()[0]
            weights = conn.execute(
                "select count(*), count(*) filter (where weight = previous_weight or previous_weight is null)"
                " from router.routing_weights"
            ).fetchone()
        assert published.row_count == grid == weights[0]  # the roster's whole grid
        unknown_teams = sorted(g.split(":", 1)[1] for g in expect.gap_ids if g.startswith("team:"))
        assert list(published.teams_without_weight) == unknown_teams
    else:
        # No SLA evaluation and no rating: no weights day. The weights gate says so; the export refuses.
        assert not weights_gate.success
        assert "expect_column_values_to_be_null" in {f.expectation for f in weights_gate.failed_expectations}
        with pytest.raises(export.ExportRefused, match="failed"):
            export.publish(DAY, url=url)
