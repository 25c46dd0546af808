"""What happens to a decision's ticket: resolution time, SLA evaluations, CSAT, and the decision outcome.

Resolution time follows the team's skill at the tier and its load, the resolving agent's speed, the A/B
variant and whether the router got the ticket right, scaled to the tier's SLA target. The desk works to
the tier the router gave the ticket, so a misread tier means the wrong SLA policy too.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from routerloop import contract
from routerloop.simulation import texts
from routerloop.simulation.clock import HOUR_MS, MINUTE_MS, SECOND_MS, iso_ms
from routerloop.simulation.parts import Shared, WorldPart
from routerloop.simulation.reference import Reference, SlaPolicy
from routerloop.simulation.sampling import WeightedChoice
from routerloop.simulation.streams import CSAT, OUTCOMES, SLA

if TYPE_CHECKING:
    from routerloop.simulation.world import Decision


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket's course, in epoch milliseconds (durations end in `_ms` too)."""

    ticket_id: str
    policy: SlaPolicy
    skill: float  # the team's skill at the ticket's tier
    resolver: str | None  # the agent who resolved it, if known
    opened_ms: int
    first_response_ms: int
    resolved_ms: int
    resolve_ms: int  # time to resolve
    target_ms: int  # the policy's resolve target
    warn_ms: int  # the policy's warn mark

    @property
    def breached(self) -> bool:
        return self.resolve_ms > self.target_ms

    @property
    def sla_outcome(self) -> str:
        if self.breached:
            return "breach"
        return "warn" if self.resolve_ms > self.warn_ms else "attained"


class SupportDesk(WorldPart):
    """Works every ticket a decision opens, and reports its SLA, CSAT and outcome."""

    def __init__(self, shared: Shared, reference: Reference, seed: int, outcomes: Outcomes):
        super().__init__(shared)
        p = self.p
        self.outcomes = outcomes
        self.policies = [reference.sla_policies[tier] for tier in contract.TIERS]
        team_ids = [team.team_id for team in reference.teams]
        self.skill = {t: tuple(p.team_skill.get(t, p.default_team_skill)) for t in team_ids}
        self.load_factor = {t: p.team_load.get(t, p.default_team_load) ** p.load_exponent for t in team_ids}
        speeds = random.Random(f"routerloop-agents:{seed}")  # its own stream: agents are fixed for a seed
        self.agent_speed = {a.agent_id: math.exp(speeds.gauss(0.0, p.agent_speed_sd)) for a in reference.agents}

    def work(self, decision: Decision, agents: list[str]) -> None:
        """Resolve the decision's ticket; `agents` are the active agents of its team."""
        ticket = self._resolve(decision, agents)
        self._evaluate_sla(decision, ticket)
        self.outcomes.record(decision, ticket)
        if self.rng.random() < self.p.csat_share:
            self._rate(decision, ticket)

    def _resolve(self, decision: Decision, agents: list[str]) -> Ticket:
        rng, p, team = self.rng, self.p, decision.team
        policy = self.policies[decision.predicted_tier]
        skill = self.skill[team][decision.predicted_tier]
        resolver = decision.agent
        if resolver is None and agents and rng.random() < p.resolving_agent_known_share:
            resolver = rng.choice(agents)
        median = (
            p.resolve_median_share
            * math.exp(-p.skill_effect * (skill - 0.5))
            * self.load_factor[team]
            * p.variant_resolve_factor.get(decision.variant, 1.0)
            * (1.0 if decision.correct else p.mistake_resolve_penalty)
            * (self.agent_speed.get(resolver, 1.0) if resolver else 1.0)
        )
        target_ms = int(policy.resolve_minutes * MINUTE_MS)
        share = min(p.max_resolve_share, median * rng.lognormvariate(0.0, p.resolve_sigma))
        resolve_ms = max(int(p.min_resolve_minutes * MINUTE_MS), int(share * target_ms))
        opened_ms = decision.at_ms + rng.randrange(30 * SECOND_MS)
        first_response_ms = opened_ms + min(
            resolve_ms,
            int(policy.first_response_minutes * MINUTE_MS * p.first_response_median_share
                * self.load_factor[team] * rng.lognormvariate(0.0, p.first_response_sigma)),
        )
        return Ticket(
            ticket_id=decision.ticket_id,
            policy=policy,
            skill=skill,
            resolver=resolver,
            opened_ms=opened_ms,
            first_response_ms=first_response_ms,
            resolved_ms=opened_ms + resolve_ms,
            resolve_ms=resolve_ms,
            target_ms=target_ms,
            warn_ms=int(policy.warn_at_share * target_ms),
        )

    def _evaluate_sla(self, decision: Decision, ticket: Ticket) -> None:
        """An interim `warn` line for some tickets still open past the warn mark, then the final line."""
        rng, p = self.rng, self.p
        base = {
            "ticketId": ticket.ticket_id,
            "decisionId": decision.decision_id,
            "teamId": decision.team,
            "agentId": ticket.resolver,
            "tier": contract.TIERS[decision.predicted_tier],
            "slaPolicy": ticket.policy.name,
            "openedAt": iso_ms(ticket.opened_ms),
        }
        low, high = p.evaluation_lag_sec
        if ticket.resolve_ms > ticket.warn_ms and rng.random() < p.interim_warn_share:
            evaluated_ms = ticket.opened_ms + ticket.warn_ms + rng.randint(low, high) * 1000
            if evaluated_ms < ticket.resolved_ms:  # still open when checked; the final line supersedes it
                responded = ticket.first_response_ms <= evaluated_ms
                self.outbox.emit(SLA, evaluated_ms, {
                    **base,
                    "firstResponseAt": iso_ms(ticket.first_response_ms) if responded else None,
                    "resolvedAt": None,
                    "targetResolveBy": iso_ms(ticket.opened_ms + ticket.target_ms),
                    "outcome": "warn",
                    "evaluatedAt": iso_ms(evaluated_ms),
                })
        evaluated_ms = ticket.resolved_ms + rng.randint(low, high) * 1000
        self.outbox.emit(SLA, evaluated_ms, {
            **base,
            "firstResponseAt": iso_ms(ticket.first_response_ms),
            "resolvedAt": iso_ms(ticket.resolved_ms),
            "targetResolveBy": iso_ms(ticket.opened_ms + ticket.target_ms),
            "outcome": ticket.sla_outcome,
            "evaluatedAt": iso_ms(evaluated_ms),
        })

    def _rate(self, decision: Decision, ticket: Ticket) -> None:
        """The customer's CSAT rating: lower for slow, breached or misrouted tickets."""
        rng, p = self.rng, self.p
        delay_hours = min(p.csat_max_delay_hours,
                          rng.lognormvariate(math.log(p.csat_delay_median_hours), p.csat_delay_sigma))
        submitted_ms = ticket.resolved_ms + int(delay_hours * HOUR_MS)
        latent = (
            p.csat_base
            - p.csat_resolve_effect * min(ticket.resolve_ms / ticket.target_ms, 2.0)
            - (p.csat_breach_penalty if ticket.breached else 0.0)
            - (0.0 if decision.correct else p.csat_mistake_penalty)
            + p.csat_skill_effect * (ticket.skill - 0.5)
            + p.variant_csat_bonus.get(decision.variant, 0.0)
            + rng.gauss(0.0, p.csat_noise_sd)
        )
        rating = min(5, max(1, math.floor(latent + 0.5)))
        name, email, phone = texts.customer(decision.customer)
        comment = None
        if rng.random() < p.csat_comment_share:
            comment = rng.choice(texts.CSAT_TEXT[rating])
            if rng.random() < p.personal_data_in_text_share:
                account = texts.account_id(decision.customer)
                comment += rng.choice(texts.CSAT_PII_TEXT).format(name=name, email=email, phone=phone, account=account)
        self.outbox.emit(CSAT, submitted_ms, {
            "ratingId": self.ids.next("cs_"),
            "ticketId": ticket.ticket_id,
            "teamId": decision.team,
            "agentId": ticket.resolver,
            "customerId": "cus_" + f"{decision.customer:06d}",
            "customerEmail": email if rng.random() < p.customer_email_share else None,
            "rating": rating,
            "comment": comment,
            "submittedAt": iso_ms(submitted_ms),
        })


class Outcomes(WorldPart):
    """The decision outcome: recorded for most decisions, after the ticket's resolution when it had one."""

    def __init__(self, shared: Shared):
        super().__init__(shared)
        self.negative_types = WeightedChoice(self.p.negative_outcome_types)
        self.sources = WeightedChoice(self.p.outcome_sources)

    def record(self, decision: Decision, ticket: Ticket | None) -> None:
        """The outcome of `decision`, after its ticket is resolved; `ticket` is None if it opened none."""
        rng, p, at_ms = self.rng, self.p, decision.at_ms
        if rng.random() >= p.outcome_share:
            return
        with_notes = rng.random() < p.outcome_notes_share
        if rng.random() < p.pending_outcome_share:
            low, high = p.pending_outcome_after_min
            recorded_ms = at_ms + rng.randint(low, high) * MINUTE_MS
            positive, outcome_type = None, "escalated"
            notes = "awaiting confirmation" if with_notes else None
        else:
            resolved_ms, breach = (ticket.resolved_ms, ticket.breached) if ticket else (at_ms, False)
            low, high = p.outcome_lag_sec
            recorded_ms = resolved_ms + rng.randint(low, high) * 1000
            success = (p.success_correct if decision.correct else p.success_mistaken) - (
                p.success_breach_penalty if breach else 0.0
            )
            positive = rng.random() < success
            outcome_type = "resolved" if positive else self.negative_types.pick(rng)
            notes = rng.choice(texts.OUTCOME_NOTES[positive]) if with_notes else None
        self.outbox.emit(OUTCOMES, recorded_ms, {
            "outcomeId": self.ids.next("oc_"),
            "decisionId": decision.decision_id,
            "recordedAt": iso_ms(recorded_ms),
            "outcomePositive": positive,
            "outcomeType": outcome_type,
            "outcomeValue": round((recorded_ms - at_ms) / MINUTE_MS, 1),
            "source": self.sources.pick(rng),
            "notes": notes,
        })
