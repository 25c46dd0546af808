"""People and words: customers, support staff, feedback and CSAT texts, notes and resolutions.

The personal data is there for the privacy work to find: emails, phone numbers and account numbers in
free text (bench/scrubber_quality.py measures the scrubber on them). Reserved example domains and
fictional phone ranges only.
"""

from __future__ import annotations

from functools import cache

_FIRST = ("amelia", "noah", "sofia", "liam", "mia", "lucas", "emma", "mateo", "ava", "leo",
          "chloe", "omar", "yuki", "priya", "jonas", "ines", "tomas", "zoe", "arjun", "lena")
_LAST = ("smith", "garcia", "mueller", "rossi", "kowalski", "nguyen", "silva", "dubois", "jensen", "tanaka",
         "okafor", "novak", "larsen", "moreau", "patel", "schmidt", "costa", "ivanova", "haddad", "brennan")
_DISPLAY = {"ines": "Inès", "zoe": "Zoë", "mueller": "Müller", "jonas": "Jonas", "tomas": "Tomás"}
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")

STAFF_SIZE = len(_FIRST) * len(_LAST)  # support staff who give feedback, numbered 0..STAFF_SIZE-1


def customer(index: int) -> tuple[str, str, str]:
    """(display name, email, phone) of customer number `index`; the same index gives the same person."""
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index // len(_FIRST)) % len(_LAST)]
    name = f"{_DISPLAY.get(first, first.title())} {_DISPLAY.get(last, last.title())}"
    email = f"{first}.{last}{index % 1000}@{_DOMAINS[(index // 400) % len(_DOMAINS)]}"
    phone = f"+1 415 555 01{index % 100:02d}" if index % 2 else f"+44 20 7946 0{index % 1000:03d}"
    return name, email, phone


def account_id(index: int) -> str:
    """The account number customer `index` quotes in free text (not their customerId)."""
    return f"ACC-{index * 2654435761 % 10**8:08d}"


def staff_actor(index: int, channel: str) -> str:
    """The actor id of staff member `index` on `channel`: a Slack user id, elsewhere an email address."""
    if channel == "slack":
        return f"U0{index * 2654435761 % 16**9:09X}"
    return f"{_FIRST[index % len(_FIRST)]}.{_LAST[index // len(_FIRST)]}@support.example.com"


REACTIONS_RIGHT = ("+1", "white_check_mark", "thumbsup")
REACTIONS_TOO_SEVERE = ("arrow_down", "-1")
REACTIONS_NOT_SEVERE_ENOUGH = ("arrow_up", "rotating_light", "-1")
REACTIONS_WRONG_ACTION = ("-1", "thumbsdown", "eyes")
FEEDBACK_TIER_TEXT = (
    "This is a {expected}, not a {predicted}.",
    "Should have been {expected}: the customer is blocked.",
    "Wrong tier ({predicted}), looks like {expected} to me.",
    "Downgrade/upgrade needed: {expected} please.",
)
FEEDBACK_ACTION_TEXT = (
    "Needs {expected_action}, not {predicted_action}.",
    "We should {expected_action} this one.",
)
FEEDBACK_RIGHT_TEXT = ("Correct call.", "Right team, right tier.", "Good routing, thanks.", "Agree with the bot.")
FEEDBACK_PII_TEXT = (
    " Customer {name} <{email}>, phone {phone}.",
    " Call {name} back on {phone}.",
    " Reply to {email} when done, account {account}.",
)
CSAT_TEXT = {
    5: ("Quick and friendly, thanks!", "Solved in minutes.", "Great support."),
    4: ("Good help, took a bit long.", "Fixed, thanks.", "Helpful agent."),
    3: ("OK in the end but I had to chase.", "Average experience."),
    2: ("Took far too long.", "Had to explain the issue three times."),
    1: ("Nobody answered for days.", "Still broken, very disappointed.", "Terrible, escalating this."),
}
CSAT_PII_TEXT = (
    " You can reach me at {email}, my account is {account}.",
    " Call me on {phone} if you need more details.",
    " - {name} ({email}, {phone})",
)
REVIEW_RESOLUTIONS_MISMATCH = ("confirmed_router_error", "rubric_updated", "regression_example_added")
REVIEW_RESOLUTIONS_MATCH = ("router_correct", "no_action")
OUTCOME_NOTES = {
    True: ("customer confirmed fix", "auto-closed after 48h without reply"),
    False: ("reopened by customer", "handed to another team", "customer stopped responding"),
}


# The kinds of personal value planted in free text, by template field, with the placeholder the
# scrubber (dbt_project/macros/privacy.sql) must put in their place. Names are planted too but are not
# a scrubbed kind.
PLANTED_KINDS = {"email": "[EMAIL]", "phone": "[PHONE]", "account": "[ACCOUNT_ID]"}


@cache
def _template_pattern(template: str):
    import re

    pattern = re.escape(template)
    for name in ("name", "email", "phone", "account"):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>.+?)", 1)
    return re.compile(pattern + "$")


def planted_values(text: str | None) -> dict[str, list[str]]:
    """The personal values the generator appended to a feedback or CSAT text, by kind (empty: none)."""
    if not text:
        return {}
    for template in FEEDBACK_PII_TEXT + CSAT_PII_TEXT:
        match = _template_pattern(template).search(text)
        if match:
            found = match.groupdict()
            return {kind: [found[kind]] for kind in PLANTED_KINDS if found.get(kind)}
    return {}
