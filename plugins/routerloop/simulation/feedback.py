"""Feedback on decisions (explicit, reaction, implicit) and the review items it opens.

Feedback names its decision by id, by linked id, or only by its thread; a few pieces come from a thread
no decision was made in. Mismatches mostly open a review item, which is usually resolved later.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from routerloop import contract
from routerloop.simulation import texts
from routerloop.simulation.clock import HOUR_MS, MINUTE_MS, iso_ms
from routerloop.simulation.parts import Shared, WorldPart
from routerloop.simulation.sampling import WeightedChoice
from routerloop.simulation.streams import FEEDBACK, REVIEWS

if TYPE_CHECKING:
    from routerloop.simulation.world import Decision


class FeedbackDesk(WorldPart):
    """Writes the feedback a decision gets, and hands mismatches to the review queue."""

    def __init__(self, shared: Shared):
        super().__init__(shared)
        self.sources = WeightedChoice(self.p.feedback_sources)
        self.channels = WeightedChoice(self.p.channel_shares)
        self.reviews = ReviewQueue(shared)

    def give(self, decision: Decision) -> None:
        rng, p, ids = self.rng, self.p, self.ids
        source = self.sources.pick(rng)
        delay_sec = rng.lognormvariate(math.log(p.feedback_delay_median_sec[source]), p.feedback_delay_sigma)
        created_ms = decision.at_ms + int(delay_sec * 1000)
        channel, conversation, thread = decision.channel, decision.conversation, decision.thread
        orphan = rng.random() < p.orphan_feedback_share
        referenced = linked = None
        if orphan:  # a thread no decision was made in: links to nothing
            channel = self.channels.pick(rng)
            conversation, thread = ids.next("cv_"), ids.next("th_")
        else:
            by_id, linked_only = p.feedback_reference[source]
            roll = rng.random()
            if roll < by_id:
                referenced = decision.decision_id
            elif roll < by_id + linked_only:
                linked = decision.decision_id
        labelled = rng.random() < p.expected_labels_share[source]
        needs_review = not orphan and rng.random() < (
            p.review_share_on_match if decision.correct else p.review_share_on_mismatch
        )
        reaction = self._reaction(decision) if source == "reaction" else None
        free_text = self._free_text(decision) if rng.random() < p.feedback_text_share[source] else None
        actor = texts.staff_actor(rng.randrange(texts.STAFF_SIZE), channel)  # the same people, again and again
        feedback_id = ids.next("rf_")
        self.outbox.emit(FEEDBACK, created_ms, {
            "feedbackId": feedback_id,
            "createdAt": iso_ms(created_ms),
            "decisionId": referenced,
            "linkedDecisionId": linked,
            "source": source,
            "actorId": actor,
            "channelId": channel,
            "conversationId": conversation,
            "threadId": thread,
            "feedbackMessageId": None if source == "implicit" else ids.next("msg_"),
            "expectedTier": contract.TIERS[decision.true_tier] if labelled else None,
            "expectedAction": decision.true_action if labelled else None,
            "reaction": reaction,
            "freeText": free_text,
            "latencyFromDecisionSec": (
                None if orphan or rng.random() < p.feedback_latency_missing_share else round(delay_sec, 3)
            ),
            "needsReview": needs_review,
        })
        if needs_review:
            self.reviews.open(decision, feedback_id, created_ms)

    def _reaction(self, decision: Decision) -> str:
        if decision.correct:
            choices = texts.REACTIONS_RIGHT
        elif decision.predicted_tier < decision.true_tier:
            choices = texts.REACTIONS_TOO_SEVERE
        elif decision.predicted_tier > decision.true_tier:
            choices = texts.REACTIONS_NOT_SEVERE_ENOUGH
        else:
            choices = texts.REACTIONS_WRONG_ACTION
        return self.rng.choice(choices)

    def _free_text(self, decision: Decision) -> str:
        rng = self.rng
        values = {
            "expected": contract.TIERS[decision.true_tier],
            "predicted": contract.TIERS[decision.predicted_tier],
            "expected_action": decision.true_action,
            "predicted_action": decision.predicted_action,
        }
        if decision.predicted_tier != decision.true_tier:
            text = rng.choice(texts.FEEDBACK_TIER_TEXT).format(**values)
        elif decision.predicted_action != decision.true_action:
            text = rng.choice(texts.FEEDBACK_ACTION_TEXT).format(**values)
        else:
            text = rng.choice(texts.FEEDBACK_RIGHT_TEXT)
        if rng.random() < self.p.personal_data_in_text_share:
            name, email, phone = texts.customer(decision.customer)
            account = texts.account_id(decision.customer)
            text += rng.choice(texts.FEEDBACK_PII_TEXT).format(name=name, email=email, phone=phone, account=account)
        return text


class ReviewQueue(WorldPart):
    """Opens a review item for a piece of feedback and, most of the time, resolves it later."""

    def open(self, decision: Decision, feedback_id: str, feedback_ms: int) -> None:
        rng, p = self.rng, self.p
        low, high = p.review_open_delay_sec
        opened_ms = feedback_ms + rng.randint(low, high) * 1000
        severity = _severity(decision)
        record = {
            "reviewId": self.ids.next("rv_"),
            "createdAt": iso_ms(opened_ms),
            "updatedAt": iso_ms(opened_ms),
            "linkedDecisionId": decision.decision_id,
            "feedbackId": feedback_id,
            "severity": severity,
            "reason": _reason(decision),
            "status": "open",
            "resolvedAt": None,
            "resolution": None,
        }
        self.outbox.emit(REVIEWS, opened_ms, record)
        if rng.random() < p.review_resolved_share:
            hours = rng.lognormvariate(math.log(p.review_resolve_median_hours[severity]), p.review_resolve_sigma)
            resolved_ms = opened_ms + max(MINUTE_MS, int(hours * HOUR_MS))
            resolutions = (
                texts.REVIEW_RESOLUTIONS_MATCH if decision.correct else texts.REVIEW_RESOLUTIONS_MISMATCH
            )
            self.outbox.emit(REVIEWS, resolved_ms, {
                **record,
                "updatedAt": iso_ms(resolved_ms),
                "status": "resolved",
                "resolvedAt": iso_ms(resolved_ms),
                "resolution": rng.choice(resolutions),
            })


def _severity(decision: Decision) -> str:
    gap = abs(decision.predicted_tier - decision.true_tier)
    missed_escalation = decision.true_action == "escalate" and decision.predicted_action != "escalate"
    if decision.true_tier == 0 or gap >= 2 or missed_escalation:
        return "high"
    if gap or decision.true_tier == 1:
        return "medium"
    return "low"


def _reason(decision: Decision) -> str:
    predicted, expected = decision.predicted_tier, decision.true_tier
    if predicted != expected:
        return f"tier mismatch: predicted {contract.TIERS[predicted]}, expected {contract.TIERS[expected]}"
    if decision.predicted_action != decision.true_action:
        return f"action mismatch: predicted {decision.predicted_action}, expected {decision.true_action}"
    return "reviewer flagged uncertain routing"
