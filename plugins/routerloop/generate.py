"""Simulated router telemetry in the contract's landing layout: a small simulation, not noise.

Teams have a latent skill per tier and a load; agents belong to teams; every tier has an SLA policy
(dbt_project/seeds/*.csv are the reference data). Each hour the router makes `decisions_per_hour`
decisions. A decision has a true tier the router may miss (mostly by one tier, more often when its
reason tags say the message was ambiguous), a confidence that is higher when it is right, a rule
version, and an A/B variant (routerloop.experiments: a sha256 of experiment and ticket id bucketed
by traffic share). Its ticket gets a resolution time from the team's skill and load and the SLA
target, hence an SLA outcome (an interim `warn` evaluation for some, a final one at resolution), a
decision outcome whose success follows correct routing, and sometimes a CSAT rating that falls with
resolution time and breach. A share of decisions gets feedback (explicit, reaction, implicit; linked
by id, by linked id, by thread only, or to nothing); mismatches open review items resolved later.

Every record is written into the partition of the hour in which it happens
(`<out>/<stream>/dt=YYYY-MM-DD/hr=HH/part-0000.jsonl`). Events later than their decision wait in a
heap keyed by time and are flushed hour by hour, so memory is bounded by the longest delay (a few
days of pending events), not by the number of hours generated. Events after the generated range are
not written. Same seed, same bytes: one seeded random stream for the simulation, another for bad
lines, no wall clock, no set or hash() ordering.

With `bad_rate` > 0 that share of lines breaks the contract, each in exactly one way (see REASONS in
routerloop.contract; landing checks them in the order not_utf8, invalid_json/truncated_line,
missing_field, wrong_type, bad_enum, out_of_range, bad_timestamp, bad_id, invalid_text): a bad line
replaces the record it was made from. Re-deliveries (a byte-identical earlier line of the stream, in
the same or a later file) are added on top, and every stream gets one empty file. Everything injected
is counted in `<out>/_generator_manifest.json`, the yardstick for landing's quarantine and duplicates.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import heapq
import json
import math
import os
import random
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec

from routerloop import contract
from routerloop.config import settings
from routerloop.experiments import Experiment, load_experiments

MANIFEST_NAME = "_generator_manifest.json"
FILE_NAME = "part-0000.jsonl"
EMPTY_FILE_NAME = "part-0001.jsonl"  # the extra, empty file of a partition when bad lines are injected

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SECOND_MS = 1_000

# Order of the streams in this module; heap entries carry the index.
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


def _dict(**values):
    return field(default_factory=lambda: dict(values))


@dataclass(frozen=True)
class SimulationParameters:
    """Everything the simulation assumes that is not reference data. Shares are probabilities."""

    # --- traffic and routing
    channel_shares: dict = _dict(slack=0.40, email=0.30, chat=0.20, voice=0.10)
    tier_shares: dict = _dict(T1=0.08, T2=0.22, T3=0.42, T4=0.28)  # true severity of incoming tickets
    # Share of tickets whose topic belongs to each team; teams missing here get the mean share.
    team_route_shares: dict = _dict(
        team_billing=0.20,
        team_platform=0.18,
        team_accounts=0.20,
        team_integrations=0.12,
        team_security=0.08,
        team_general=0.22,
    )
    # Latent skill (0..1) per team and tier T1..T4; higher resolves faster and pleases customers more.
    team_skill: dict = _dict(
        team_billing=(0.70, 0.75, 0.80, 0.80),
        team_platform=(0.85, 0.80, 0.70, 0.65),
        team_accounts=(0.55, 0.60, 0.70, 0.75),
        team_integrations=(0.35, 0.40, 0.50, 0.55),
        team_security=(0.90, 0.85, 0.75, 0.70),
        team_general=(0.25, 0.35, 0.50, 0.60),
    )
    default_team_skill: tuple = (0.5, 0.5, 0.5, 0.5)
    # Load (1.0 = nominal); resolution time scales with load ** load_exponent.
    team_load: dict = _dict(
        team_billing=0.90,
        team_platform=1.10,
        team_accounts=1.00,
        team_integrations=1.25,
        team_security=0.80,
        team_general=1.20,
    )
    default_team_load: float = 1.0
    load_exponent: float = 1.0
    agent_speed_sd: float = 0.15  # log-sd of an agent's personal speed factor
    router_picks_agent_share: float = 0.70
    resolving_agent_known_share: float = 0.90  # when the router picked none, the desk names one this often
    follow_up_share: float = 0.12  # a decision in a recent thread (nearest-decision linking matters)
    same_conversation_share: float = 0.30  # a new thread in a recent conversation
    recent_threads_kept: int = 200

    # --- the router's rules and mistakes
    rule_version_shares: dict = _dict(**{"v2.2": 0.5, "v2.3": 0.5})
    rule_version_tier_error: dict = _dict(**{"v2.2": 0.15, "v2.3": 0.11})  # before reason-tag multipliers
    max_tier_error: float = 0.85
    adjacent_mistake_share: float = 0.85  # of tier mistakes, the share that lands on a neighbouring tier
    # Reason tags beside the topic tag: (share of decisions carrying it, multiplier of the tier error).
    signal_tags: dict = _dict(
        ambiguous_intent=(0.12, 2.6),
        multi_issue=(0.10, 1.9),
        short_message=(0.15, 1.5),
        keyword_match=(0.45, 0.6),
        vip_customer=(0.06, 1.0),
        after_hours=(0.20, 1.0),
        negative_sentiment=(0.18, 1.1),
    )
    # Action the desk wants per true tier; the router picks from the same table for its predicted tier.
    action_by_tier: dict = _dict(
        T1={"escalate": 0.80, "handle": 0.20},
        T2={"handle": 0.60, "escalate": 0.40},
        T3={"handle": 0.85, "defer": 0.15},
        T4={"handle": 0.45, "defer": 0.40, "ignore": 0.15},
    )
    action_kept_when_tier_right: float = 0.90
    ticketless_actions: tuple = ("ignore",)  # decisions with these actions open no ticket
    confidence_beta_correct: tuple = (8.0, 2.0)
    confidence_beta_mistaken: tuple = (4.0, 3.0)
    confidence_missing_share: float = 0.03
    latency_ms_median: float = 120.0
    latency_ms_sigma: float = 0.5
    outcome_message_share: float = 0.90
    weights_version_missing_share: float = 0.02

    # --- feedback
    feedback_share_correct: float = 0.15
    feedback_share_mistaken: float = 0.45
    feedback_sources: dict = _dict(explicit=0.45, reaction=0.35, implicit=0.20)
    feedback_delay_median_sec: dict = _dict(explicit=1200.0, reaction=180.0, implicit=5400.0)
    feedback_delay_sigma: float = 1.0
    # Per source: (share carrying decisionId, share carrying only linkedDecisionId); the rest carries
    # neither and is linked by channel + conversation + thread.
    feedback_reference: dict = _dict(explicit=(0.85, 0.10), reaction=(0.0, 0.70), implicit=(0.30, 0.30))
    orphan_feedback_share: float = 0.03  # feedback in a thread without any decision
    expected_labels_share: dict = _dict(explicit=0.95, reaction=0.60, implicit=0.80)
    feedback_text_share: dict = _dict(explicit=0.85, reaction=0.05, implicit=0.30)
    feedback_latency_missing_share: float = 0.10
    review_share_on_mismatch: float = 0.90
    review_share_on_match: float = 0.04

    # --- review queue
    review_open_delay_sec: tuple = (5, 120)
    review_resolved_share: float = 0.85
    review_resolve_median_hours: dict = _dict(high=2.0, medium=8.0, low=24.0)
    review_resolve_sigma: float = 0.8

    # --- tickets and SLA
    resolve_median_share: float = 0.50  # median resolve time / SLA target for an average team (skill 0.5)
    resolve_sigma: float = 0.45
    skill_effect: float = 1.2  # resolve time * exp(-skill_effect * (skill - 0.5))
    mistake_resolve_penalty: float = 1.25  # misrouted tickets are re-triaged
    max_resolve_share: float = 2.0
    min_resolve_minutes: float = 2.0
    variant_resolve_factor: dict = _dict(sla=1.0, sla_csat=0.93)  # the A/B signal
    first_response_median_share: float = 0.45
    first_response_sigma: float = 0.6
    interim_warn_share: float = 0.70  # tickets still open past the warn mark that get a `warn` line
    evaluation_lag_sec: tuple = (1, 300)

    # --- decision outcomes
    outcome_share: float = 0.93
    pending_outcome_share: float = 0.05
    success_correct: float = 0.90
    success_mistaken: float = 0.55
    success_breach_penalty: float = 0.20
    negative_outcome_types: dict = _dict(reopened=0.50, escalated=0.30, abandoned=0.15, error=0.05)
    outcome_sources: dict = _dict(automated=0.60, api=0.30, manual=0.10)
    outcome_lag_sec: tuple = (5, 900)
    pending_outcome_after_min: tuple = (30, 240)
    outcome_notes_share: float = 0.15

    # --- CSAT
    csat_share: float = 0.35
    csat_delay_median_hours: float = 3.0
    csat_delay_sigma: float = 1.0
    csat_max_delay_hours: float = 48.0
    csat_base: float = 4.45
    csat_resolve_effect: float = 0.9  # per unit of resolve time / target (capped at 2)
    csat_breach_penalty: float = 0.9
    csat_mistake_penalty: float = 0.3
    csat_skill_effect: float = 0.6
    csat_noise_sd: float = 0.7
    variant_csat_bonus: dict = _dict(sla=0.0, sla_csat=0.12)
    customer_pool: int = 40_000
    customer_email_share: float = 0.85
    csat_comment_share: float = 0.45
    personal_data_in_text_share: float = 0.35

    # --- bad lines
    recent_lines_kept: int = 64  # earlier lines per stream a re-delivery may repeat


PARAMETERS = SimulationParameters()


# --------------------------------------------------------------------------- reference data


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    tier: str
    first_response_minutes: float
    resolve_minutes: float
    warn_at_share: float


@dataclass(frozen=True)
class Reference:
    """The reference data the project owns (dbt_project/seeds), as the generator needs it."""

    teams: tuple[tuple[str, date | None, date | None], ...]  # (team_id, active_from, active_to)
    agents: tuple[tuple[str, str, date | None, date | None], ...]  # (agent_id, team_id, from, to)
    sla_policies: dict[str, SlaPolicy]  # by tier
    experiments: tuple[Experiment, ...]  # enabled ones, in file order (routerloop.experiments)


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text.strip() else None


def _active(day: date, active_from: date | None, active_to: date | None) -> bool:
    # active_to is the last active day (inclusive); empty means still active.
    return (active_from is None or active_from <= day) and (active_to is None or day <= active_to)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_reference(seeds_dir: Path | None = None) -> Reference:
    """Teams, agents, SLA policies and enabled experiments from the dbt seeds (experiments validated)."""
    seeds = seeds_dir or settings().dbt_project_dir / "seeds"
    teams = tuple(
        (r["team_id"], _day(r["active_from"]), _day(r["active_to"])) for r in _rows(seeds / "teams.csv")
    )
    agents = tuple(
        (r["agent_id"], r["team_id"], _day(r["active_from"]), _day(r["active_to"]))
        for r in _rows(seeds / "agents.csv")
    )
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


# --------------------------------------------------------------------------- small fast helpers

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_encode = msgspec.json.Encoder().encode
_hour_prefixes: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds -> `2026-11-22T13:05:10.123Z` (the hour prefix is cached: this runs a lot)."""
    hour, rest = divmod(ms, HOUR_MS)
    prefix = _hour_prefixes.get(hour)
    if prefix is None:
        if len(_hour_prefixes) > 4096:  # bounded, whatever the range
            _hour_prefixes.clear()
        prefix = _hour_prefixes[hour] = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:")
    minute, rest = divmod(rest, MINUTE_MS)
    second, milli = divmod(rest, SECOND_MS)
    return f"{prefix}{minute:02d}:{second:02d}.{milli:03d}Z"


def _to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class _Choice:
    """Weighted choice by bisecting cumulative weights (items in the given, deterministic order)."""

    def __init__(self, weights: dict):
        self.items = tuple(weights)
        total = 0.0
        self.cumulative = []
        for item in self.items:
            total += float(weights[item])
            self.cumulative.append(total)
        if total <= 0:
            raise ValueError(f"weights must sum to more than 0: {weights}")
        self.total = total

    def pick(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


class _Ids:
    """Unique, random-looking ids: a 48-bit bijection of a per-prefix counter, keyed by the seed."""

    _MASK = (1 << 48) - 1
    _MULTIPLIER = 0x5DEECE66D  # odd, so multiplication mod 2**48 is a bijection

    def __init__(self, seed: int):
        self.seed = seed
        self.counters: dict[str, int] = {}
        self.keys: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0)
        self.counters[prefix] = n + 1
        key = self.keys.get(prefix)
        if key is None:
            digest = hashlib.sha256(f"{self.seed}:{prefix}".encode()).digest()
            key = self.keys[prefix] = int.from_bytes(digest[:6], "big")
        x = n ^ key
        for _ in range(2):  # two multiply-xorshift rounds: neighbouring counters look unrelated
            x = (x * self._MULTIPLIER) & self._MASK
            x ^= x >> 24
        return f"{prefix}{x:012x}"


# Personal data for the privacy work to find. Reserved example domains and fictional phone ranges.
_FIRST = ("amelia", "noah", "sofia", "liam", "mia", "lucas", "emma", "mateo", "ava", "leo",
          "chloe", "omar", "yuki", "priya", "jonas", "ines", "tomas", "zoe", "arjun", "lena")
_LAST = ("smith", "garcia", "mueller", "rossi", "kowalski", "nguyen", "silva", "dubois", "jensen", "tanaka",
         "okafor", "novak", "larsen", "moreau", "patel", "schmidt", "costa", "ivanova", "haddad", "brennan")
_DISPLAY = {"ines": "Inès", "zoe": "Zoë", "mueller": "Müller", "jonas": "Jonas", "tomas": "Tomás"}
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


def _customer(index: int) -> tuple[str, str, str]:
    """(display name, email, phone) of customer number `index`; the same index gives the same person."""
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index // len(_FIRST)) % len(_LAST)]
    name = f"{_DISPLAY.get(first, first.title())} {_DISPLAY.get(last, last.title())}"
    email = f"{first}.{last}{index % 1000}@{_DOMAINS[(index // 400) % len(_DOMAINS)]}"
    phone = f"+1 415 555 01{index % 100:02d}" if index % 2 else f"+44 20 7946 0{index % 1000:03d}"
    return name, email, phone


_REACTIONS_RIGHT = ("+1", "white_check_mark", "thumbsup")
_REACTIONS_TOO_SEVERE = ("arrow_down", "-1")
_REACTIONS_NOT_SEVERE_ENOUGH = ("arrow_up", "rotating_light", "-1")
_REACTIONS_WRONG_ACTION = ("-1", "thumbsdown", "eyes")
_FEEDBACK_TIER_TEXT = (
    "This is a {expected}, not a {predicted}.",
    "Should have been {expected}: the customer is blocked.",
    "Wrong tier ({predicted}), looks like {expected} to me.",
    "Downgrade/upgrade needed: {expected} please.",
)
_FEEDBACK_ACTION_TEXT = (
    "Needs {expected_action}, not {predicted_action}.",
    "We should {expected_action} this one.",
)
_FEEDBACK_RIGHT_TEXT = ("Correct call.", "Right team, right tier.", "Good routing, thanks.", "Agree with the bot.")
_FEEDBACK_PII_TEXT = (
    " Customer {name} <{email}>, phone {phone}.",
    " Call {name} back on {phone}.",
    " Reply to {email} when done.",
)
_CSAT_TEXT = {
    5: ("Quick and friendly, thanks!", "Solved in minutes.", "Great support."),
    4: ("Good help, took a bit long.", "Fixed, thanks.", "Helpful agent."),
    3: ("OK in the end but I had to chase.", "Average experience."),
    2: ("Took far too long.", "Had to explain the issue three times."),
    1: ("Nobody answered for days.", "Still broken, very disappointed.", "Terrible, escalating this."),
}
_CSAT_PII_TEXT = (
    " You can reach me at {email}.",
    " Call me on {phone} if you need more details.",
    " - {name} ({email}, {phone})",
)
_REVIEW_RESOLUTIONS_MISMATCH = ("confirmed_router_error", "rubric_updated", "regression_example_added")
_REVIEW_RESOLUTIONS_MATCH = ("router_correct", "no_action")
_OUTCOME_NOTES = {
    True: ("customer confirmed fix", "auto-closed after 48h without reply"),
    False: ("reopened by customer", "handed to another team", "customer stopped responding"),
}


# --------------------------------------------------------------------------- the simulation


class _Simulation:
    """Makes the decisions of an hour and schedules what follows from them on a time-keyed heap."""

    def __init__(self, reference: Reference, params: SimulationParameters, seed: int, end_ms: int, writer):
        self.ref = reference
        self.p = params
        self.seed = seed
        self.end_ms = end_ms
        self.writer = writer
        self.rng = random.Random(f"routerloop-simulation:{seed}")
        self.ids = _Ids(seed)
        self.pending: list[tuple[int, int, int, bytes]] = []  # (time ms, sequence, stream, line)
        self.sequence = 0

        p = params
        self.channels = _Choice(p.channel_shares)
        self.tiers = _Choice({i: p.tier_shares[t] for i, t in enumerate(contract.TIERS)})
        self.rules = _Choice(p.rule_version_shares)
        self.actions = [_Choice(p.action_by_tier[t]) for t in contract.TIERS]
        self.feedback_sources = _Choice(p.feedback_sources)
        self.negative_outcomes = _Choice(p.negative_outcome_types)
        self.outcome_sources = _Choice(p.outcome_sources)
        self.signal_tags = tuple((tag, share, multiplier) for tag, (share, multiplier) in p.signal_tags.items())
        self.policies = [reference.sla_policies[t] for t in contract.TIERS]
        team_ids = [team_id for team_id, _, _ in reference.teams]
        mean_share = sum(p.team_route_shares.values()) / max(1, len(p.team_route_shares))
        self.route_share = {t: p.team_route_shares.get(t, mean_share) for t in team_ids}
        self.skill = {t: tuple(p.team_skill.get(t, p.default_team_skill)) for t in team_ids}
        self.load_factor = {t: p.team_load.get(t, p.default_team_load) ** p.load_exponent for t in team_ids}
        self.topic_tag = {t: "topic:" + t.removeprefix("team_") for t in team_ids}
        speeds = random.Random(f"routerloop-agents:{seed}")
        self.agent_speed = {a[0]: math.exp(speeds.gauss(0.0, p.agent_speed_sd)) for a in reference.agents}
        self.recent_threads: deque = deque(maxlen=p.recent_threads_kept)
        self.experiments = [(_to_ms(e.starts_at), _to_ms(e.ends_at), e) for e in reference.experiments]
        self._day = None
        self._day_state: tuple = ()

    # ----------------------------------------------------------------- scheduling

    def emit(self, stream: int, at_ms: int, record: dict) -> None:
        if at_ms >= self.end_ms:
            return  # happens after the generated range: not written
        if stream == DECISIONS:  # made in time order, written straight away
            self.writer.add(DECISIONS, _encode(record))
            return
        self.sequence += 1
        heapq.heappush(self.pending, (at_ms, self.sequence, stream, _encode(record)))

    def run_hour(self, hour_start_ms: int, decisions: int) -> None:
        rng = self.rng
        times = sorted(hour_start_ms + int(rng.random() * HOUR_MS) for _ in range(decisions))
        for at_ms in times:
            self.decide(at_ms)
        hour_end_ms = hour_start_ms + HOUR_MS
        pending, add = self.pending, self.writer.add
        while pending and pending[0][0] < hour_end_ms:
            _, _, stream, line = heapq.heappop(pending)
            add(stream, line)

    # ----------------------------------------------------------------- reference data by day

    def _today(self, at_ms: int):
        day_number = at_ms // (24 * HOUR_MS)
        if day_number != self._day:
            day = _EPOCH.date() + timedelta(days=day_number)
            teams = [t for t, start, end in self.ref.teams if _active(day, start, end)]
            if not teams:
                raise ValueError(f"no team in teams.csv is active on {day}")
            agents = {t: [] for t in teams}
            for agent_id, team_id, start, end in self.ref.agents:
                if team_id in agents and _active(day, start, end):
                    agents[team_id].append(agent_id)
            previous = day - timedelta(days=1)
            digest = hashlib.sha256(f"{self.seed}:weights:{previous.isoformat()}".encode()).hexdigest()
            weights_version = f"{previous:%Y%m%d}-{digest[:12]}"
            self._day = day_number
            self._day_state = (_Choice({t: self.route_share[t] for t in teams}), agents, weights_version)
        return self._day_state

    def _experiment(self, at_ms: int, ticket_id: str) -> tuple[str | None, str | None]:
        for starts_ms, ends_ms, experiment in self.experiments:
            if starts_ms <= at_ms < ends_ms:  # one experiment per decision: the first running one
                return experiment.experiment_id, experiment.assign(ticket_id).name
        return None, None

    # ----------------------------------------------------------------- one decision and its aftermath

    def _thread(self, at_ms: int) -> tuple[str, str, str]:
        rng, p, recent = self.rng, self.p, self.recent_threads
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

    def _mistaken_tier(self, true_tier: int) -> int:
        rng, last = self.rng, len(contract.TIERS) - 1
        if rng.random() < self.p.adjacent_mistake_share:
            options = [t for t in (true_tier - 1, true_tier + 1) if 0 <= t <= last]
        else:
            options = [t for t in range(last + 1) if abs(t - true_tier) >= 2]
        return rng.choice(options)

    def decide(self, at_ms: int) -> None:
        rng, p, ids = self.rng, self.p, self.ids
        teams, agents_by_team, weights_version = self._today(at_ms)
        channel, conversation, thread = self._thread(at_ms)
        true_tier = self.tiers.pick(rng)
        team = teams.pick(rng)
        tags = [self.topic_tag[team]]
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
        agents = agents_by_team[team]
        agent = rng.choice(agents) if agents and rng.random() < p.router_picks_agent_share else None
        decision_id = ids.next("rd_")
        ticket_id = None if predicted_action in p.ticketless_actions else ids.next("tk_")
        experiment_id, variant = self._experiment(at_ms, ticket_id) if ticket_id else (None, None)
        record = {
            "decisionId": decision_id,
            "createdAt": iso_ms(at_ms),
            "channelId": channel,
            "conversationId": conversation,
            "threadId": thread,
            "inputMessageId": ids.next("msg_"),
            "outcomeMessageId": ids.next("msg_") if rng.random() < p.outcome_message_share else None,
            "ticketId": ticket_id,
            "predictedTier": contract.TIERS[predicted_tier],
            "predictedAction": predicted_action,
            "confidence": confidence,
            "reasonTags": tags,
            "teamId": team,
            "agentId": agent,
            "ruleVersion": rule,
            "experimentId": experiment_id,
            "variant": variant,
            "weightsVersion": None if rng.random() < p.weights_version_missing_share else weights_version,
            "latencyMs": int(rng.lognormvariate(math.log(p.latency_ms_median), p.latency_ms_sigma)),
        }
        self.emit(DECISIONS, at_ms, record)

        customer = rng.randrange(p.customer_pool)
        decision = (decision_id, at_ms, channel, conversation, thread, true_tier, predicted_tier, true_action,
                    predicted_action, correct, customer)
        if rng.random() < (p.feedback_share_correct if correct else p.feedback_share_mistaken):
            self._feedback(decision)
        if ticket_id is None:
            self._outcome(decision_id, at_ms, correct, None)
        else:
            self._ticket(decision, ticket_id, team, agent, agents, variant)

    def _feedback(self, decision: tuple) -> None:
        rng, p, ids = self.rng, self.p, self.ids
        (decision_id, at_ms, channel, conversation, thread, true_tier, predicted_tier, true_action,
         predicted_action, correct, customer) = decision
        source = self.feedback_sources.pick(rng)
        delay_sec = rng.lognormvariate(math.log(p.feedback_delay_median_sec[source]), p.feedback_delay_sigma)
        created_ms = at_ms + int(delay_sec * 1000)
        orphan = rng.random() < p.orphan_feedback_share
        referenced = linked = None
        if orphan:  # a thread no decision was made in: links to nothing
            channel = self.channels.pick(rng)
            conversation, thread = ids.next("cv_"), ids.next("th_")
        else:
            by_id, linked_only = p.feedback_reference[source]
            roll = rng.random()
            if roll < by_id:
                referenced = decision_id
            elif roll < by_id + linked_only:
                linked = decision_id
        labelled = rng.random() < p.expected_labels_share[source]
        expected_tier = contract.TIERS[true_tier] if labelled else None
        expected_action = true_action if labelled else None
        needs_review = not orphan and rng.random() < (
            p.review_share_on_match if correct else p.review_share_on_mismatch
        )
        reaction = None
        if source == "reaction":
            if correct:
                reaction = rng.choice(_REACTIONS_RIGHT)
            elif predicted_tier < true_tier:
                reaction = rng.choice(_REACTIONS_TOO_SEVERE)
            elif predicted_tier > true_tier:
                reaction = rng.choice(_REACTIONS_NOT_SEVERE_ENOUGH)
            else:
                reaction = rng.choice(_REACTIONS_WRONG_ACTION)
        free_text = None
        if rng.random() < p.feedback_text_share[source]:
            values = {
                "expected": contract.TIERS[true_tier],
                "predicted": contract.TIERS[predicted_tier],
                "expected_action": true_action,
                "predicted_action": predicted_action,
            }
            if predicted_tier != true_tier:
                free_text = rng.choice(_FEEDBACK_TIER_TEXT).format(**values)
            elif predicted_action != true_action:
                free_text = rng.choice(_FEEDBACK_ACTION_TEXT).format(**values)
            else:
                free_text = rng.choice(_FEEDBACK_RIGHT_TEXT)
            if rng.random() < p.personal_data_in_text_share:
                name, email, phone = _customer(customer)
                free_text += rng.choice(_FEEDBACK_PII_TEXT).format(name=name, email=email, phone=phone)
        staff = rng.randrange(len(_FIRST) * len(_LAST))  # the same person gives feedback again and again
        if channel == "slack":
            actor = f"U0{staff * 2654435761 % 16**9:09X}"
        else:
            actor = f"{_FIRST[staff % len(_FIRST)]}.{_LAST[staff // len(_FIRST)]}@support.example.com"
        feedback_id = ids.next("rf_")
        record = {
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
            "expectedTier": expected_tier,
            "expectedAction": expected_action,
            "reaction": reaction,
            "freeText": free_text,
            "latencyFromDecisionSec": (
                None if orphan or rng.random() < p.feedback_latency_missing_share else round(delay_sec, 3)
            ),
            "needsReview": needs_review,
        }
        self.emit(FEEDBACK, created_ms, record)
        if needs_review:
            self._review(decision, feedback_id, created_ms)

    def _review(self, decision: tuple, feedback_id: str, feedback_ms: int) -> None:
        rng, p = self.rng, self.p
        (decision_id, _, _, _, _, true_tier, predicted_tier, true_action, predicted_action, correct, _) = decision
        low, high = p.review_open_delay_sec
        opened_ms = feedback_ms + rng.randint(low, high) * 1000
        gap = abs(predicted_tier - true_tier)
        if true_tier == 0 or gap >= 2 or (true_action == "escalate" and predicted_action != "escalate"):
            severity = "high"
        elif gap or true_tier == 1:
            severity = "medium"
        else:
            severity = "low"
        if gap:
            reason = f"tier mismatch: predicted {contract.TIERS[predicted_tier]}, expected {contract.TIERS[true_tier]}"
        elif predicted_action != true_action:
            reason = f"action mismatch: predicted {predicted_action}, expected {true_action}"
        else:
            reason = "reviewer flagged uncertain routing"
        record = {
            "reviewId": self.ids.next("rv_"),
            "createdAt": iso_ms(opened_ms),
            "updatedAt": iso_ms(opened_ms),
            "linkedDecisionId": decision_id,
            "feedbackId": feedback_id,
            "severity": severity,
            "reason": reason,
            "status": "open",
            "resolvedAt": None,
            "resolution": None,
        }
        self.emit(REVIEWS, opened_ms, record)
        if rng.random() < p.review_resolved_share:
            hours = rng.lognormvariate(math.log(p.review_resolve_median_hours[severity]), p.review_resolve_sigma)
            resolved_ms = opened_ms + max(MINUTE_MS, int(hours * HOUR_MS))
            resolved = dict(record)
            resolved.update(
                updatedAt=iso_ms(resolved_ms),
                status="resolved",
                resolvedAt=iso_ms(resolved_ms),
                resolution=rng.choice(_REVIEW_RESOLUTIONS_MATCH if correct else _REVIEW_RESOLUTIONS_MISMATCH),
            )
            self.emit(REVIEWS, resolved_ms, resolved)

    def _ticket(self, decision: tuple, ticket_id: str, team: str, agent, agents: list, variant) -> None:
        rng, p = self.rng, self.p
        (decision_id, at_ms, _, _, _, _, predicted_tier, _, _, correct, customer) = decision
        policy = self.policies[predicted_tier]  # the desk works to the tier the router gave the ticket
        skill = self.skill[team][predicted_tier]
        resolver = agent
        if resolver is None and agents and rng.random() < p.resolving_agent_known_share:
            resolver = rng.choice(agents)
        median = (
            p.resolve_median_share
            * math.exp(-p.skill_effect * (skill - 0.5))
            * self.load_factor[team]
            * p.variant_resolve_factor.get(variant, 1.0)
            * (1.0 if correct else p.mistake_resolve_penalty)
            * (self.agent_speed.get(resolver, 1.0) if resolver else 1.0)
        )
        target_ms = int(policy.resolve_minutes * MINUTE_MS)
        share = min(p.max_resolve_share, median * rng.lognormvariate(0.0, p.resolve_sigma))
        resolve_ms = max(int(p.min_resolve_minutes * MINUTE_MS), int(share * target_ms))
        opened_ms = at_ms + rng.randrange(30 * SECOND_MS)
        resolved_ms = opened_ms + resolve_ms
        first_response_ms = opened_ms + min(
            resolve_ms,
            int(policy.first_response_minutes * MINUTE_MS * p.first_response_median_share
                * self.load_factor[team] * rng.lognormvariate(0.0, p.first_response_sigma)),
        )
        warn_ms = int(policy.warn_at_share * target_ms)
        outcome = "breach" if resolve_ms > target_ms else "warn" if resolve_ms > warn_ms else "attained"
        base = {
            "ticketId": ticket_id,
            "decisionId": decision_id,
            "teamId": team,
            "agentId": resolver,
            "tier": contract.TIERS[predicted_tier],
            "slaPolicy": policy.name,
            "openedAt": iso_ms(opened_ms),
        }
        low, high = p.evaluation_lag_sec
        if resolve_ms > warn_ms and rng.random() < p.interim_warn_share:
            evaluated_ms = opened_ms + warn_ms + rng.randint(low, high) * 1000
            if evaluated_ms < resolved_ms:  # still open when checked; the final line supersedes it
                self.emit(SLA, evaluated_ms, {
                    **base,
                    "firstResponseAt": iso_ms(first_response_ms) if first_response_ms <= evaluated_ms else None,
                    "resolvedAt": None,
                    "targetResolveBy": iso_ms(opened_ms + target_ms),
                    "outcome": "warn",
                    "evaluatedAt": iso_ms(evaluated_ms),
                })
        evaluated_ms = resolved_ms + rng.randint(low, high) * 1000
        self.emit(SLA, evaluated_ms, {
            **base,
            "firstResponseAt": iso_ms(first_response_ms),
            "resolvedAt": iso_ms(resolved_ms),
            "targetResolveBy": iso_ms(opened_ms + target_ms),
            "outcome": outcome,
            "evaluatedAt": iso_ms(evaluated_ms),
        })
        breach = outcome == "breach"
        self._outcome(decision_id, at_ms, correct, (resolved_ms, breach))

        if rng.random() < p.csat_share:
            delay_hours = min(p.csat_max_delay_hours,
                              rng.lognormvariate(math.log(p.csat_delay_median_hours), p.csat_delay_sigma))
            submitted_ms = resolved_ms + int(delay_hours * HOUR_MS)
            latent = (
                p.csat_base
                - p.csat_resolve_effect * min(resolve_ms / target_ms, 2.0)
                - (p.csat_breach_penalty if breach else 0.0)
                - (0.0 if correct else p.csat_mistake_penalty)
                + p.csat_skill_effect * (skill - 0.5)
                + p.variant_csat_bonus.get(variant, 0.0)
                + rng.gauss(0.0, p.csat_noise_sd)
            )
            rating = min(5, max(1, math.floor(latent + 0.5)))
            name, email, phone = _customer(customer)
            comment = None
            if rng.random() < p.csat_comment_share:
                comment = rng.choice(_CSAT_TEXT[rating])
                if rng.random() < p.personal_data_in_text_share:
                    comment += rng.choice(_CSAT_PII_TEXT).format(name=name, email=email, phone=phone)
            self.emit(CSAT, submitted_ms, {
                "ratingId": self.ids.next("cs_"),
                "ticketId": ticket_id,
                "teamId": team,
                "agentId": resolver,
                "customerId": "cus_" + f"{customer:06d}",
                "customerEmail": email if rng.random() < p.customer_email_share else None,
                "rating": rating,
                "comment": comment,
                "submittedAt": iso_ms(submitted_ms),
            })

    def _outcome(self, decision_id: str, at_ms: int, correct: bool, resolution) -> None:
        rng, p = self.rng, self.p
        if rng.random() >= p.outcome_share:
            return
        low, high = p.outcome_lag_sec
        with_notes = rng.random() < p.outcome_notes_share
        if rng.random() < p.pending_outcome_share:
            lo, hi = p.pending_outcome_after_min
            recorded_ms = at_ms + rng.randint(lo, hi) * MINUTE_MS
            positive, outcome_type = None, "escalated"
            notes = "awaiting confirmation" if with_notes else None
        else:
            resolved_ms, breach = resolution if resolution else (at_ms, False)
            recorded_ms = resolved_ms + rng.randint(low, high) * 1000
            success = (p.success_correct if correct else p.success_mistaken) - (
                p.success_breach_penalty if breach else 0.0
            )
            positive = rng.random() < success
            outcome_type = "resolved" if positive else self.negative_outcomes.pick(rng)
            notes = rng.choice(_OUTCOME_NOTES[positive]) if with_notes else None
        self.emit(OUTCOMES, recorded_ms, {
            "outcomeId": self.ids.next("oc_"),
            "decisionId": decision_id,
            "recordedAt": iso_ms(recorded_ms),
            "outcomePositive": positive,
            "outcomeType": outcome_type,
            "outcomeValue": round((recorded_ms - at_ms) / MINUTE_MS, 1),
            "source": self.outcome_sources.pick(rng),
            "notes": notes,
        })


# --------------------------------------------------------------------------- bad lines

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


def _break(stream: str, line: bytes, kind: str, rng: random.Random) -> bytes:
    """A copy of `line` that breaks exactly one contract rule, the one `kind` names."""
    spec = contract.STREAMS[stream]
    record = json.loads(line)
    if kind == "not_utf8":
        record[rng.choice(_TEXT_FIELDS[stream])] = _NOT_UTF8_MARK
        return _encode(record).replace(_NOT_UTF8_MARK.encode(), rng.choice(_NOT_UTF8_BYTES))
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
    return _encode(record)


class _Writer:
    """Collects an hour's lines per stream, injects bad lines, writes files, and counts everything."""

    def __init__(self, out: Path, bad_rate: float, seed: int, params: SimulationParameters, empty_hour: int):
        self.out = str(out)
        self.bad_rate = bad_rate
        self.empty_hour = empty_hour if bad_rate > 0 else -1
        self.rng = random.Random(f"routerloop-bad-lines:{seed}")
        self.buffers: list[list[tuple[bytes, str | None]]] = [[] for _ in STREAM_NAMES]  # (line, fault)
        self.recent = [deque(maxlen=params.recent_lines_kept) for _ in STREAM_NAMES]
        self.truncations_due = [0 for _ in STREAM_NAMES]
        self.faults = [applicable_faults(name) for name in STREAM_NAMES]
        self.cycles: list[list[str]] = [[] for _ in STREAM_NAMES]
        self.files = {name: {"files": 0, "lines": 0, "valid": 0} for name in STREAM_NAMES}
        self.injected: dict[str, dict[str, int]] = {name: {} for name in STREAM_NAMES}
        self.duplicates = {name: 0 for name in STREAM_NAMES}
        self.empty_files: list[str] = []
        self.lines_written = 0

    def _next_fault(self, stream: int) -> str:
        # Each stream cycles through all its faults in a shuffled order, so every kind shows up early.
        cycle = self.cycles[stream]
        if not cycle:
            cycle.extend(self.faults[stream])
            self.rng.shuffle(cycle)
        return cycle.pop()

    def add(self, stream: int, line: bytes) -> None:
        buffer = self.buffers[stream]
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
            buffer.append((_break(STREAM_NAMES[stream], line, fault, self.rng), fault))

    def flush(self, hour_index: int, hour: datetime) -> None:
        # Plain string paths: pathlib would intern every partition name, a table that only grows.
        partition = f"dt={hour:%Y-%m-%d}/hr={hour:%H}"
        for stream, name in enumerate(STREAM_NAMES):
            folder = os.path.join(self.out, name, partition)
            buffer = self.buffers[stream]
            if hour_index == self.empty_hour:
                os.makedirs(folder, exist_ok=True)
                _write_atomically(folder, EMPTY_FILE_NAME, b"")
                self.files[name]["files"] += 1
                self.empty_files.append(f"{name}/{partition}/{EMPTY_FILE_NAME}")
            if not buffer:
                continue
            if buffer[-1][1] == "invalid_json":
                # Keep broken JSON off the last line, where a reader could take it for a cut-short line.
                # Lines after it in the file are never repeated by it, so moving it first is safe.
                buffer.insert(0, buffer.pop())
            truncated = False
            if self.truncations_due[stream] and buffer[-1][1] is None:
                text = buffer[-1][0].decode()
                buffer[-1] = (text[: self.rng.randrange(1, len(text))].encode(), "truncated_line")
                self.truncations_due[stream] -= 1
                truncated = True
            data = b"\n".join(line for line, _ in buffer)
            os.makedirs(folder, exist_ok=True)
            _write_atomically(folder, FILE_NAME, data if truncated else data + b"\n")
            counts = self.files[name]
            counts["files"] += 1
            counts["lines"] += len(buffer)
            injected, recent = self.injected[name], self.recent[stream]
            for line, fault in buffer:
                if fault is None:
                    counts["valid"] += 1
                    recent.append(line)
                elif fault == DUPLICATE:
                    counts["valid"] += 1
                    self.duplicates[name] += 1
                else:
                    injected[fault] = injected.get(fault, 0) + 1
            self.lines_written += len(buffer)
            buffer.clear()


def _write_atomically(folder: str | Path, name: str, data: bytes) -> None:
    # A reader never sees a half-written .jsonl: write a hidden temporary name, then rename.
    temporary = os.path.join(folder, f".{name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, os.path.join(folder, name))


def _clear_previous_output(out: Path) -> int:
    """Remove files an earlier run of the generator wrote (only its own file names), so none go stale."""
    removed = 0
    for name in STREAM_NAMES:
        for pattern in ("dt=*/hr=*/part-*.jsonl", "dt=*/hr=*/.part-*.jsonl.tmp"):
            for path in sorted((out / name).glob(pattern)):
                path.unlink()
                removed += 1
    return removed


# --------------------------------------------------------------------------- entry point


def generate(
    out: Path,
    start: datetime,
    hours: int,
    seed: int,
    decisions_per_hour: int = 2000,
    bad_rate: float = 0.0,
    progress: bool = False,
    *,
    parameters: SimulationParameters | None = None,
) -> dict:
    """Write `hours` hours of the six streams from `start` (a whole UTC hour) under `out`.

    Returns the manifest, also written to `<out>/_generator_manifest.json`:
    `streams[s]` = files (including empty ones), lines (every line, bad ones too) and valid (lines that
    pass the contract, re-deliveries included); `injected[s]` = bad lines per REASONS code (codes that
    did not occur are left out); `duplicates[s]` = re-delivered lines (landing keeps valid - duplicates
    rows); `empty_files` = the empty files, relative to `out`.
    """
    if start.tzinfo is None:
        raise ValueError(f"start {start.isoformat()} has no timezone")
    start = start.astimezone(UTC)
    if start != start.replace(minute=0, second=0, microsecond=0):
        raise ValueError(f"start {start.isoformat()} is not a whole hour; partitions are hourly")
    if hours < 1 or decisions_per_hour < 0:
        raise ValueError("hours must be at least 1 and decisions_per_hour at least 0")
    if not 0.0 <= bad_rate < 1.0:
        raise ValueError(f"bad_rate must lie in [0, 1), got {bad_rate}")
    params = parameters or PARAMETERS
    reference = load_reference()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous_output(out)

    start_ms = _to_ms(start)
    writer = _Writer(out, bad_rate, seed, params, empty_hour=hours // 2)
    simulation = _Simulation(reference, params, seed, start_ms + hours * HOUR_MS, writer)
    for hour_index in range(hours):
        simulation.run_hour(start_ms + hour_index * HOUR_MS, decisions_per_hour)
        hour = start + timedelta(hours=hour_index)
        writer.flush(hour_index, hour)
        if progress and (hour.hour == 23 or hour_index == hours - 1):
            print(
                f"generate: {hour:%Y-%m-%d} done, {hour_index + 1}/{hours} hours, "
                f"{writer.lines_written:,} lines",
                file=sys.stderr,
                flush=True,
            )

    manifest = {
        "seed": seed,
        "start": iso_ms(start_ms),
        "hours": hours,
        "decisions_per_hour": decisions_per_hour,
        "bad_rate": bad_rate,
        "streams": writer.files,
        "injected": {name: dict(sorted(counts.items())) for name, counts in writer.injected.items()},
        "duplicates": writer.duplicates,
        "empty_files": writer.empty_files,
    }
    _write_atomically(out, MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest
