"""The knobs of a simulation run: every assumption that is not reference data (dbt_project/seeds)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
