"""`LoopWorld`: the generator's world routed by weight, with common random numbers and a truth log.

Common random numbers: every hour and every decision draws from a random stream of its own, seeded by
the run's seed and its hour (and its index in the hour), so two strategies on one seed meet the same
tickets (arrival, tier, triage, topic) and the same uniform draw for the routing pick; only what
follows from the team differs. A ticket's topic owner is still drawn (its `topic:` reason tag), but the
team comes from the weights of its triaged tier, the tier the desk works it to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from routerloop.loop.policy import WeightedRouting
from routerloop.simulation.clock import HOUR_MS
from routerloop.simulation.parameters import SimulationParameters
from routerloop.simulation.parts import Shared
from routerloop.simulation.reference import Reference
from routerloop.simulation.router import TopicRouting
from routerloop.simulation.streams import CSAT
from routerloop.simulation.tickets import SupportDesk
from routerloop.simulation.world import World


@dataclass
class TicketLog:
    """The truth of every ticket: ticket id -> (day, tier index, team, resolve minutes, breached), ratings."""

    tickets: dict[str, tuple] = field(default_factory=dict)
    ratings: dict[str, int] = field(default_factory=dict)
    day: int = 0  # the 1-based day being simulated


class TappedOutbox:
    """Passes every record on to the writer's outbox and keeps the CSAT ratings in the log."""

    def __init__(self, outbox, log: TicketLog):
        self.outbox, self.log = outbox, log

    def emit(self, stream: int, at_ms: int, record: dict) -> None:
        if stream == CSAT:
            self.log.ratings[record["ticketId"]] = record["rating"]
        self.outbox.emit(stream, at_ms, record)


class RecordingDesk(SupportDesk):
    """The support desk, noting each ticket's resolution in the log."""

    def __init__(self, shared: Shared, reference: Reference, seed: int, outcomes, log: TicketLog):
        super().__init__(shared, reference, seed, outcomes)
        self.log = log

    def _resolve(self, decision, agents):
        ticket = super()._resolve(decision, agents)
        self.log.tickets[ticket.ticket_id] = (self.log.day, decision.predicted_tier, decision.team,
                                              ticket.resolve_ms / 60_000.0, ticket.breached)
        return ticket


class TopicsVersioned(TopicRouting):
    """Topic shares as before (who owns a ticket's topic); the weights version is the router's."""

    def __init__(self, params: SimulationParameters, seed: int, router: WeightedRouting):
        super().__init__(params, seed)
        self.router = router

    def weights_version(self, day: date) -> str:
        return self.router.version or "base"


class LoopWorld(World):
    """The world with the weighted router plugged in; `begin_day` reads the weights and applies shifts."""

    def __init__(self, reference: Reference, params: SimulationParameters, seed: int, outbox,
                 router: WeightedRouting):
        self.log = TicketLog()
        tapped = TappedOutbox(outbox, self.log)
        super().__init__(reference, params, seed, tapped, TopicsVersioned(params, seed, router))
        self.seed, self.router = seed, router
        shared = Shared(params, self.rng, self.ids, tapped)
        self.support = RecordingDesk(shared, reference, seed, self.outcomes, self.log)

    def begin_day(self, day: int, skill_changes: dict) -> None:
        """Day `day` (1-based) starts: the router reads the newest weights; team skills may change."""
        self.log.day = day
        self.router.refresh()
        for team, skill in skill_changes.items():
            self.support.skill[team] = tuple(skill)

    def run_hour(self, hour_start_ms: int, decisions: int) -> None:
        rng = self.rng
        rng.seed(f"routerloop-loop:{self.seed}:{hour_start_ms}")
        times = sorted(hour_start_ms + int(rng.random() * HOUR_MS) for _ in range(decisions))
        for index, at_ms in enumerate(times):
            rng.seed(f"routerloop-loop:{self.seed}:{hour_start_ms}:{index}")
            self.decide(at_ms)

    def route(self, day, true_tier: int):
        topic = day.teams.pick(self.rng)
        judgement = self.triage.judge(true_tier, self.topic_tag[topic])
        team, probability = self.router.pick(day.teams.items, judgement.predicted_tier, self.rng.random())
        return team, probability, judgement
