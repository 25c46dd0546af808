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
- Timestamps are ISO 8601 with an offset and are stored as UTC `timestamptz`. Unknown extra fields are
  kept in the raw record (`_raw jsonb`) and otherwise ignored. Ids are strings.
- A line that breaks the contract goes to `raw.quarantine` with one reason code (below) and its exact
  bytes; the rest of the file lands. For every file, lines = loaded + duplicates + quarantined. A second
  line with the same key (below) is a re-delivery: counted as a duplicate and not loaded twice.
- A file whose share of quarantined lines exceeds `bad_line_limit` (default 5 %) lands what is valid,
  keeps its quarantine rows, and fails its landing task so a broken producer gets noticed.

## Quarantine reason codes

Checked in this order; the first rule a line breaks is its reason.

| code | meaning |
|---|---|
"""


def render() -> str:
    parts = [INTRO]
    parts += [f"| `{code}` | {text} |\n" for code, text in contract.REASONS.items()]
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
