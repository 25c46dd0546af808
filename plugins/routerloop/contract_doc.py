"""Render docs/contract.md from routerloop.contract, so the prose never drifts from the code."""

from __future__ import annotations

from pathlib import Path

from routerloop import contract

INTRO = """# Telemetry contract (routerloop's own copy)

What the router and the support desk drop for routerloop, as routerloop implements it. Generated from
`plugins/routerloop/contract.py` by `routerloop contract-doc`; a test fails when this file is stale.

## Landing zone

    <landing root>/<stream>/dt=YYYY-MM-DD/hr=HH/<any name>.jsonl      (or .jsonl.gz)

- Partitions are the hour in which records were *written*. A partition may hold several files, may be
  empty, and may arrive late; `routerloop land --start --end` lands every partition whose hour lies in
  [start, end).
- A file is never rewritten once complete. Landing a file again (same path, same sha256) is a no-op; a
  file whose bytes changed under the same path is refused and recorded in `raw.landed_files`.
- Hidden files and folders (names starting with `.`, e.g. a writer's temporary file) are not landed,
  nor are symlinks that point outside the landing root (or to nothing); a symlink inside the root is
  followed. Each skipped path is listed in the landing summary's `ignored` with its reason, as is
  anything else outside the layout. A file name that is not valid UTF-8 lands under its name with the
  invalid bytes written as `\\xNN` (in `raw.landed_files`, `raw.quarantine` and `_source_file`).
- Timestamps are ISO 8601 with an offset and are stored as UTC `timestamptz`. Unknown extra fields are
  kept in the raw record (`_raw jsonb`) and otherwise ignored; a number anywhere in a line must fit
  PostgreSQL's `numeric` (at most 131072 digits before the decimal point and 16383 after it).
- Ids are strings. Ids (fields named `...Id`) and the string fields of a stream key hold at most
  {max_id} characters; a longer one is `bad_id`. Integer fields are PostgreSQL integers (at most
  {int4_max}); `latencyMs` above that is `out_of_range`.
- A line that breaks the contract goes to `raw.quarantine` with one reason code (below) and its exact
  bytes; the rest of the file lands. For every file, lines = loaded + duplicates + quarantined.
- A second line with the same key (below) and the same content is a re-delivery: counted as a
  duplicate and not loaded twice (the first line wins). The same key with different content is a
  conflict, not a re-delivery: the line goes to `raw.quarantine` as `conflicting_duplicate` with its
  bytes and, in its message, the key and the landed record it conflicts with; it counts as quarantined
  (and toward `bad_line_limit`), and the summary and ledger count conflicts apart. Content is compared
  field by field: contract fields as stored (timestamps as instants, numbers as numbers), unknown extra
  fields as JSON, so key order, whitespace, a timestamp's offset or `0.50` against `0.5` never make a
  conflict. In the latest-state streams (`router_review_queue`, `sla_outcomes`) a newer state carries
  a newer `updatedAt` / `evaluatedAt`, part of the key: a new record, never a conflict; a different
  record under the same key (same timestamp) is a conflict.
- A file whose share of quarantined lines exceeds `bad_line_limit` (default 5 %) lands what is valid,
  keeps its quarantine rows, and fails its landing task so a broken producer gets noticed.
- One bad line or odd path never stops a landing run. A line PostgreSQL refuses although it passed the
  checks is quarantined as `rejected_by_database` with PostgreSQL's message, and the file's other
  lines land. A file that cannot be landed at all gets a failed ledger row (`failed_unreadable`,
  `failed_rejected`; both retried by the next run) and the run goes on with the other files; the
  summary and the exit code report it.
- A failed landing stays failed: while a file's ledger status is a failure, every landing of its stream
  and hour (a cleared Airflow task included) fails with the same message, and the daily run does not
  count the hour as landed. It ends when the producer re-delivers (a file of that stream and hour lands
  cleanly in a later landing run, under a new name) or an operator accepts it with
  `routerloop ledger acknowledge PATH --reason ...` (who, when and why go to
  `raw.ledger_acknowledgements`).

## Quarantine reason codes

Checked in this order; the first rule a line breaks is its reason. The last ones are found while
landing, after a line passed every check.

| code | meaning |
|---|---|
"""


def render() -> str:
    parts = [INTRO.format(max_id=contract.MAX_ID_LENGTH, int4_max=f"{contract.INT4_MAX:,}")]
    parts += [f"| `{code}` | {text} |\n" for code, text in contract.QUARANTINE_REASONS.items()]
    parts.append("\n## Streams\n")
    for stream in contract.STREAMS.values():
        parts.append(f"\n### `{stream.name}` → `raw.{stream.name}`\n\n")
        parts.append(f"Key (re-delivery detection): {', '.join(stream.key)}. Event time: `{stream.event_time}`.\n\n")
        parts.append("| field | column | type | required | rule |\n|---|---|---|---|---|\n")
        for f in stream.fields:
            rules = []
            if f.values:
                rules.append(" / ".join(f"`{v}`" for v in f.values))
            if f.minimum is not None or f.maximum is not None:
                rules.append(f"{'' if f.minimum is None else f.minimum} ≤ x ≤ {'' if f.maximum is None else f.maximum}")
            if f.prefix:
                rules.append(f"prefix `{f.prefix}`")
            if f.personal:
                rules.append("personal data")
            parts.append(
                f"| {f.name} | {f.column} | {f.kind} | {'yes' if f.required else 'no'} | {'; '.join(rules)} |\n"
            )
    parts.append(
        "\nEvery raw table also has `_raw` (the original record as jsonb), `_source_file`, `_line_number`,"
        " `_loaded_at`, `_partition_hour` (the landing partition's hour; tables are partitioned by its day)"
        " and `_file_id` (→ `raw.landed_files`).\n"
    )
    parts.append(
        "\n`routingProbability` (`router_decisions`, optional): the probability with which a router that"
        " picks a team in proportion to its routing weight picked `teamId` (the simulated loop,"
        " `routerloop simulate`, logs it); off-policy evaluation needs it. Routers that do not pick at"
        " random leave it out. Landing keeps it in `raw.router_decisions.routing_probability`.\n"
    )
    parts.append(
        "\n## What the router reads back\n\n"
        "`router.routing_weights` (read-only role `routerloop_router`) and"
        " `exports/routing_weights/<version>.json` + `latest.json`: one row per (strategy, team, tier) with"
        " `weights_version`, `strategy`, `team_id`, `tier`, `weight`, `previous_weight`, `generated_at`."
        " A version changes atomically and only after its quality gate passed; a version of an older as-of"
        " date than the current one (a backfill) is kept in history but never replaces it, except by an"
        " explicit `routerloop export --rollback VERSION`.\n"
    )
    return "".join(parts)


def write(path: Path) -> Path:
    path.write_text(render())
    return path
