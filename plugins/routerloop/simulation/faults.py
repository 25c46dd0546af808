"""Bad lines, re-deliveries and empty files: what landing must quarantine, deduplicate and skip.

With `bad_rate` > 0 that share of lines breaks the contract, each in exactly one way (see REASONS in
routerloop.contract; landing checks them in the order not_utf8, invalid_json/truncated_line,
missing_field, wrong_type, bad_enum, out_of_range, bad_timestamp, bad_id, invalid_text): a bad line
replaces the record it was made from. Re-deliveries (a byte-identical earlier line of the stream, in
the same or a later file) are added on top, and every stream gets one empty file. Everything injected
is counted for the generator's manifest, the yardstick for landing's quarantine and duplicates. The
faults draw from a random stream of their own, so they leave the simulation's stream untouched.
"""

from __future__ import annotations

import json
import random
from collections import deque

from routerloop import contract
from routerloop.simulation.streams import STREAM_NAMES, encode_line

DUPLICATE = "duplicate"  # not a quarantine reason: landing keeps one line per key and counts the rest

# How each stream can be broken, one rule at a time. Fields named here are always present in the
# generator's records; every value breaks only the rule it is listed under.
_TEXT_FIELDS = {  # plain strings (no enum, timestamp or id prefix): for NUL and non-UTF-8 bytes
    "router_decisions": ("channelId", "conversationId", "inputMessageId"),
    "router_feedback": ("channelId", "conversationId", "actorId"),
    "router_review_queue": ("reason",),
    "decision_outcomes": ("decisionId",),
    "sla_outcomes": ("teamId", "ticketId"),
    "csat_ratings": ("customerId", "teamId"),
}
_WRONG_TYPES = {
    "router_decisions": (("confidence", "high"), ("latencyMs", "fast"), ("reasonTags", "keyword_match"),
                         ("teamId", 17)),
    "router_feedback": (("needsReview", "yes"), ("latencyFromDecisionSec", "soon"), ("channelId", 5)),
    "router_review_queue": (("reason", 404), ("severity", 2)),
    "decision_outcomes": (("outcomePositive", "yes"), ("outcomeValue", "n/a")),
    "sla_outcomes": (("tier", 2), ("teamId", 12)),
    "csat_ratings": (("rating", "five"), ("customerId", 12345)),
}
_BAD_ENUMS = {
    "router_decisions": (("predictedTier", "T5"), ("predictedTier", "P1"), ("predictedAction", "route")),
    "router_feedback": (("source", "survey"), ("expectedTier", "T0")),
    "router_review_queue": (("severity", "critical"), ("status", "closed")),
    "decision_outcomes": (("outcomeType", "timeout"), ("source", "webhook")),
    "sla_outcomes": (("outcome", "missed"), ("tier", "T5")),
    "csat_ratings": (),
}
_OUT_OF_RANGE = {
    "router_decisions": (("confidence", 1.25), ("confidence", -0.1), ("latencyMs", -40)),
    "router_feedback": (("latencyFromDecisionSec", -12.5),),
    "router_review_queue": (),
    "decision_outcomes": (("outcomeValue", -3.0),),
    "sla_outcomes": (),
    "csat_ratings": (("rating", 0), ("rating", 6), ("rating", 10)),
}
_NOT_UTF8_MARK = "@@not-utf8@@"
_NOT_UTF8_BYTES = (b"caf\xe9", b"\xff\xfe", b"na\xefve")  # Latin-1 and stray bytes


def applicable_faults(stream: str) -> tuple[str, ...]:
    """The REASONS codes (plus `duplicate`) the generator injects into a stream, in REASONS order."""
    spec = contract.STREAMS[stream]
    kinds = []
    for reason in contract.REASONS:
        if (reason == "bad_enum" and not _BAD_ENUMS[stream]) or (
            reason == "out_of_range" and not _OUT_OF_RANGE[stream]
        ):
            continue
        if reason == "bad_id" and not any(f.prefix and f.required for f in spec.fields):
            continue
        kinds.append(reason)
    return (*kinds, DUPLICATE)


def _break_line(stream: str, line: bytes, kind: str, rng: random.Random) -> bytes:
    """A copy of `line` that breaks exactly one contract rule, the one `kind` names."""
    spec = contract.STREAMS[stream]
    record = json.loads(line)
    if kind == "not_utf8":
        record[rng.choice(_TEXT_FIELDS[stream])] = _NOT_UTF8_MARK
        return encode_line(record).replace(_NOT_UTF8_MARK.encode(), rng.choice(_NOT_UTF8_BYTES))
    if kind == "invalid_json":
        text = line.decode()
        variant = rng.randrange(4)
        if variant == 0:
            return (text[:-1] + ",}").encode()  # trailing comma
        if variant == 1:
            return text.replace('"', "'").encode()  # a Python repr, not JSON
        if variant == 2:
            return f"[{text}]".encode()  # JSON, but not an object
        return b"ERROR 502 Bad Gateway while writing record"
    if kind == "missing_field":
        name = rng.choice(spec.required)
        if rng.random() < 0.5:
            del record[name]
        else:
            record[name] = None
    elif kind == "wrong_type":
        name, value = rng.choice(_WRONG_TYPES[stream])
        record[name] = value
    elif kind == "bad_enum":
        name, value = rng.choice(_BAD_ENUMS[stream])
        record[name] = value
    elif kind == "out_of_range":
        name, value = rng.choice(_OUT_OF_RANGE[stream])
        record[name] = value
    elif kind == "bad_timestamp":
        name = rng.choice([f.name for f in spec.fields if f.kind == "timestamp" and f.required])
        good = record[name]  # 2026-11-01T13:05:10.123Z
        record[name] = rng.choice((
            good[:-1],  # no offset
            f"{good[:10]} {good[11:19]}",  # no offset, space separated
            f"{good[:5]}02-30{good[10:]}",  # no such day
            f"{good[8:10]}/{good[5:7]}/{good[:4]} {good[11:16]}",  # not ISO 8601
            "yesterday",
        ))
    elif kind == "bad_id":
        id_field = next(f for f in spec.fields if f.prefix and f.required)
        rest = record[id_field.name][len(id_field.prefix):]
        record[id_field.name] = rng.choice((rest, f"id-{rest}"))
    elif kind == "invalid_text":
        name = rng.choice(_TEXT_FIELDS[stream])
        value = record[name]
        cut = len(value) // 2
        record[name] = value[:cut] + "\x00" + value[cut:]
    else:
        raise ValueError(f"unknown fault {kind!r}")
    return encode_line(record)



class FaultInjector:
    """Decides which lines turn bad or get re-delivered, and counts what it injected.

    The writer passes every line through `add`, lets `finish_file` arrange a file's lines just before
    writing them, and reports the written lines to `count_written`.
    """

    def __init__(self, bad_rate: float, seed: int, recent_lines_kept: int, empty_hour: int):
        self.bad_rate = bad_rate
        self.empty_hour = empty_hour if bad_rate > 0 else -1
        self.rng = random.Random(f"routerloop-bad-lines:{seed}")
        self.recent = [deque(maxlen=recent_lines_kept) for _ in STREAM_NAMES]  # written valid lines
        self.truncations_due = [0 for _ in STREAM_NAMES]
        self.faults = [applicable_faults(name) for name in STREAM_NAMES]
        self.cycles: list[list[str]] = [[] for _ in STREAM_NAMES]
        self.injected: dict[str, dict[str, int]] = {name: {} for name in STREAM_NAMES}  # stream -> reason -> n
        self.duplicates = {name: 0 for name in STREAM_NAMES}

    def wants_empty_file(self, hour_index: int) -> bool:
        """Whether every stream gets its empty file in this hour (the middle one, with bad lines on)."""
        return hour_index == self.empty_hour

    def add(self, buffer: list[tuple[bytes, str | None]], stream: int, line: bytes) -> None:
        """Append `line` to a file's `buffer` as (line, fault), broken or followed by a re-delivery."""
        if not (self.bad_rate and self.rng.random() < self.bad_rate):
            buffer.append((line, None))
            return
        fault = self._next_fault(stream)
        if fault == DUPLICATE:
            buffer.append((line, None))
            recent = self.recent[stream]
            source = buffer[self.rng.randrange(len(buffer))]
            if recent and (source[1] is not None or self.rng.random() < 0.5):
                repeated = recent[self.rng.randrange(len(recent))]  # from an earlier file
            else:
                repeated = source[0] if source[1] is None else line  # from this file
            buffer.append((repeated, DUPLICATE))
        elif fault == "truncated_line":
            self.truncations_due[stream] += 1  # the next file whose last line is clean gets cut short
            buffer.append((line, None))
        else:
            buffer.append((_break_line(STREAM_NAMES[stream], line, fault, self.rng), fault))

    def finish_file(self, stream: int, buffer: list[tuple[bytes, str | None]]) -> bool:
        """Arrange a file's last line; True when it was cut short (the file then ends without a newline)."""
        if buffer[-1][1] == "invalid_json":
            # Keep broken JSON off the last line, where a reader could take it for a cut-short line.
            # Lines after it in the file are never repeated by it, so moving it first is safe.
            buffer.insert(0, buffer.pop())
        if not (self.truncations_due[stream] and buffer[-1][1] is None):
            return False
        text = buffer[-1][0].decode()
        buffer[-1] = (text[: self.rng.randrange(1, len(text))].encode(), "truncated_line")
        self.truncations_due[stream] -= 1
        return True

    def count_written(self, stream: int, buffer: list[tuple[bytes, str | None]]) -> int:
        """Count a written file's faults and keep its valid lines for re-delivery; returns the valid lines."""
        name = STREAM_NAMES[stream]
        injected, recent = self.injected[name], self.recent[stream]
        valid = 0
        for line, fault in buffer:
            if fault is None:
                valid += 1
                recent.append(line)
            elif fault == DUPLICATE:
                valid += 1
                self.duplicates[name] += 1
            else:
                injected[fault] = injected.get(fault, 0) + 1
        return valid

    def _next_fault(self, stream: int) -> str:
        # Each stream cycles through all its faults in a shuffled order, so every kind shows up early.
        cycle = self.cycles[stream]
        if not cycle:
            cycle.extend(self.faults[stream])
            self.rng.shuffle(cycle)
        return cycle.pop()
