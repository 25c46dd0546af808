"""Recall and precision of the free-text scrubber (dbt macro scrub_personal_text, macros/privacy.sql).

    PYTHONPATH=plugins python bench/scrubber_quality.py [--hours 168] [--decisions-per-hour 100] [--seed 7]

1. Generated data: the generator's CSAT comments and feedback free text (routerloop.simulation), whose
   planted emails, phone numbers and account numbers are known exactly (texts.planted_values). Each text
   goes through the real macro in PostgreSQL (`dbt show --inline`, the warehouse of
   ROUTERLOOP_DATABASE_URL or the embedded server; nothing is written to it). Recall per kind: planted
   values gone from the text. Precision: placeholders that stand for a planted value of their kind.
2. A hand-written challenge set beyond the generator's formats: values it must catch, values it is
   known to miss (README lists them), and personal-looking text that is not personal data.

Prints a table and, last, one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from routerloop.build import run_dbt
from routerloop.simulation import generate, texts

# (kind or None for not personal, text, whether the scrubber gets it right: removes a personal value,
# keeps a text that holds none)
CHALLENGE = [
    ("email", "Write to JANE.DOE+support@Example.CO.UK today.", True),
    ("email", "cc: ops_team-2@mail.example.org", True),
    ("phone", "Call 020 7946 0958 after 5.", True),
    ("phone", "Mobile (415) 555-0199.", True),
    ("phone", "Reach me on 415.555.0123.", True),
    ("phone", "Tel +49 (0)30 1234 5678.", True),
    ("phone", "+33612345678", True),
    ("account", "acct #7712345 is locked", True),
    ("account", "customer id cus_99881 again", True),
    ("account", "Account no. 00451234.", True),
    ("email", "jane dot doe at example dot com", False),
    ("phone", "call 4155550123 please", False),
    ("phone", "ring five five five, zero one two three", False),
    ("account", "my account number is 12345678", False),
    ("account", "IBAN GB82 WEST 1234 5698 7654 32", False),
    (None, "Escalated on 2026-11-01 at 10:30, rule v2.2.", True),
    (None, "Ticket tk_000123 routed to T1 after 3 attempts.", True),
    (None, "Refund of $1,250.00 approved (50%).", True),
    (None, "Error 404 in build 1.2.3; see rd_000001.", True),
    (None, "Order 2026-11-01-0042 shipped.", False),  # known false positive: "01-0042" reads as a national number
]


def _read_texts(root: Path) -> list[str]:
    found = []
    for stream, field in (("csat_ratings", "comment"), ("router_feedback", "freeText")):
        for path in sorted((root / stream).rglob("*.jsonl*")):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    value = json.loads(line).get(field)
                    if value:
                        found.append(value)
    return found


def scrub(values: list[str]) -> dict[str, tuple[str, int]]:
    """text -> (scrubbed text, redactions), computed by the dbt macros in PostgreSQL."""
    distinct = sorted(set(values))
    for value in distinct:
        if "{{" in value or "{%" in value or "{#" in value:
            raise ValueError(f"a text would be read as Jinja: {value!r}")
    rows = ", ".join("('" + v.replace("'", "''") + "')" for v in distinct)
    sql = ("select t, {{ scrub_personal_text('t') }} as s, {{ personal_text_redactions('t') }} as n"
           f" from (values {rows}) as v (t)")
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_dbt(["show", "--inline", sql, "--limit", "-1"], quiet=True)
    if not result.success:
        raise RuntimeError("dbt show failed: run it without this script to see why")
    return {t: (s, int(n)) for t, s, n in result.result.results[0].agate_table.rows}


def measure_generated(values: list[str], scrubbed: dict[str, tuple[str, int]]) -> dict:
    planted, caught, inserted, true_positives = Counter(), Counter(), Counter(), Counter()
    for text in values:
        out, _ = scrubbed[text]
        found = texts.planted_values(text)
        for kind, placeholder in texts.PLANTED_KINDS.items():
            wanted = found.get(kind, [])
            planted[kind] += len(wanted)
            caught[kind] += sum(1 for v in wanted if v not in out)
            n = out.count(placeholder) - text.count(placeholder)
            inserted[kind] += n
            true_positives[kind] += min(n, len(wanted))
    per_kind = {
        kind: {
            "planted": planted[kind],
            "recall": caught[kind] / planted[kind] if planted[kind] else None,
            "placeholders": inserted[kind],
            "precision": true_positives[kind] / inserted[kind] if inserted[kind] else None,
        }
        for kind in texts.PLANTED_KINDS
    }
    total_inserted = sum(inserted.values())
    return {
        "texts": len(values),
        "texts_with_planted_values": sum(1 for t in values if texts.planted_values(t)),
        "per_kind": per_kind,
        "recall": sum(caught.values()) / sum(planted.values()),
        "precision": sum(true_positives.values()) / total_inserted if total_inserted else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--decisions-per-hour", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="scrubber_quality_") as tmp:
        generate(out=Path(tmp), start=datetime(2026, 11, 1, tzinfo=UTC), hours=args.hours, seed=args.seed,
                 decisions_per_hour=args.decisions_per_hour, bad_rate=0.0, progress=False)
        values = _read_texts(Path(tmp))
    challenge_texts = [text for _, text, _ in CHALLENGE]
    scrubbed = scrub(values + challenge_texts)
    generated = measure_generated(values, scrubbed)

    print(f"generated: {generated['texts']} texts, {generated['texts_with_planted_values']} with planted values")
    print(f"{'kind':<10}{'planted':>9}{'recall':>9}{'placed':>9}{'precision':>11}")
    for kind, m in generated["per_kind"].items():
        recall = f"{m['recall']:.4f}" if m["recall"] is not None else "-"
        precision = f"{m['precision']:.4f}" if m["precision"] is not None else "-"
        print(f"{kind:<10}{m['planted']:>9}{recall:>9}{m['placeholders']:>9}{precision:>11}")
    print(f"overall   recall {generated['recall']:.4f}  precision {generated['precision']:.4f}")

    surprises, challenge = [], []
    for kind, text, expected in CHALLENGE:
        out, n = scrubbed[text]
        caught = n > 0 if kind else n == 0  # personal: something removed; not personal: nothing removed
        challenge.append({"kind": kind, "text": text, "scrubbed": out, "as_expected": caught == expected})
        label = ("caught" if n else "MISSED") if kind else ("kept" if not n else "FALSE POSITIVE")
        print(f"challenge {kind or 'none':<8} {label:<15} {text!r} -> {out!r}")
        if caught != expected:
            surprises.append(text)
    print(json.dumps({"generated": generated, "challenge_surprises": surprises}))
    # The bar: every planted value caught, and the challenge set behaves as README says.
    return 0 if generated["recall"] == 1.0 and not surprises else 1


if __name__ == "__main__":
    sys.exit(main())
