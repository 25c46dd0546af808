"""The reference data the project owns (dbt_project/seeds), as the simulation needs it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from routerloop import contract
from routerloop.config import settings
from routerloop.experiments import Experiment, load_experiments


@dataclass(frozen=True)
class ActiveRange:
    """The days something is active: from `first_day` to `last_day`, both inclusive; None is open."""

    first_day: date | None
    last_day: date | None

    def covers(self, day: date) -> bool:
        first, last = self.first_day, self.last_day
        return (first is None or first <= day) and (last is None or day <= last)


@dataclass(frozen=True)
class Team:
    team_id: str
    active: ActiveRange


@dataclass(frozen=True)
class Agent:
    agent_id: str
    team_id: str
    active: ActiveRange


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    tier: str
    first_response_minutes: float
    resolve_minutes: float
    warn_at_share: float


@dataclass(frozen=True)
class Reference:
    """Teams and agents in file order, an SLA policy per tier, the enabled experiments in file order."""

    teams: tuple[Team, ...]
    agents: tuple[Agent, ...]
    sla_policies: dict[str, SlaPolicy]  # by tier
    experiments: tuple[Experiment, ...]  # validated by routerloop.experiments


def load_reference(seeds_dir: Path | None = None) -> Reference:
    """Teams, agents, SLA policies and enabled experiments from the dbt seeds (experiments validated)."""
    seeds = seeds_dir or settings().dbt_project_dir / "seeds"
    teams = tuple(Team(r["team_id"], _active_range(r)) for r in _rows(seeds / "teams.csv"))
    agents = tuple(Agent(r["agent_id"], r["team_id"], _active_range(r)) for r in _rows(seeds / "agents.csv"))
    policies = {}
    for r in _rows(seeds / "sla_policies.csv"):
        policies[r["tier"]] = SlaPolicy(
            r["sla_policy"], r["tier"], float(r["first_response_minutes"]), float(r["resolve_minutes"]),
            float(r["warn_at_share"]),
        )
    missing = [tier for tier in contract.TIERS if tier not in policies]
    if missing:
        raise ValueError(f"{seeds / 'sla_policies.csv'} has no policy for tier(s) {', '.join(missing)}")
    experiments = tuple(e for e in load_experiments(seeds / "experiments.csv").values() if e.enabled)
    return Reference(teams, agents, policies, experiments)


def _active_range(row: dict) -> ActiveRange:
    # active_to is the last active day (inclusive); an empty cell means still active.
    return ActiveRange(_day(row["active_from"]), _day(row["active_to"]))


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text.strip() else None


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
