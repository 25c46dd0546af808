"""The roster of the reference folder (routerloop.reference), as the simulation needs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from routerloop import contract
from routerloop.experiments import Experiment


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


def load_reference(directory: Path | None = None) -> Reference:
    """Teams, agents (one entry per membership period), SLA policies and enabled experiments of the
    reference folder (setting reference_dir), validated by routerloop.reference."""
    from routerloop.reference import read_roster

    roster = read_roster(directory)
    teams = tuple(Team(r["team_id"], ActiveRange(r["active_from"], r["active_to"])) for r in roster.teams)
    agents = tuple(
        Agent(r["agent_id"], r["team_id"], ActiveRange(r["active_from"], r["active_to"])) for r in roster.agents
    )
    policies = {}
    for r in roster.sla_policies:
        policies[r["tier"]] = SlaPolicy(
            r["sla_policy"], r["tier"], float(r["first_response_minutes"]), float(r["resolve_minutes"]),
            float(r["warn_at_share"]),
        )
    missing = [tier for tier in contract.TIERS if tier not in policies]
    if missing:
        raise ValueError(f"{roster.directory / 'sla_policies.csv'} has no policy for tier(s) {', '.join(missing)}")
    experiments = tuple(e for e in roster.experiments.values() if e.enabled)
    return Reference(teams, agents, policies, experiments)
