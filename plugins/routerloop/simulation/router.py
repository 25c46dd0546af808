"""The simulated router: its routing policy (which team), its triage (which tier and action, how sure)
and the A/B experiment a ticket falls into."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from routerloop import contract
from routerloop.experiments import Experiment
from routerloop.simulation.clock import to_ms
from routerloop.simulation.parameters import SimulationParameters
from routerloop.simulation.parts import Shared, WorldPart
from routerloop.simulation.sampling import WeightedChoice


class RoutingPolicy(Protocol):
    """How the router spreads a day's tickets over the active teams.

    A ticket goes to a team with probability proportional to the team's weight; the weights may change
    from day to day. Every decision carries the version of the weights it was routed with.
    """

    def team_weights(self, day: date, teams: Sequence[str]) -> dict[str, float]:
        """A weight (> 0 in total) for each of `teams`, the teams active on `day`, in their order."""
        ...

    def weights_version(self, day: date) -> str:
        """The version of the weights in force on `day`."""
        ...


class TopicRouting:
    """Today's router: a ticket goes to the team that owns its topic.

    Topics arrive in the proportions of `team_route_shares` (teams not listed there get the mean share),
    so those shares are the team weights. The weights version names the previous day, as if a new
    version were exported every night.
    """

    def __init__(self, params: SimulationParameters, seed: int):
        self.seed = seed
        self.shares = params.team_route_shares
        self.mean_share = sum(self.shares.values()) / max(1, len(self.shares))

    def team_weights(self, day: date, teams: Sequence[str]) -> dict[str, float]:
        return {team: self.shares.get(team, self.mean_share) for team in teams}

    def weights_version(self, day: date) -> str:
        previous = day - timedelta(days=1)
        digest = hashlib.sha256(f"{self.seed}:weights:{previous.isoformat()}".encode()).hexdigest()
        return f"{previous:%Y%m%d}-{digest[:12]}"


@dataclass(frozen=True, slots=True)
class Judgement:
    """The router's reading of a ticket, beside the true action it may miss (tiers index contract.TIERS)."""

    rule_version: str
    reason_tags: tuple[str, ...]
    predicted_tier: int
    true_action: str
    predicted_action: str
    confidence: float | None


class Triage(WorldPart):
    """Tier and action predictions with the router's typical mistakes, and the confidence it states.

    A rule version has a base tier error; reason tags beside the topic tag multiply it (an ambiguous
    message is misread more often). Most tier mistakes land on a neighbouring tier.
    """

    def __init__(self, shared: Shared):
        super().__init__(shared)
        self.rules = WeightedChoice(self.p.rule_version_shares)
        self.actions = [WeightedChoice(self.p.action_by_tier[tier]) for tier in contract.TIERS]
        self.signal_tags = tuple(
            (tag, share, multiplier) for tag, (share, multiplier) in self.p.signal_tags.items()
        )

    def judge(self, true_tier: int, topic_tag: str) -> Judgement:
        # The true action is drawn here, between the two predictions: the order of draws from the one
        # random stream is what keeps a seed's output byte for byte.
        rng, p = self.rng, self.p
        tags = [topic_tag]
        rule = self.rules.pick(rng)
        error = p.rule_version_tier_error[rule]
        for tag, share, multiplier in self.signal_tags:
            if rng.random() < share:
                tags.append(tag)
                error *= multiplier
        predicted_tier = self._mistaken_tier(true_tier) if rng.random() < min(error, p.max_tier_error) else true_tier
        true_action = self.actions[true_tier].pick(rng)
        if predicted_tier == true_tier and rng.random() < p.action_kept_when_tier_right:
            predicted_action = true_action
        else:
            predicted_action = self.actions[predicted_tier].pick(rng)
        correct = predicted_tier == true_tier and predicted_action == true_action
        confidence = None
        if rng.random() >= p.confidence_missing_share:
            a, b = p.confidence_beta_correct if correct else p.confidence_beta_mistaken
            confidence = round(rng.betavariate(a, b), 3)
        return Judgement(rule, tuple(tags), predicted_tier, true_action, predicted_action, confidence)

    def _mistaken_tier(self, true_tier: int) -> int:
        rng, last = self.rng, len(contract.TIERS) - 1
        if rng.random() < self.p.adjacent_mistake_share:
            options = [t for t in (true_tier - 1, true_tier + 1) if 0 <= t <= last]
        else:
            options = [t for t in range(last + 1) if abs(t - true_tier) >= 2]
        return rng.choice(options)


class ExperimentSchedule:
    """The enabled A/B experiments; a ticket joins the first one running when it is routed."""

    def __init__(self, experiments: Sequence[Experiment]):
        self.windows = [(to_ms(e.starts_at), to_ms(e.ends_at), e) for e in experiments]

    def assign(self, at_ms: int, ticket_id: str) -> tuple[str | None, str | None]:
        """(experiment id, variant name), or (None, None) when no experiment runs at `at_ms`."""
        for starts_ms, ends_ms, experiment in self.windows:
            if starts_ms <= at_ms < ends_ms:
                return experiment.experiment_id, experiment.assign(ticket_id).name
        return None, None
