"""The six streams as the simulation numbers them (index into STREAM_NAMES), and their line encoding."""

from __future__ import annotations

import msgspec

from routerloop import contract

STREAM_NAMES = tuple(contract.STREAMS)
DECISIONS, FEEDBACK, REVIEWS, OUTCOMES, SLA, CSAT = (
    STREAM_NAMES.index(name)
    for name in (
        "router_decisions",
        "router_feedback",
        "router_review_queue",
        "decision_outcomes",
        "sla_outcomes",
        "csat_ratings",
    )
)

encode_line = msgspec.json.Encoder().encode  # a record -> one JSON line (bytes, no newline)
