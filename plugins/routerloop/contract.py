"""The telemetry contract as data: the six streams, their fields and rules.

This module is the project's own copy of the input contract (docs/contract.md explains it in prose).
The generator writes it, landing validates against it and derives the raw tables from it, and the raw
quality suites check it. Field names are the contract's camelCase; `column` is the snake_case name
used in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIERS = ("T1", "T2", "T3", "T4")  # T1 is the most severe.
ACTIONS = ("handle", "escalate", "defer", "ignore")
FEEDBACK_SOURCES = ("explicit", "reaction", "implicit")
SEVERITIES = ("low", "medium", "high")
REVIEW_STATUSES = ("open", "resolved")
OUTCOME_TYPES = ("resolved", "reopened", "escalated", "abandoned", "error")
OUTCOME_SOURCES = ("api", "manual", "automated")
SLA_OUTCOMES = ("attained", "warn", "breach")
INT4_MAX = 2**31 - 1  # integer fields are PostgreSQL integers
# Ids and the string fields of a stream key hold at most this many characters: a key must fit a
# PostgreSQL index row (about 2.7 kB), and no real id comes near it.
MAX_ID_LENGTH = 256

# Why a line was quarantined. Every quarantined line carries exactly one of these codes.
REASONS = {
    "not_utf8": "the line is not valid UTF-8",
    "invalid_json": "the line is not a JSON object",
    "truncated_line": "the file's last line is cut short (no newline and not valid JSON)",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong JSON type",
    "bad_enum": "a field holds a value outside its allowed set",
    "out_of_range": "a number lies outside its allowed range",
    "bad_timestamp": "a timestamp is not ISO 8601 with an offset",
    "bad_id": "an id or key string lacks its required prefix, is empty, or is longer than "
    f"{MAX_ID_LENGTH} characters",
    "invalid_text": "a string holds a character PostgreSQL cannot store (NUL)",
}
# Reasons found while landing, after a line passed the checks above.
LANDING_REASONS = {
    "conflicting_duplicate": "the line reuses a landed key with different content: not a re-delivery (the"
    " message names the landed record it conflicts with)",
    "rejected_by_database": "PostgreSQL refused a line the checks above passed (the message is PostgreSQL's)",
}
QUARANTINE_REASONS = {**REASONS, **LANDING_REASONS}


@dataclass(frozen=True)
class Field:
    name: str  # contract (camelCase) name
    kind: str  # string | timestamp | enum | number | integer | boolean | string_array
    required: bool = False  # present and non-null
    values: tuple[str, ...] = ()  # for enum
    minimum: float | None = None
    maximum: float | None = None
    prefix: str | None = None  # for ids
    personal: bool = False  # personal data: later privacy work scrubs or hashes it

    @property
    def column(self) -> str:
        return camel_to_snake(self.name)


@dataclass(frozen=True)
class Stream:
    name: str  # folder and raw table name
    fields: tuple[Field, ...]
    key: tuple[str, ...]  # contract names; a second line with the same key is a re-delivery
    event_time: str  # contract name of the timestamp that says when the record happened

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _s(name, **kw):
    return Field(name, "string", **kw)


def _ts(name, **kw):
    return Field(name, "timestamp", **kw)


def _enum(name, values, **kw):
    return Field(name, "enum", values=values, **kw)


ROUTER_DECISIONS = Stream(
    name="router_decisions",
    fields=(
        _s("decisionId", required=True, prefix="rd_"),
        _ts("createdAt", required=True),
        _s("channelId", required=True),
        _s("conversationId"),
        _s("threadId"),
        _s("inputMessageId"),
        _s("outcomeMessageId"),
        _s("ticketId"),
        _enum("predictedTier", TIERS, required=True),
        _enum("predictedAction", ACTIONS, required=True),
        Field("confidence", "number", minimum=0, maximum=1),
        Field("reasonTags", "string_array", required=True),
        _s("teamId", required=True),
        _s("agentId"),
        _s("ruleVersion", required=True),
        _s("experimentId"),
        _s("variant"),
        _s("weightsVersion"),
        Field("latencyMs", "integer", minimum=0, maximum=INT4_MAX),
        # The probability with which a weighted router picked teamId (for off-policy evaluation); optional.
        Field("routingProbability", "number", minimum=0, maximum=1),
    ),
    key=("decisionId",),
    event_time="createdAt",
)

ROUTER_FEEDBACK = Stream(
    name="router_feedback",
    fields=(
        _s("feedbackId", required=True, prefix="rf_"),
        _ts("createdAt", required=True),
        _s("decisionId"),
        _s("linkedDecisionId"),
        _enum("source", FEEDBACK_SOURCES, required=True),
        _s("actorId", personal=True),
        _s("channelId", required=True),
        _s("conversationId"),
        _s("threadId"),
        _s("feedbackMessageId"),
        _enum("expectedTier", TIERS),
        _enum("expectedAction", ACTIONS),
        _s("reaction"),
        _s("freeText", personal=True),
        Field("latencyFromDecisionSec", "number", minimum=0),
        Field("needsReview", "boolean", required=True),
    ),
    key=("feedbackId",),
    event_time="createdAt",
)

ROUTER_REVIEW_QUEUE = Stream(
    name="router_review_queue",
    fields=(
        _s("reviewId", required=True, prefix="rv_"),
        _ts("createdAt", required=True),
        _ts("updatedAt", required=True),
        _s("linkedDecisionId", required=True),
        _s("feedbackId", required=True),
        _enum("severity", SEVERITIES, required=True),
        _s("reason", required=True),
        _enum("status", REVIEW_STATUSES, required=True),
        _ts("resolvedAt"),
        _s("resolution"),
    ),
    # Append-only states: the line for (reviewId, updatedAt) is one state; the latest is current.
    key=("reviewId", "updatedAt"),
    event_time="updatedAt",
)

DECISION_OUTCOMES = Stream(
    name="decision_outcomes",
    fields=(
        _s("outcomeId", required=True),
        _s("decisionId", required=True),
        _ts("recordedAt", required=True),
        Field("outcomePositive", "boolean"),  # null = pending
        _enum("outcomeType", OUTCOME_TYPES, required=True),
        Field("outcomeValue", "number", minimum=0),
        _enum("source", OUTCOME_SOURCES, required=True),
        _s("notes"),
    ),
    key=("outcomeId",),
    event_time="recordedAt",
)

SLA_OUTCOMES_STREAM = Stream(
    name="sla_outcomes",
    fields=(
        _s("ticketId", required=True),
        _s("decisionId"),
        _s("teamId", required=True),
        _s("agentId"),
        _enum("tier", TIERS, required=True),
        _s("slaPolicy", required=True),
        _ts("openedAt", required=True),
        _ts("firstResponseAt"),
        _ts("resolvedAt"),
        _ts("targetResolveBy", required=True),
        _enum("outcome", SLA_OUTCOMES, required=True),
        _ts("evaluatedAt", required=True),
    ),
    # A later evaluatedAt for the same ticket + policy supersedes; the same line twice is a re-delivery.
    key=("ticketId", "slaPolicy", "evaluatedAt"),
    event_time="evaluatedAt",
)

CSAT_RATINGS = Stream(
    name="csat_ratings",
    fields=(
        _s("ratingId", required=True),
        _s("ticketId", required=True),
        _s("teamId", required=True),
        _s("agentId"),
        _s("customerId", required=True, personal=True),
        _s("customerEmail", personal=True),
        Field("rating", "integer", required=True, minimum=1, maximum=5),
        _s("comment", personal=True),
        _ts("submittedAt", required=True),
    ),
    key=("ratingId",),
    event_time="submittedAt",
)

STREAMS: dict[str, Stream] = {
    s.name: s
    for s in (
        ROUTER_DECISIONS,
        ROUTER_FEEDBACK,
        ROUTER_REVIEW_QUEUE,
        DECISION_OUTCOMES,
        SLA_OUTCOMES_STREAM,
        CSAT_RATINGS,
    )
}

# <landing root>/<stream>/dt=YYYY-MM-DD/hr=HH/<any name>.jsonl[.gz]
PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$"), re.compile(r"^hr=(\d{2})$")
FILE_SUFFIXES = (".jsonl", ".jsonl.gz")
