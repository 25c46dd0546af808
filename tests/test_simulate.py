"""Short closed-loop simulations (issue 13 §1): few days at a small volume, through the real pipeline.

What is asserted, honestly (README "Closed-loop simulation" has the 14-day figures at the demo volume):
- default world, 4 days: every day lands, passes its gates and is published; every decision carries a
  routingProbability in (0, 1]; on the last day, in every tier, the team with the shortest expected
  resolution has a higher weight than the slowest one; the loop's breach rate and MTTR p50 are lower
  than static's on the same tickets (direction only: 4 days cannot reach p < 0.01, the weights move
  at most one step cap a day from day 3 on);
- no-signal world (all teams alike): every weight stays within the deadband of base. This FAILS with
  today's policy and is marked xfail(strict=True) as an open defect (README);
- shift world (team_security's skill drops on day 2 here): within 3 days its weight falls in every tier;
- every world: no step exceeds the step cap, and every weight lies within floor and ceiling.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from routerloop.loop import simulate
from routerloop.loop.run import limits
from routerloop.loop.worlds import SHIFT_SKILL, SHIFT_TEAM, WORLDS
from routerloop.simulation.parameters import PARAMETERS

PER_HOUR = 40
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def sim_env(database_url, tmp_path, monkeypatch):
    """dbt's artifacts and the reports in the test's folder; the lanes' databases on the session's server."""
    from routerloop.config import reload_settings

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt-logs"))
    monkeypatch.setenv("ROUTERLOOP_REPORT_DIR", str(tmp_path / "reports"))
    reload_settings()
    yield tmp_path
    monkeypatch.undo()
    reload_settings()


def _steps_within_cap(paths: list[dict]) -> None:
    lim = limits()
    for row in paths:
        assert lim["floor"] - 1e-9 <= row["weight"] <= lim["ceiling"] + 1e-9, row
        if row["previous_weight"] is not None:
            assert abs(row["weight"] / row["previous_weight"] - 1.0) <= lim["step_cap"] + 1e-9, row


def _expected_speed(team: str, tier: int) -> float:
    """Lower is faster: the generator's median resolution factor of a team at a tier."""
    skill = PARAMETERS.team_skill.get(team, PARAMETERS.default_team_skill)[tier]
    load = PARAMETERS.team_load.get(team, PARAMETERS.default_team_load)
    return math.exp(-PARAMETERS.skill_effect * (skill - 0.5)) * load


def _last_day(paths: list[dict]) -> dict:
    last = max(row["day"] for row in paths)
    return {(row["team_id"], row["tier"]): row["weight"] for row in paths if row["day"] == last}


def test_default_world_loop_beats_static_in_direction(sim_env: Path):
    result = simulate(days=4, strategy="sla_csat", seed=5, world="default", decisions_per_hour=PER_HOUR,
                      out=sim_env / "default", progress=False)
    for lane in result["run"]["lanes"].values():
        assert [d["failed_gates"] for d in lane["days"]] == [[]] * 4
        assert all(d["landed_ok"] and d["published"] for d in lane["days"])
    decisions = sorted((sim_env / "default" / "sla_csat" / "landing" / "router_decisions").rglob("*.jsonl"))
    probabilities = [json.loads(line)["routingProbability"] for f in decisions for line in f.read_text().splitlines()]
    assert probabilities and all(0.0 < p <= 1.0 for p in probabilities)

    paths = result["weight_paths"]["sla_csat"]
    _steps_within_cap(paths)
    _steps_within_cap(result["weight_paths"]["static"])
    weights = _last_day(paths)
    teams = sorted({team for team, _ in weights})
    for index, tier in enumerate(("T1", "T2", "T3", "T4")):
        fastest = min(teams, key=lambda t: _expected_speed(t, index))
        slowest = max(teams, key=lambda t: _expected_speed(t, index))
        assert weights[(fastest, tier)] > weights[(slowest, tier)], (tier, fastest, slowest, weights)

    against = result["comparisons"]["sla_csat"]["overall"]
    assert against["breach_rate"]["diff"] < 0.0, against["breach_rate"]
    assert against["mttr_p50"]["diff"] < 0.0, against["mttr_p50"]
    assert Path(result["page"]).read_text().count("data:image/png") >= 3


@pytest.mark.xfail(strict=True, reason="open defect (README, Closed-loop simulation): with all teams alike, sampling"
                   " noise moves sla_csat weights 2-5 % off base in a few days (e.g. 0.949, 1.038 on day 2);"
                   " the deadband is relative to the previous weight, not a significance test")
def test_no_signal_world_keeps_weights_within_the_deadband(sim_env: Path):
    result = simulate(days=4, strategy="sla_csat", seed=5, world="no_signal", decisions_per_hour=PER_HOUR,
                      out=sim_env / "no_signal", progress=False, with_static=False)
    paths = result["weight_paths"]["sla_csat"]
    _steps_within_cap(paths)
    lim = limits()
    moved = [row for row in paths if abs(row["weight"] / lim["base"] - 1.0) > lim["deadband"]]
    assert not moved, moved[:5]


def test_shift_world_weights_follow_within_three_days(sim_env: Path):
    world = replace(WORLDS["shift"], name="shift_day2", skill_shifts={2: {SHIFT_TEAM: SHIFT_SKILL}})
    result = simulate(days=5, strategy="sla_csat", seed=5, world=world, decisions_per_hour=PER_HOUR,
                      out=sim_env / "shift", progress=False, with_static=False)
    paths = result["weight_paths"]["sla_csat"]
    _steps_within_cap(paths)
    by_day = {(row["day"], row["tier"]): row["weight"] for row in paths if row["team_id"] == SHIFT_TEAM}
    for tier in ("T1", "T2", "T3", "T4"):
        assert by_day[(5, tier)] < by_day[(2, tier)], (tier, by_day)


class _Collected:
    """An outbox that keeps every record."""

    def __init__(self):
        self.records: list[tuple[int, dict]] = []

    def emit(self, stream: int, at_ms: int, record: dict) -> None:
        self.records.append((stream, record))


def _one_day(weights_file: Path, strategy: str = "sla_csat"):
    from routerloop.loop.policy import WeightedRouting
    from routerloop.loop.world import LoopWorld
    from routerloop.simulation.clock import HOUR_MS, to_ms
    from routerloop.simulation.reference import load_reference
    from routerloop.simulation.streams import DECISIONS

    outbox = _Collected()
    world = LoopWorld(load_reference(), PARAMETERS, 5, outbox, WeightedRouting(strategy, weights_file))
    world.begin_day(1, {})
    for hour in range(3):
        world.run_hour(to_ms(START) + hour * HOUR_MS, 50)
    return world, [r for s, r in outbox.records if s == DECISIONS]


def test_the_router_picks_in_proportion_to_the_weights_on_common_random_numbers(tmp_path):
    """Pure Python: the pick's logged probability is the weight's share of its tier, and two routers
    on one seed meet the same decisions (ids, tiers, times) and differ only in the teams picked."""
    weights = tmp_path / "latest.json"
    rows = [{"strategy": "sla_csat", "team_id": "team_billing", "tier": tier, "weight": 3.0, "previous_weight": 1.0}
            for tier in ("T1", "T2", "T3", "T4")]
    weights.write_text(json.dumps({"manifest": {"weights_version": "v-test"}, "weights": rows}))
    from routerloop.simulation.clock import to_ms

    _, base = _one_day(tmp_path / "none.json")
    world, weighted = _one_day(weights)
    teams = len(world.calendar.day_of(to_ms(START)).teams.items)
    assert [(r["decisionId"], r["createdAt"], r["predictedTier"]) for r in base] == [
        (r["decisionId"], r["createdAt"], r["predictedTier"]) for r in weighted]
    assert {r["routingProbability"] for r in base} == {round(1 / teams, 6)}
    for r in weighted:
        expected = 3.0 / (teams + 2.0) if r["teamId"] == "team_billing" else 1.0 / (teams + 2.0)
        assert r["routingProbability"] == pytest.approx(expected, abs=1e-6)
        assert r["weightsVersion"] in (None, "v-test")
    billing = sum(r["teamId"] == "team_billing" for r in weighted) / len(weighted)
    assert billing > sum(r["teamId"] == "team_billing" for r in base) / len(base)
