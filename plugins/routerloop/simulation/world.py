"""The world model: conversations arrive, the router decides, and the consequences are scheduled.

`World.run_hour` makes an hour's decisions in time order. Each `Decision` is written at once; what
follows from it (feedback and review items, the ticket's SLA evaluations and CSAT rating, the decision
outcome) is emitted with the time it happens at, for the outbox to hold until its hour. All randomness
of the world comes from one seeded stream, drawn in a fixed order: same seed, same bytes.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from routerloop import contract
from routerloop.simulation.clock import DAY_MS, EPOCH, HOUR_MS, iso_ms
from routerloop.simulation.feedback import FeedbackDesk
from routerloop.simulation.parameters import SimulationParameters
from routerloop.simulation.parts import Outbox, Shared, WorldPart
from routerloop.simulation.reference import Reference
from routerloop.simulation.router import ExperimentSchedule, Judgement, RoutingPolicy, TopicRouting, Triage
from routerloop.simulation.sampling import IdMinter, WeightedChoice
from routerloop.simulation.streams import DECISIONS
from routerloop.simulation.tickets import Outcomes, SupportDesk


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision and the truth behind it. Tiers are indexes into contract.TIERS."""

    decision_id: str
    at_ms: int
    channel: str
    conversation: str
    thread: str
    input_message_id: str
    outcome_message_id: str | None
    ticket_id: str | None  # None when the predicted action opens no ticket
    true_tier: int
    predicted_tier: int
    true_action: str
    predicted_action: str
    confidence: float | None
    reason_tags: tuple[str, ...]
    team: str
    agent: str | None  # the agent the router picked, if any
    rule_version: str
    experiment_id: str | None
    variant: str | None
    weights_version: str | None
    latency_ms: int
    customer: int  # the customer's number (texts.customer)
    routing_probability: float | None = None  # the chance the router gave `team` (weighted routing only)

    @property
    def correct(self) -> bool:
        return self.predicted_tier == self.true_tier and self.predicted_action == self.true_action

    def record(self) -> dict:
        """The decision's router_decisions record (`routingProbability` only when the router logged one)."""
        record = {
            "decisionId": self.decision_id,
            "createdAt": iso_ms(self.at_ms),
            "channelId": self.channel,
            "conversationId": self.conversation,
            "threadId": self.thread,
            "inputMessageId": self.input_message_id,
            "outcomeMessageId": self.outcome_message_id,
            "ticketId": self.ticket_id,
            "predictedTier": contract.TIERS[self.predicted_tier],
            "predictedAction": self.predicted_action,
            "confidence": self.confidence,
            "reasonTags": list(self.reason_tags),
            "teamId": self.team,
            "agentId": self.agent,
            "ruleVersion": self.rule_version,
            "experimentId": self.experiment_id,
            "variant": self.variant,
            "weightsVersion": self.weights_version,
            "latencyMs": self.latency_ms,
        }
        if self.routing_probability is not None:
            record["routingProbability"] = self.routing_probability
        return record


@dataclass(frozen=True)
class Day:
    """What holds for one UTC day: whom the router can route to, with what odds, under which version."""

    teams: WeightedChoice  # the active teams, weighted by the routing policy
    agents: Mapping[str, list[str]]  # active team -> its active agents, in reference order
    weights_version: str


class Calendar:
    """The `Day` of a moment, from the reference data's active ranges and the routing policy."""

    def __init__(self, reference: Reference, routing: RoutingPolicy):
        self.reference = reference
        self.routing = routing
        self._day_number: int | None = None
        self._day: Day | None = None

    def day_of(self, at_ms: int) -> Day:
        day_number = at_ms // DAY_MS
        if day_number != self._day_number:  # decisions come in time order: one day at a time
            self._day = self._make_day(EPOCH.date() + timedelta(days=day_number))
            self._day_number = day_number
        return self._day

    def _make_day(self, day: date) -> Day:
        teams = [team.team_id for team in self.reference.teams if team.active.covers(day)]
        if not teams:
            raise ValueError(f"no team in teams.csv is active on {day}")
        agents = {team: [] for team in teams}
        for agent in self.reference.agents:
            if agent.team_id in agents and agent.active.covers(day):
                agents[agent.team_id].append(agent.agent_id)
        weights = WeightedChoice(self.routing.team_weights(day, teams))
        return Day(weights, agents, self.routing.weights_version(day))


class Conversations(WorldPart):
    """Where a decision is made: a new thread, a new thread in a recent conversation, or a follow-up in
    a recent thread (which makes linking feedback to the nearest decision matter)."""

    def __init__(self, shared: Shared):
        super().__init__(shared)
        self.channels = WeightedChoice(self.p.channel_shares)
        self.recent: deque[tuple[str, str, str]] = deque(maxlen=self.p.recent_threads_kept)

    def thread_at(self, at_ms: int) -> tuple[str, str, str]:
        """(channel, conversation, thread) of a decision made at `at_ms`."""
        rng, p, recent = self.rng, self.p, self.recent
        roll = rng.random()
        if recent and roll < p.follow_up_share:
            return recent[rng.randrange(len(recent))]
        if recent and roll < p.follow_up_share + p.same_conversation_share:
            channel, conversation, _ = recent[rng.randrange(len(recent))]
        else:
            channel = self.channels.pick(rng)
            conversation = self.ids.next("C0" if channel == "slack" else "cv_")
        if channel == "slack":  # Slack threads are named by their first message's timestamp
            thread = f"{at_ms // 1000}.{(at_ms % 1000) * 1000 + rng.randrange(1000):06d}"
        else:
            thread = self.ids.next("th_")
        found = (channel, conversation, thread)
        recent.append(found)
        return found


class World:
    """Steps the simulation an hour at a time; `routing` decides which team a ticket goes to."""

    def __init__(
        self,
        reference: Reference,
        params: SimulationParameters,
        seed: int,
        outbox: Outbox,
        routing: RoutingPolicy | None = None,
    ):
        shared = Shared(params, random.Random(f"routerloop-simulation:{seed}"), IdMinter(seed), outbox)
        self.p, self.rng, self.ids, self.outbox = params, shared.rng, shared.ids, outbox
        self.calendar = Calendar(reference, routing or TopicRouting(params, seed))
        self.conversations = Conversations(shared)
        self.tiers = WeightedChoice({i: params.tier_shares[t] for i, t in enumerate(contract.TIERS)})
        self.topic_tag = {team.team_id: "topic:" + team.team_id.removeprefix("team_") for team in reference.teams}
        self.triage = Triage(shared)
        self.experiments = ExperimentSchedule(reference.experiments)
        self.feedback = FeedbackDesk(shared)
        self.outcomes = Outcomes(shared)
        self.support = SupportDesk(shared, reference, seed, self.outcomes)

    def run_hour(self, hour_start_ms: int, decisions: int) -> None:
        """Make `decisions` decisions at random moments of the hour, in time order."""
        rng = self.rng
        times = sorted(hour_start_ms + int(rng.random() * HOUR_MS) for _ in range(decisions))
        for at_ms in times:
            self.decide(at_ms)

    def route(self, day: Day, true_tier: int) -> tuple[str, float | None, Judgement]:
        """(team, the probability it was picked with or None, the triage's judgement) of a ticket.

        Here the team owns the ticket's topic (no probability logged); routerloop.loop routes by weight.
        """
        team = day.teams.pick(self.rng)
        return team, None, self.triage.judge(true_tier, self.topic_tag[team])

    def decide(self, at_ms: int) -> Decision:
        """One decision at `at_ms`, written at once, with everything that follows from it scheduled."""
        rng, p, ids = self.rng, self.p, self.ids
        ids.enter_hour(at_ms // HOUR_MS)
        day = self.calendar.day_of(at_ms)
        channel, conversation, thread = self.conversations.thread_at(at_ms)
        true_tier = self.tiers.pick(rng)
        team, probability, judgement = self.route(day, true_tier)
        agents = day.agents[team]
        agent = rng.choice(agents) if agents and rng.random() < p.router_picks_agent_share else None
        decision_id = ids.next("rd_")
        ticket_id = None if judgement.predicted_action in p.ticketless_actions else ids.next("tk_")
        experiment_id, variant = self.experiments.assign(at_ms, ticket_id) if ticket_id else (None, None)
        input_message_id = ids.next("msg_")
        outcome_message_id = ids.next("msg_") if rng.random() < p.outcome_message_share else None
        weights_version = None if rng.random() < p.weights_version_missing_share else day.weights_version
        latency_ms = int(rng.lognormvariate(math.log(p.latency_ms_median), p.latency_ms_sigma))
        decision = Decision(
            decision_id=decision_id,
            at_ms=at_ms,
            channel=channel,
            conversation=conversation,
            thread=thread,
            input_message_id=input_message_id,
            outcome_message_id=outcome_message_id,
            ticket_id=ticket_id,
            true_tier=true_tier,
            predicted_tier=judgement.predicted_tier,
            true_action=judgement.true_action,
            predicted_action=judgement.predicted_action,
            confidence=judgement.confidence,
            reason_tags=judgement.reason_tags,
            team=team,
            agent=agent,
            rule_version=judgement.rule_version,
            experiment_id=experiment_id,
            variant=variant,
            weights_version=weights_version,
            latency_ms=latency_ms,
            customer=rng.randrange(p.customer_pool),
            routing_probability=probability,
        )
        self.outbox.emit(DECISIONS, at_ms, decision.record())
        if rng.random() < (p.feedback_share_correct if decision.correct else p.feedback_share_mistaken):
            self.feedback.give(decision)
        if ticket_id is None:
            self.outcomes.record(decision, ticket=None)
        else:
            self.support.work(decision, agents)
        return decision
