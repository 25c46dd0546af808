"""Land the landing zone's JSONL partitions into schema `raw`: validated, deduplicated, exactly once.

What lands: every file `<landing>/<stream>/dt=YYYY-MM-DD/hr=HH/*.jsonl[.gz]` whose partition hour lies
in [start, end), one stream per raw table (`raw.<stream>`, typed columns named after the contract's
fields in snake_case, plus `_raw jsonb`, `_source_file`, `_line_number`, `_loaded_at`,
`_partition_hour`, `_file_id`). Tables are RANGE-partitioned by day on `_partition_hour`; day
partitions are created on demand (plus `raw_partitions_ahead_days`), idempotently, under an advisory
lock.

Exactly once, nothing lost:
- one transaction per file: its ledger row (`raw.landed_files`), its quarantine rows and its raw rows
  commit together or not at all, so a crash or kill mid-file leaves nothing behind and a rerun lands
  it whole;
- the ledger row is inserted first and a partial unique index on its path makes a concurrent lander of
  the same file wait, then skip it; landing a file again is a no-op (`skipped`); a file whose bytes
  (sha256) changed under a landed name is refused (`refused_changed`, recorded in its own transaction,
  `ok` False);
- every line is accounted for: lines = loaded + duplicates + quarantined. A line that breaks the
  contract goes to `raw.quarantine` with one reason code (contract.REASONS, checked in that order) and
  its exact bytes; a line whose stream key was seen before (earlier in the file or in an earlier file)
  is a duplicate: the first line wins;
- a file whose quarantined share exceeds `bad_line_limit` still commits (its quarantine rows and its
  valid lines: nothing is lost, and the valid lines are as good as any others) but gets status
  `failed_bad_lines`, and `ok` is False so the landing task fails and the broken producer is noticed.
  Landing it again is a no-op like any landed file; the raw gate keeps flagging its ledger row. A file
  that cannot be read (corrupt gzip, I/O error) lands nothing, is recorded as `failed_unreadable` and
  is retried by the next run.

How, and why (measured on the 2-core development machine with bench/land_throughput.py and CPU
time per line of the Python process and of its PostgreSQL backend, 1M decision lines of ~530 bytes):
- Python validates each line with msgspec: a per-stream Struct derived from contract.STREAMS (types,
  Literal enums, ranges, non-empty ids, timezone-aware timestamps, no unknown fields) decodes a valid
  line in ~1 us. Whatever the fast path does not accept outright (a decode error, an unknown field, a
  NUL escape, a missing id prefix, an offset PostgreSQL refuses, a zero that may be an underflow)
  goes to a small pure-Python classifier, the authority, which names the reason or accepts the line.
  A msgspec `pattern` for id prefixes cost ~0.5-1 us per line; str.startswith costs ~0.1 us.
- Valid lines go out as binary COPY rows (line number, jsonb) into a per-session TEMP staging table,
  sent by a background thread, so PostgreSQL parses jsonb while Python validates the next lines; at
  most `land_batch_rows` lines and a small queue are in flight. Text COPY needed escaping and cost
  twice the Python time; typed binary rows (`write_row`) cost ~5 us per line more in Python than
  extracting the typed columns in SQL. Python: ~3.5 us per line in all.
- The dedupe step, under a per-stream advisory lock, inserts the staged keys into `raw.<stream>_keys`
  (an unpartitioned table whose primary key is the stream key: a unique index on the day-partitioned
  raw table would have to include the partition column, and a probe would visit every partition). A
  plain insert (~2.5 us per line) serves the common file of new keys; a repeated key redoes it with
  ON CONFLICT DO NOTHING (see keys_sql). Probing the keys first cost ~1 us per line more.
- The typed insert (~5.5 us per line, half of it WAL and heap) runs outside the lock, straight into
  the day partition: typed columns extracted from the staged jsonb (string arrays through
  jsonb_populate_record and a composite type per stream, not a subquery per row), plus the jsonb
  itself; a file with duplicates keeps the lines whose key it owns. No index on `_partition_hour`
  (BRIN cost ~1 us per line and does not help before summarisation); gates select an hour of a day
  partition.
- PostgreSQL does ~13 us of the ~16 us of CPU per line, so `land_workers` connections land files in
  parallel. The dedupe steps of one stream still run one at a time in file order, so which copy of a
  repeated key wins does not depend on timing.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import os
import queue
import re
import struct
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from routerloop import contract, db
from routerloop.config import settings

SCHEMA = "raw"
LEDGER = "raw.landed_files"
QUARANTINE = "raw.quarantine"

# Ledger statuses. `loading` exists only inside a landing transaction; `skipped` only in summaries.
LOADING = "loading"
LOADED = "loaded"
FAILED_BAD_LINES = "failed_bad_lines"
FAILED_UNREADABLE = "failed_unreadable"
REFUSED_CHANGED = "refused_changed"
SKIPPED = "skipped"
LEDGER_STATUSES = (LOADING, LOADED, FAILED_BAD_LINES, FAILED_UNREADABLE, REFUSED_CHANGED)
# A path with a row in one of these statuses has landed (or is landing right now): never again.
LANDED_STATUSES = (LOADING, LOADED, FAILED_BAD_LINES)
FAILED_STATUSES = (FAILED_BAD_LINES, FAILED_UNREADABLE, REFUSED_CHANGED)

# Advisory locks (class, key): DDL of schema raw (transaction lock), and one key per stream for the
# dedupe step (session lock, released right after it).
LOCK_CLASS = 7302
DDL_LOCK = 0

COLUMN_TYPES = {
    "string": "text",
    "timestamp": "timestamptz",
    "enum": "text",
    "number": "double precision",
    "integer": "integer",
    "boolean": "boolean",
    "string_array": "text[]",
}
LINEAGE_COLUMNS = (
    ("_raw", "jsonb"),
    ("_source_file", "text"),
    ("_line_number", "integer"),
    ("_loaded_at", "timestamptz"),
    ("_partition_hour", "timestamptz"),
    ("_file_id", "bigint"),
)
STAGE_TABLE = "routerloop_land_stage"

_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_MAX_UTC_OFFSET = timedelta(hours=16)  # PostgreSQL refuses offsets beyond +-15:59
_NUMERIC_MAX_WEIGHT_DIGITS = 131_072  # jsonb numbers: digits before the decimal point ...
_NUMERIC_MAX_SCALE = 16_383  # ... and after it
_READ_CHUNK_BYTES = 1 << 20
_COPY_PENDING_PIECES = 128  # background COPY writer queue (x 128 KiB): bounds memory while PG catches up
_QUARANTINE_FLUSH_BYTES = 16 << 20

# Test hook: called as _fault_hook(point, file, lines_read) at "batch" (after each COPY batch was
# handed to PostgreSQL), "deduped" (keys inserted, stream lock held) and "inserted" (raw rows inserted,
# ledger not yet updated, nothing committed).
# Tests raise from it to prove a failure mid-file leaves nothing behind. None in production.
_fault_hook: Callable[[str, LandingFile, int], None] | None = None


class LandingFailed(RuntimeError):
    """Landing finished but not cleanly (bad-line limit exceeded, changed or unreadable files).

    `result` is the full summary returned by land(); what landed stays landed.
    """

    def __init__(self, result: dict):
        self.result = result
        super().__init__(result.get("error") or "landing failed")


class _Unreadable(Exception):
    """The file's bytes cannot be read as (gzipped) text lines."""


@dataclass(frozen=True)
class LandingFile:
    path: Path  # absolute
    relative: str  # posix path relative to the landing root: the ledger's identity of the file
    stream: str
    partition_hour: datetime  # UTC

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


# --------------------------------------------------------------------------- discovery

_DT_RE, _HR_RE = contract.PARTITION_RE


def _partition_hour(dt_name: str, hr_name: str) -> datetime | None:
    dt_match, hr_match = _DT_RE.match(dt_name), _HR_RE.match(hr_name)
    if not (dt_match and hr_match):
        return None
    try:
        day = date.fromisoformat(dt_match.group(1))
        return datetime(day.year, day.month, day.day, int(hr_match.group(1)), tzinfo=UTC)
    except ValueError:  # dt=2026-02-30 or hr=24
        return None


def discover(
    landing: Path, streams: list[str], start: datetime | None = None, end: datetime | None = None
) -> tuple[list[LandingFile], list[dict]]:
    """Files to land, in landing order (stream, hour, name), and what was ignored and why.

    Hidden files (writers' temporary names) are skipped silently; anything else that does not fit the
    layout is reported in the second list, never landed.
    """
    files: list[LandingFile] = []
    ignored: list[dict] = []

    def ignore(path: Path, why: str) -> None:
        ignored.append({"path": path.relative_to(landing).as_posix(), "reason": why})

    for stream in streams:
        root = landing / stream
        if not root.is_dir():
            continue
        for dt_dir in sorted(root.iterdir()):
            if dt_dir.name.startswith("."):
                continue
            if not (dt_dir.is_dir() and _DT_RE.match(dt_dir.name)):
                ignore(dt_dir, "not a dt=YYYY-MM-DD partition folder")
                continue
            for hr_dir in sorted(dt_dir.iterdir()):
                if hr_dir.name.startswith("."):
                    continue
                hour = _partition_hour(dt_dir.name, hr_dir.name) if hr_dir.is_dir() else None
                if hour is None:
                    ignore(hr_dir, "not a valid dt=YYYY-MM-DD/hr=HH partition")
                    continue
                if (start is not None and hour < start) or (end is not None and hour >= end):
                    continue
                for path in sorted(hr_dir.iterdir()):
                    if path.name.startswith("."):
                        continue
                    if path.is_file() and path.name.endswith(contract.FILE_SUFFIXES):
                        files.append(LandingFile(path, path.relative_to(landing).as_posix(), stream, hour))
                    else:
                        ignore(path, f"not a {' or '.join(contract.FILE_SUFFIXES)} file")
    return files, ignored


# --------------------------------------------------------------------------- schema


def _lock_key(name: str) -> int:
    """A stable signed int4 advisory-lock key for a stream."""
    return zlib.crc32(name.encode()) - (1 << 31)


def _column_sql(field: contract.Field) -> str:
    return f"{field.column} {COLUMN_TYPES[field.kind]}" + (" not null" if field.required else "")


def _key_fields(stream: contract.Stream) -> list[contract.Field]:
    return [stream.field(name) for name in stream.key]


def _string_arrays(stream: contract.Stream) -> list[contract.Field]:
    return [f for f in stream.fields if f.kind == "string_array"]


def _arrays_type(stream_name: str) -> str:
    return f"{stream_name}_arrays"


def _arrays_ddl(stream: contract.Stream, existing_attributes: set[str] | None) -> list[str]:
    """The composite type the typed insert reads a stream's string arrays through (see _typed_expression)."""
    fields = _string_arrays(stream)
    if not fields:
        return []
    name = _arrays_type(stream.name)
    if existing_attributes is None:
        attributes = ", ".join(f'"{f.name}" text[]' for f in fields)
        return [f"create type raw.{name} as ({attributes})",
                f"comment on type raw.{name} is 'The string-array fields of {stream.name}, named as in the "
                "contract: routerloop.land reads them out of a line''s jsonb with jsonb_populate_record.'"]
    return [f'alter type raw.{name} add attribute "{f.name}" text[]'
            for f in fields if f.name not in existing_attributes]


def _raw_ddl(stream: contract.Stream, existing_columns: set[str]) -> list[str]:
    typed = ",\n    ".join(_column_sql(f) for f in stream.fields)
    lineage = ",\n    ".join(f"{name} {kind} not null" for name, kind in LINEAGE_COLUMNS)
    keys = ", ".join(
        f"{f.column} {COLUMN_TYPES[f.kind]}" + (' collate "C"' if COLUMN_TYPES[f.kind] == "text" else "")
        + " not null"
        for f in _key_fields(stream)
    )
    key_columns = ", ".join(f.column for f in _key_fields(stream))
    name = stream.name
    return [
        f"create table if not exists raw.{name} (\n    {typed},\n    {lineage}\n) "
        "partition by range (_partition_hour)",
        f"comment on table raw.{name} is 'Lines of the {name} stream that passed the contract, one per "
        "key (first landed wins); landed by routerloop.land. Partitioned by day on _partition_hour.'",
        f"create table if not exists raw.{name}_keys (\n    {keys},\n    _file_id bigint not null,\n"
        f"    _line_number integer not null,\n    _partition_hour timestamptz not null,\n"
        f"    primary key ({key_columns})\n)",
        f"comment on table raw.{name}_keys is 'Every {name} key landed so far and where its row is "
        "(_partition_hour, _file_id, _line_number): the dedupe index of routerloop.land.'",
        # A field added to the contract later: a nullable column (older rows do not have it).
        *(f"alter table raw.{name} add column if not exists {_column_sql(f).replace(' not null', '')}"
          for f in stream.fields if existing_columns and f.column not in existing_columns),
    ]


def _schema_ddl(found: dict[str, set[str]]) -> list[str]:
    statuses = ", ".join(f"'{s}'" for s in LEDGER_STATUSES)
    landed = ", ".join(f"'{s}'" for s in LANDED_STATUSES)
    reasons = ", ".join(f"'{r}'" for r in contract.REASONS)
    statements = [
        "create schema if not exists raw",
        f"""create table if not exists {LEDGER} (
    file_id bigint generated always as identity primary key,
    path text not null,
    stream text not null,
    partition_hour timestamptz not null,
    size bigint not null,
    sha256 text,
    lines integer not null default 0,
    loaded integer not null default 0,
    duplicates integer not null default 0,
    quarantined integer not null default 0,
    started_at timestamptz not null,
    finished_at timestamptz,
    status text not null check (status in ({statuses})),
    message text,
    check (status = '{LOADING}' or sha256 is not null)
)""",
        f"comment on table {LEDGER} is 'One row per landing of a file (path relative to the landing root) "
        "and per refusal: what routerloop.land did with it. lines = loaded + duplicates + quarantined.'",
        f"create unique index if not exists landed_files_path_once on {LEDGER} (path) "
        f"where status in ({landed})",
        f"create index if not exists landed_files_partition_hour on {LEDGER} (partition_hour)",
        f"""create table if not exists {QUARANTINE} (
    quarantine_id bigint generated always as identity primary key,
    stream text not null,
    source_file text not null,
    line_number integer not null,
    reason text not null check (reason in ({reasons})),
    message text not null,
    raw_bytes bytea not null,
    file_id bigint not null references {LEDGER} (file_id),
    quarantined_at timestamptz not null default now()
)""",
        f"comment on table {QUARANTINE} is 'Lines that broke the telemetry contract, byte-exact, with "
        "one reason code from routerloop.contract.REASONS.'",
        f"create index if not exists quarantine_file_id on {QUARANTINE} (file_id)",
    ]
    for stream in contract.STREAMS.values():
        statements.extend(_raw_ddl(stream, found.get(stream.name, set())))
        statements.extend(_arrays_ddl(stream, found.get(_arrays_type(stream.name))))
    return statements


def _expected_relations() -> dict[str, set[str]]:
    """Relation name -> columns it must have (indexes: no columns; composite types: attributes)."""
    expected: dict[str, set[str]] = {
        "landed_files": {"file_id", "path", "stream", "partition_hour", "size", "sha256", "lines", "loaded",
                         "duplicates", "quarantined", "started_at", "finished_at", "status", "message"},
        "quarantine": {"stream", "source_file", "line_number", "reason", "message", "raw_bytes", "file_id",
                       "quarantined_at"},
        "landed_files_path_once": set(),
        "landed_files_partition_hour": set(),
        "quarantine_file_id": set(),
    }
    for stream in contract.STREAMS.values():
        expected[stream.name] = {f.column for f in stream.fields} | {name for name, _ in LINEAGE_COLUMNS}
        expected[f"{stream.name}_keys"] = {f.column for f in _key_fields(stream)}
        if arrays := _string_arrays(stream):
            expected[_arrays_type(stream.name)] = {f.name for f in arrays}
    return expected


def _found_relations(conn) -> dict[str, set[str]]:
    """Expected relations of schema raw that exist, with their columns."""
    rows = conn.execute(
        """
        select c.relname, coalesce(array_agg(a.attname) filter (where a.attname is not null), '{}')
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where n.nspname = %s and c.relname = any(%s)
        group by c.relname
        """,
        (SCHEMA, list(_expected_relations())),
    ).fetchall()
    return {name: set(columns) for name, columns in rows}


def _schema_is_current(found: dict[str, set[str]]) -> bool:
    return all(name in found and columns <= found[name] for name, columns in _expected_relations().items())


def ensure_raw_schema(conn) -> None:
    """Create schema raw, the ledger, the quarantine and every stream's raw and keys table.

    Idempotent and safe under concurrency: a catalog check first (no locks when all is there), else
    the DDL runs under a transaction-scoped advisory lock, so parallel landing tasks never race.
    """
    if _schema_is_current(_found_relations(conn)):
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, DDL_LOCK))
        found = _found_relations(conn)
        if _schema_is_current(found):
            return
        for statement in _schema_ddl(found):
            conn.execute(statement)


def _partition_name(stream: str, day: date) -> str:
    return f"{stream}_p{day:%Y%m%d}"


def ensure_partitions(conn, stream: str, days: set[date]) -> list[str]:
    """Create the missing day partitions of raw.<stream> for `days`; return the names created."""
    wanted = {_partition_name(stream, d): d for d in days}

    def missing() -> list[str]:
        rows = conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = %s::regclass and c.relname = any(%s)",
            (f"raw.{stream}", list(wanted)),
        ).fetchall()
        present = {name for (name,) in rows}
        return sorted(name for name in wanted if name not in present)

    if not missing():
        return []
    created = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, DDL_LOCK))
        for name in missing():
            day = wanted[name]
            conn.execute(
                f"create table if not exists raw.{name} partition of raw.{stream} "
                f"for values from ('{day.isoformat()} 00:00:00+00') "
                f"to ('{(day + timedelta(days=1)).isoformat()} 00:00:00+00')"
            )
            created.append(name)
    return created


# --------------------------------------------------------------------------- validation

_TIMESTAMP = Annotated[datetime, msgspec.Meta(tz=True)]
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_PLAIN_ZERO = re.compile(rb"-?0+(?:\.0*)?(?:[eE][+-]?[0-9]+)?")


def _is_id(field: contract.Field) -> bool:
    return field.kind == "string" and field.required and (bool(field.prefix) or field.name.endswith("Id"))


def _integer_bounds(field: contract.Field) -> tuple[int, int]:
    low = _INT4_MIN if field.minimum is None else max(_INT4_MIN, math.ceil(field.minimum))
    high = _INT4_MAX if field.maximum is None else min(_INT4_MAX, math.floor(field.maximum))
    return low, high


def _fast_type(field: contract.Field):
    """The msgspec type that accepts exactly the valid values of a field (null aside)."""
    kind = field.kind
    if kind == "string":
        if field.prefix:  # the prefix itself is checked by _Validator.accepts_decoded (faster than a pattern)
            return Annotated[str, msgspec.Meta(min_length=len(field.prefix) + 1)]
        return Annotated[str, msgspec.Meta(min_length=1)] if _is_id(field) else str
    if kind == "timestamp":
        return _TIMESTAMP
    if kind == "enum":
        return Literal[field.values]
    if kind == "number":
        bounds = {k: v for k, v in (("ge", field.minimum), ("le", field.maximum)) if v is not None}
        return Annotated[float, msgspec.Meta(**bounds)] if bounds else float
    if kind == "integer":
        low, high = _integer_bounds(field)
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if kind == "boolean":
        return bool
    if kind == "string_array":
        return list[str]
    raise ValueError(f"unknown field kind {kind!r}")


class _NonDouble(float):
    """A JSON number that is not a finite, non-underflowing double (inf or a nonzero rounding to 0)."""

    literal: str


def _parse_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value) or (value == 0.0 and not _PLAIN_ZERO.fullmatch(literal.encode())):
        marked = _NonDouble(value)
        marked.literal = literal
        return marked
    return value


class _HugeInt(int):
    """An integer literal too long for Python's int(); far beyond any column."""

    literal: str


def _parse_int(literal: str) -> int:
    if len(literal) > 4000:  # Python refuses int() of more than 4300 digits
        marked = _HugeInt(0)
        marked.literal = literal[:20] + "..."
        return marked
    return int(literal)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _jsonb_cannot_store(number) -> bool:
    """True for a number jsonb (PostgreSQL numeric) refuses."""
    if isinstance(number, _HugeInt):
        return False  # ~4000+ digits: numeric holds 131072
    if not isinstance(number, _NonDouble):
        return False
    try:
        decimal = Decimal(number.literal)
    except InvalidOperation:
        return True
    return decimal.adjusted() >= _NUMERIC_MAX_WEIGHT_DIGITS or -decimal.as_tuple().exponent > _NUMERIC_MAX_SCALE


def _walk(value, path: str = "") -> Iterator[tuple[str, object]]:
    """Every (path, scalar-or-key) in a decoded JSON value; keys come as their own strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            yield child, key
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_EXPECTED = {
    "string": "a string",
    "timestamp": "a string (ISO 8601 timestamp)",
    "enum": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "string_array": "an array of strings",
}


def _type_ok(kind: str, value) -> bool:
    if kind in ("string", "timestamp", "enum"):
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string_array":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    raise ValueError(f"unknown field kind {kind!r}")


def _range_problem(field: contract.Field, value) -> str | None:
    name = field.name
    if isinstance(value, _NonDouble | _HugeInt):
        return f"{name} = {value.literal} cannot be stored as a number"
    if field.kind == "integer":
        low, high = _integer_bounds(field)
        if not low <= value <= high:
            return f"{name} = {value} lies outside [{low}, {high}]"
        return None
    try:
        float(value)
    except OverflowError:
        return f"{name} = {value} cannot be stored as double precision"
    if field.minimum is not None and value < field.minimum:
        return f"{name} = {value} is below its minimum {field.minimum:g}"
    if field.maximum is not None and value > field.maximum:
        return f"{name} = {value} is above its maximum {field.maximum:g}"
    return None


def _timestamp_problem(value: str) -> str | None:
    try:
        moment = msgspec.convert(value, _TIMESTAMP)
    except msgspec.ValidationError:
        return "is not an ISO 8601 timestamp with an offset (e.g. 2026-11-01T13:05:10.123Z)"
    if abs(moment.utcoffset()) >= _MAX_UTC_OFFSET:
        return "has an offset beyond +-15:59, which PostgreSQL cannot store"
    return None


def _storable_text(message: str) -> str:
    """A message PostgreSQL can store: no NUL, no unpaired surrogates (both escaped)."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Validator:
    """The contract of one stream as code: a fast msgspec path and the authoritative classifier."""

    def __init__(self, stream: contract.Stream):
        self.stream = stream
        struct_fields = [
            (f.name, _fast_type(f)) if f.required else (f.name, _fast_type(f) | None, None)
            for f in stream.fields
        ]
        line_struct = msgspec.defstruct(
            f"{stream.name}_line", struct_fields, kw_only=True, forbid_unknown_fields=True
        )
        self.decode = msgspec.json.Decoder(line_struct).decode
        timestamps = [f.name for f in stream.fields if f.kind == "timestamp"]
        numbers = [f.name for f in stream.fields if f.kind == "number"]
        self._timestamps = attrgetter(*timestamps) if len(timestamps) > 1 else None
        self._timestamp = timestamps[0] if len(timestamps) == 1 else None
        self._numbers = [(name, re.compile(rb'"' + name.encode() + rb'"\s*:\s*(-?[0-9][0-9.eE+-]*)'))
                         for name in numbers]
        self._ids = [f for f in stream.fields if _is_id(f)]
        self._prefixes = [(f.name, f.prefix) for f in stream.fields if f.prefix]

    def accepts_decoded(self, record, line: bytes) -> bool:
        """After a successful fast decode: True when nothing needs the classifier's closer look."""
        if b"\\u0000" in line:
            return False
        for name, prefix in self._prefixes:
            value = getattr(record, name)
            if value is not None and not value.startswith(prefix):
                return False
        if self._timestamp is not None:
            moment = getattr(record, self._timestamp)
            if moment is not None and moment.tzinfo is not UTC and abs(moment.utcoffset()) >= _MAX_UTC_OFFSET:
                return False
        elif self._timestamps is not None:
            for moment in self._timestamps(record):
                if moment is not None and moment.tzinfo is not UTC and abs(moment.utcoffset()) >= _MAX_UTC_OFFSET:
                    return False
        for name, literal_re in self._numbers:
            if getattr(record, name) == 0.0:
                # msgspec rounds 1e-400 to 0.0; PostgreSQL refuses it: look at the literal itself.
                literals = literal_re.findall(line)
                if not literals or not _PLAIN_ZERO.fullmatch(literals[-1]):
                    return False
        return True

    def classify(self, line: bytes, last_without_newline: bool = False) -> tuple[str, str] | None:
        """(reason, message) for a line that breaks the contract, None for a valid line.

        Checks in contract.REASONS order; the first rule broken is the reason.
        """
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if last_without_newline and exc.reason == "unexpected end of data" and exc.end == len(line):
                return "truncated_line", "the last line ends inside a UTF-8 character, without a newline"
            return "not_utf8", f"byte 0x{line[exc.start]:02x} at offset {exc.start} is not valid UTF-8"
        try:
            record = json.loads(
                text, parse_float=_parse_float, parse_int=_parse_int, parse_constant=_reject_constant
            )
        except (ValueError, RecursionError) as exc:
            if last_without_newline:
                return "truncated_line", f"the last line has no newline and is not valid JSON ({exc})"
            if not text.strip():
                return "invalid_json", "blank line"
            return "invalid_json", f"not valid JSON: {exc}"
        if not isinstance(record, dict):
            return "invalid_json", f"a JSON {_json_type(record)}, not an object"

        fields = self.stream.fields
        for f in fields:
            if f.required and record.get(f.name) is None:
                return "missing_field", f"{f.name} is {'null' if f.name in record else 'absent'}"
        for f in fields:
            value = record.get(f.name)
            if value is not None and not _type_ok(f.kind, value):
                return "wrong_type", f"{f.name} must be {_EXPECTED[f.kind]}, got {_short(value)}"
        for f in fields:
            value = record.get(f.name)
            if f.kind == "enum" and value is not None and value not in f.values:
                return "bad_enum", f"{f.name} = {_short(value)} is not one of {', '.join(f.values)}"
        for f in fields:
            value = record.get(f.name)
            if f.kind in ("number", "integer") and value is not None and (problem := _range_problem(f, value)):
                return "out_of_range", problem
        for path, value in _walk(record):
            if isinstance(value, int | float) and _jsonb_cannot_store(value):
                return "out_of_range", f"{path} = {value.literal} is too large or too small for PostgreSQL"
        for f in fields:
            value = record.get(f.name)
            if f.kind == "timestamp" and value is not None and (problem := _timestamp_problem(value)):
                return "bad_timestamp", f"{f.name} = {_short(value)} {problem}"
        for f in self._ids:
            value = record[f.name]
            if not value:
                return "bad_id", f"{f.name} is empty"
            if f.prefix and (not value.startswith(f.prefix) or len(value) == len(f.prefix)):
                return "bad_id", f"{f.name} = {_short(value)} does not start with {f.prefix!r} followed by an id"
        for path, value in _walk(record):
            if isinstance(value, str) and (bad := _BAD_TEXT.search(value)):
                what = "NUL (\\u0000)" if bad.group() == "\x00" else "an unpaired surrogate"
                return "invalid_text", f"{_short(path)} contains {what}, which PostgreSQL cannot store"
        return None


_validators: dict[str, _Validator] = {}


def validator(stream: str) -> _Validator:
    if stream not in _validators:
        _validators[stream] = _Validator(contract.STREAMS[stream])
    return _validators[stream]


# --------------------------------------------------------------------------- reading files


class _HashingReader:
    """File-like wrapper that feeds every byte read into a sha256 (the on-disk bytes, gzip or not)."""

    def __init__(self, raw, hasher):
        self._raw = raw
        self._hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(_READ_CHUNK_BYTES):
            pass


class _LineReader:
    """Lines of a file in chunks, never the whole file in memory; hashes the on-disk bytes."""

    def __init__(self, file: LandingFile):
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.tail = b""  # after batches(): the last line when the file does not end with a newline

    def batches(self) -> Iterator[list[bytes]]:
        try:
            with open(self.file.path, "rb") as raw:
                self.size = _file_size(raw)
                hashing = _HashingReader(raw, self.sha256)
                stream = gzip.GzipFile(fileobj=hashing, mode="rb") if self.file.gzipped else hashing
                pending: list[bytes] = []
                while chunk := stream.read(_READ_CHUNK_BYTES):
                    lines = chunk.split(b"\n")
                    if len(lines) == 1:  # no newline in this chunk: a long line continues
                        pending.append(chunk)
                        continue
                    if pending:
                        pending.append(lines[0])
                        lines[0] = b"".join(pending)
                        pending = []
                    last = lines.pop()
                    if last:
                        pending.append(last)
                    yield lines
                self.tail = b"".join(pending)
                hashing.drain()  # bytes after the gzip stream, if any, belong to the file too
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise _Unreadable(f"{type(exc).__name__}: {exc}") from exc


def _file_size(handle) -> int:
    return os.fstat(handle.fileno()).st_size


def _file_digest(path: Path) -> tuple[int, str]:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        size = _file_size(handle)
        while chunk := handle.read(_READ_CHUNK_BYTES):
            hasher.update(chunk)
    return size, hasher.hexdigest()


# --------------------------------------------------------------------------- writing to PostgreSQL

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
# One staged row in COPY binary: 2 fields; int4 line number; jsonb (version byte 1 + the JSON text).
_stage_row_head = struct.Struct(">hiiiB").pack
_COPY_PIECE = 128 * 1024  # what psycopg hands libpq at once


class _BackgroundCopyWriter:
    """Sends COPY data from a thread so Python validates while PostgreSQL parses (bounded queue).

    Same idea as psycopg's QueuedLibpqWriter, with a small queue: PostgreSQL is the slower side
    here, and an unbounded backlog would be the whole file in memory.
    """

    def __init__(self, cursor):
        from psycopg.copy import LibpqWriter

        self._writer = LibpqWriter(cursor)
        self._queue: queue.Queue[memoryview | bytes] = queue.Queue(maxsize=_COPY_PENDING_PIECES)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            while data := self._queue.get():
                self._writer.write(data)
        except BaseException as exc:  # handed to the producer thread
            self._error = exc
            while self._queue.get():  # keep draining so write() never blocks forever
                pass

    def write(self, data: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="routerloop-land-copy", daemon=True)
            self._thread.start()
        if self._error:
            raise self._error
        view = memoryview(data)  # slices share the buffer: no copies
        for offset in range(0, len(view), _COPY_PIECE):
            self._queue.put(view[offset: offset + _COPY_PIECE])

    def finish(self, exc: BaseException | None = None) -> None:
        if self._thread is not None:
            self._queue.put(b"")
            self._thread.join()
            self._thread = None
        # Always end the COPY on the connection (CopyFail on error), or the session stays in COPY mode.
        self._writer.finish(exc or self._error)
        if self._error and not exc:
            raise self._error


class _Stage:
    """The open COPY of valid lines into the session's staging table (opened lazily, reopenable)."""

    def __init__(self, conn):
        self._conn = conn
        self._copy_cm = None
        self._copy = None

    def write(self, rows: list[bytes]) -> None:
        if self._copy is None:
            cursor = self._conn.cursor()
            self._copy_cm = cursor.copy(
                f"copy {STAGE_TABLE} (_line_number, record) from stdin (format binary)",
                writer=_BackgroundCopyWriter(cursor),
            )
            self._copy = self._copy_cm.__enter__()
            self._copy.write(_COPY_SIGNATURE)
        self._copy.write(b"".join(rows))

    def close(self, exc: BaseException | None = None) -> None:
        """End the COPY; with `exc`, abort it (PostgreSQL discards it, the transaction then rolls back)."""
        if self._copy is None:
            return
        copy, copy_cm = self._copy, self._copy_cm
        self._copy = self._copy_cm = None
        if exc is None:
            try:
                copy.write(_COPY_TRAILER)
            except BaseException as write_error:
                copy_cm.__exit__(type(write_error), write_error, write_error.__traceback__)
                raise
            copy_cm.__exit__(None, None, None)
        else:
            copy_cm.__exit__(type(exc), exc, exc.__traceback__)


def _quarantine_copy(conn, rows: list[tuple]) -> None:
    if not rows:
        return
    with conn.cursor().copy(
        f"copy {QUARANTINE} (stream, source_file, line_number, reason, message, raw_bytes, file_id) "
        "from stdin (format binary)"
    ) as copy:
        copy.set_types(["text", "text", "int4", "text", "text", "bytea", "int8"])
        for row in rows:
            copy.write_row(row)


# --------------------------------------------------------------------------- the dedupe + insert step


def _typed_expression(stream_name: str, field: contract.Field, record: str = "s.record") -> str:
    value = f"{record}->>'{field.name}'"
    kind = field.kind
    if kind in ("string", "enum"):
        return value
    if kind == "string_array":
        # jsonb_populate_record converts a JSON array of strings (or null) to text[] in C: 0.45 us per
        # line less than array(select jsonb_array_elements_text(...)), a subquery per row.
        return f'(jsonb_populate_record(null::raw.{_arrays_type(stream_name)}, {record}))."{field.name}"'
    return f"({value})::{COLUMN_TYPES[kind]}"


def _key_expression(stream_name: str, field: contract.Field, record: str) -> str:
    expression = _typed_expression(stream_name, field, record)
    return f'({expression}) collate "C"' if COLUMN_TYPES[field.kind] == "text" else expression


_sql_cache: dict[tuple[str, str], str] = {}


def keys_sql(stream_name: str, upsert: bool) -> str:
    """The dedupe step of a stream: insert the staged lines' keys that are new; returns how many.

    Fast form (upsert=False): a plain insert of every staged key, the common case of a file of new
    keys. Any repeated key makes it fail with a unique violation (a line repeating an earlier one of
    the file, a key landed before, or a key another landing holds uncommitted, after waiting for it);
    the step is then redone in the upsert form: ON CONFLICT DO NOTHING in line order, so the first
    line wins, keys landed before are skipped, and a key another landing holds is waited for, then
    skipped (or taken, if that landing rolled back). Only one landing per stream runs this step at a
    time (advisory lock) and it waits only on landings past it, so landings never deadlock.
    """
    cache_key = ("keys", stream_name, upsert)
    if cache_key not in _sql_cache:
        stream = contract.STREAMS[stream_name]
        keys = _key_fields(stream)
        key_columns = ", ".join(f.column for f in keys)
        key_select = ", ".join(f"{_key_expression(stream_name, f, 'record')} as {f.column}" for f in keys)
        rule = "\n    order by _line_number\n    on conflict do nothing" if upsert else ""
        _sql_cache[cache_key] = f"""
with new_keys as (
    insert into raw.{stream.name}_keys ({key_columns}, _file_id, _line_number, _partition_hour)
    select {key_columns}, %(file_id)s, _line_number, %(partition_hour)s
    from (select {key_select}, _line_number from {STAGE_TABLE}) as s{rule}
    returning 1
)
select count(*) from new_keys
"""
    return _sql_cache[cache_key]


def insert_sql(stream_name: str, partition: str, every_line_is_new: bool) -> str:
    """Typed raw rows for the staged lines whose key this file owns; its row count is the rows loaded.

    Straight into the day partition (no row routing). When some lines were duplicates, a line is kept
    if the keys table records it (this file, this line) as the owner of its key: one primary-key
    probe per line, paid only by files with duplicates.
    """
    cache_key = ("insert", stream_name, every_line_is_new)
    if cache_key not in _sql_cache:
        stream = contract.STREAMS[stream_name]
        columns = ", ".join([*(f.column for f in stream.fields), *(name for name, _ in LINEAGE_COLUMNS)])
        values = ",\n    ".join(_typed_expression(stream_name, f) for f in stream.fields)
        owner = ""
        if not every_line_is_new:
            keys = _key_fields(stream)
            probe = " and ".join(f"k.{f.column} = {_key_expression(stream_name, f, 's.record')}" for f in keys)
            owner = (f"\nwhere (select k._file_id = %(file_id)s and k._line_number = s._line_number "
                     f"from raw.{stream.name}_keys as k where {probe})")
        _sql_cache[cache_key] = f"""
insert into raw.{{partition}} ({columns})
select
    {values},
    s.record, %(source_file)s, s._line_number, now(), %(partition_hour)s, %(file_id)s
from {STAGE_TABLE} as s{owner}
"""
    return _sql_cache[cache_key].format(partition=partition)


def _prepare_connection(conn) -> None:
    """Session setup of a landing connection: its staging table (temporary, emptied at each commit)."""
    # Before the session touches any temporary table (PostgreSQL ignores it afterwards).
    conn.execute("select set_config('temp_buffers', %s, false)", (settings().land_temp_buffers,))
    conn.execute(
        f"create temp table if not exists {STAGE_TABLE} (_line_number integer not null, record jsonb not null) "
        "on commit delete rows"
    )


# --------------------------------------------------------------------------- landing one file


class _Turn:
    """Orders the dedupe steps of one stream's files in landing order when files land in parallel."""

    def __init__(self, previous: threading.Event | None = None):
        self.previous = previous
        self.finished = threading.Event()

    def wait(self) -> None:
        if self.previous is not None:
            self.previous.wait()

    def done(self) -> None:
        self.finished.set()


def _result(file: LandingFile, status: str, **values) -> dict:
    result = {
        "path": file.relative,
        "stream": file.stream,
        "partition_hour": file.partition_hour.isoformat(),
        "lines": 0,
        "loaded": 0,
        "duplicates": 0,
        "quarantined": 0,
        "quarantined_by_reason": {},
        "status": status,
        "message": None,
    }
    result.update(values)
    return result


def _landed_before(conn, file: LandingFile):
    return conn.execute(
        f"select file_id, size, sha256, status, finished_at from {LEDGER} "
        "where path = %s and status = any(%s) order by file_id desc limit 1",
        (file.relative, list(LANDED_STATUSES)),
    ).fetchone()


def _record(conn, file: LandingFile, status: str, size: int, sha256: str, message: str) -> int:
    """A ledger row of its own (own transaction) for a file that did not land: it survives."""
    with conn.transaction():
        return conn.execute(
            f"insert into {LEDGER} (path, stream, partition_hour, size, sha256, started_at, finished_at, "
            "status, message) values (%s, %s, %s, %s, %s, clock_timestamp(), clock_timestamp(), %s, %s) "
            "returning file_id",
            (file.relative, file.stream, file.partition_hour, size, sha256, status, message),
        ).fetchone()[0]


def _compare_with_landed(conn, file: LandingFile, previous) -> dict:
    file_id, size, sha256, status, finished_at = previous
    try:
        now_size, now_sha256 = _file_digest(file.path)
    except OSError as exc:  # removed or unreadable since: what landed stays as it was
        return _result(file, SKIPPED, file_id=file_id, previous_status=status,
                       message=f"landed before as file {file_id}; cannot be read now to compare ({exc})")
    if (now_size, now_sha256) == (size, sha256):
        return _result(file, SKIPPED, file_id=file_id, previous_status=status,
                       message=f"landed before as file {file_id} on {finished_at:%Y-%m-%d %H:%M:%S} UTC")
    message = (
        f"refused: the file changed since it landed as file {file_id} on {finished_at:%Y-%m-%d %H:%M:%S} UTC "
        f"(size {size} -> {now_size}, sha256 {sha256[:12]} -> {now_sha256[:12]}); landed files are never "
        "rewritten, deliver changes under a new name"
    )
    refused_id = _record(conn, file, REFUSED_CHANGED, now_size, now_sha256, message)
    return _result(file, REFUSED_CHANGED, file_id=refused_id, message=message)


class _StreamLock:
    """Releases the per-stream session advisory lock if an error left it held (after the rollback)."""

    def __init__(self, conn, stream: str):
        self.conn = conn
        self.key = _lock_key(stream)
        self.held = False

    def __enter__(self) -> _StreamLock:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(Exception):  # a broken connection released it already
                self.conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_CLASS, self.key))


class _LandedConcurrently(Exception):
    """Another landing committed this path while we waited on its ledger row."""


def _land_new_file(conn, file: LandingFile, turn: _Turn) -> dict:
    """Stream one file into raw in one transaction; see the module docstring for the design."""
    import psycopg

    cfg = settings()
    check = validator(file.stream)
    decode, accepts_decoded, classify = check.decode, check.accepts_decoded, check.classify
    decode_errors = (msgspec.DecodeError, UnicodeDecodeError)  # msgspec raises the latter for bad UTF-8
    stream, source = file.stream, file.relative
    batch_rows = max(1, cfg.land_batch_rows)
    pack = _stage_row_head

    reader = _LineReader(file)
    stage = _Stage(conn)
    with _StreamLock(conn, stream) as lock, conn.transaction():
        try:
            file_id = conn.execute(
                f"insert into {LEDGER} (path, stream, partition_hour, size, started_at, status) "
                "values (%s, %s, %s, 0, clock_timestamp(), %s) returning file_id",
                (source, stream, file.partition_hour, LOADING),
            ).fetchone()[0]
        except psycopg.errors.UniqueViolation as exc:
            raise _LandedConcurrently() from exc

        reasons: Counter[str] = Counter()
        quarantine: list[tuple] = []
        quarantine_bytes = 0
        rows: list[bytes] = []
        line_number = staged = 0

        def quarantine_line(number: int, line: bytes, verdict: tuple[str, str]) -> None:
            nonlocal quarantine_bytes
            reasons[verdict[0]] += 1
            quarantine.append((stream, source, number, verdict[0], _storable_text(verdict[1]), line, file_id))
            quarantine_bytes += len(line)

        def flush_quarantine() -> None:
            nonlocal quarantine_bytes
            stage.close()  # one COPY at a time on a connection
            _quarantine_copy(conn, quarantine)
            quarantine.clear()
            quarantine_bytes = 0

        try:
            for chunk in reader.batches():
                # Hand valid lines to the COPY writer after each read chunk, at most batch_rows at once.
                for first in range(0, len(chunk), batch_rows):
                    for line in chunk[first: first + batch_rows]:
                        line_number += 1
                        try:
                            record = decode(line)
                        except decode_errors:
                            record = None
                        if record is None or not accepts_decoded(record, line):
                            verdict = classify(line)
                            if verdict is not None:
                                quarantine_line(line_number, line, verdict)
                                continue
                        rows.append(pack(2, 4, line_number, len(line) + 1, 1) + line)
                    if rows:
                        stage.write(rows)
                        staged += len(rows)
                        rows.clear()
                    if _fault_hook is not None:
                        _fault_hook("batch", file, line_number)
                    if len(quarantine) >= batch_rows or quarantine_bytes >= _QUARANTINE_FLUSH_BYTES:
                        flush_quarantine()
            if reader.tail:
                line_number += 1
                verdict = classify(reader.tail, last_without_newline=True)
                if verdict is None:
                    rows.append(pack(2, 4, line_number, len(reader.tail) + 1, 1) + reader.tail)
                else:
                    quarantine_line(line_number, reader.tail, verdict)
            if rows:
                stage.write(rows)
                staged += len(rows)
                rows.clear()
            stage.close()
        except BaseException as exc:
            stage.close(exc)
            raise
        flush_quarantine()

        params = {"file_id": file_id, "partition_hour": file.partition_hour, "source_file": source}
        turn.wait()  # the previous file of this stream has passed its dedupe step (parallel landing)
        # The per-stream advisory lock covers the dedupe step only; a session lock, so the typed insert
        # (the expensive part) runs outside it. Keys stay reserved until commit by the primary key.
        conn.execute("select pg_advisory_lock(%s, %s)", (LOCK_CLASS, _lock_key(stream)))
        lock.held = True
        try:
            with conn.transaction():  # a savepoint: the fast form may fail
                new_keys = conn.execute(keys_sql(stream, upsert=False), params).fetchone()[0]
        except psycopg.errors.UniqueViolation:
            new_keys = conn.execute(keys_sql(stream, upsert=True), params).fetchone()[0]
        if _fault_hook is not None:
            _fault_hook("deduped", file, line_number)
        conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_CLASS, _lock_key(stream)))
        lock.held = False
        turn.done()
        partition = _partition_name(stream, file.partition_hour.date())
        loaded = conn.execute(insert_sql(stream, partition, new_keys == staged), params).rowcount
        if _fault_hook is not None:
            _fault_hook("inserted", file, line_number)

        quarantined = sum(reasons.values())
        duplicates = staged - loaded
        share = quarantined / line_number if line_number else 0.0
        status = FAILED_BAD_LINES if share > cfg.bad_line_limit else LOADED
        message = None
        if quarantined:
            detail = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
            message = f"{quarantined} of {line_number} lines ({share:.1%}) quarantined: {detail}"
            if status == FAILED_BAD_LINES:
                message += (f"; over the bad-line limit of {cfg.bad_line_limit:.1%}: its valid lines were "
                            "loaded, the landing fails so the producer gets fixed")
        conn.execute(
            f"update {LEDGER} set size = %s, sha256 = %s, lines = %s, loaded = %s, duplicates = %s, "
            "quarantined = %s, finished_at = clock_timestamp(), status = %s, message = %s where file_id = %s",
            (reader.size, reader.sha256.hexdigest(), line_number, loaded, duplicates, quarantined, status,
             message, file_id),
        )
    return _result(file, status, file_id=file_id, lines=line_number, loaded=loaded, duplicates=duplicates,
                   quarantined=quarantined, quarantined_by_reason=dict(sorted(reasons.items())),
                   message=message)


def land_file(conn, file: LandingFile, turn: _Turn | None = None) -> dict:
    """Land one file on `conn` (autocommit, prepared by _prepare_connection); return its summary."""
    turn = turn or _Turn()
    try:
        previous = _landed_before(conn, file)
        if previous is not None:
            return _compare_with_landed(conn, file, previous)
        try:
            return _land_new_file(conn, file, turn)
        except _LandedConcurrently:
            return _compare_with_landed(conn, file, _landed_before(conn, file))
        except _Unreadable as exc:
            message = f"unreadable, nothing landed (retried by the next run): {exc}"
            try:
                size, sha256 = _file_digest(file.path)
            except OSError:
                size, sha256 = 0, ""
            file_id = _record(conn, file, FAILED_UNREADABLE, size, sha256, message)
            return _result(file, FAILED_UNREADABLE, file_id=file_id, message=message)
    except Exception as exc:
        exc.add_note(f"while landing {file.relative}")
        raise
    finally:
        turn.done()


# --------------------------------------------------------------------------- land


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for name, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"{name} {moment.isoformat()} has no timezone")
    if start is not None and end is not None and end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")


def _stream_names(streams: list[str] | None) -> list[str]:
    if not streams:
        return list(contract.STREAMS)
    unknown = [s for s in streams if s not in contract.STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}; known: {', '.join(contract.STREAMS)}")
    return [s for s in contract.STREAMS if s in streams]  # contract order, no repeats


def _partition_days(files: list[LandingFile]) -> dict[str, set[date]]:
    ahead = max(0, settings().raw_partitions_ahead_days)
    days: dict[str, set[date]] = {}
    for file in files:
        days.setdefault(file.stream, set()).add(file.partition_hour.date())
    for stream_days in days.values():
        newest = max(stream_days)
        stream_days.update(newest + timedelta(days=i) for i in range(1, ahead + 1))
    return days


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total
        self.every = max(1, total // 20)
        self.done = 0
        self.lines = 0
        self.lock = threading.Lock()

    def __call__(self, result: dict) -> None:
        if not self.enabled:
            return
        with self.lock:
            self.done += 1
            self.lines += result["lines"]
            if result["status"] not in (LOADED, SKIPPED):
                print(f"land: {result['status']}: {result['path']}: {result['message']}", file=sys.stderr, flush=True)
            if self.done % self.every == 0 or self.done == self.total:
                print(f"land: {self.done}/{self.total} files, {self.lines:,} lines", file=sys.stderr, flush=True)


def _land_all(conn, url: str, files: list[LandingFile], progress: _Progress) -> list[dict]:
    workers = max(1, min(settings().land_workers, len(files)))
    if workers == 1:
        _prepare_connection(conn)
        results = []
        for file in files:
            results.append(land_file(conn, file))
            progress(results[-1])
        return results

    # Parallel: one connection per worker thread; per stream, each file's dedupe step waits for the
    # previous file's (that file was submitted earlier, so it is always running or done: no deadlock).
    turns: list[_Turn] = []
    last_of_stream: dict[str, _Turn] = {}
    for file in files:
        previous = last_of_stream.get(file.stream)
        turns.append(_Turn(previous.finished if previous else None))
        last_of_stream[file.stream] = turns[-1]

    local = threading.local()
    connections = []
    connections_lock = threading.Lock()

    def work(index: int) -> dict:
        if not hasattr(local, "conn"):
            local.conn = db.connect(url, autocommit=True)
            with connections_lock:
                connections.append(local.conn)
            _prepare_connection(local.conn)
        result = land_file(local.conn, files[index], turns[index])
        progress(result)
        return result

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="routerloop-land")
    try:
        futures = [executor.submit(work, i) for i in range(len(files))]
        results = [future.result() for future in futures]
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        for turn in turns:  # release files waiting for a failed predecessor, so workers can finish
            turn.done()
        raise
    finally:
        executor.shutdown(wait=True)
        for connection in connections:
            connection.close()
    return results


def _totals(results: list[dict]) -> dict:
    def empty() -> dict:
        return {"files": 0, "lines": 0, "loaded": 0, "duplicates": 0, "quarantined": 0,
                "quarantined_by_reason": Counter(), "by_status": Counter()}

    totals, by_stream = empty(), {}
    for result in results:
        for bucket in (totals, by_stream.setdefault(result["stream"], empty())):
            bucket["files"] += 1
            for name in ("lines", "loaded", "duplicates", "quarantined"):
                bucket[name] += result[name]
            bucket["quarantined_by_reason"].update(result["quarantined_by_reason"])
            bucket["by_status"][result["status"]] += 1
    for bucket in (totals, *by_stream.values()):
        bucket["quarantined_by_reason"] = dict(sorted(bucket["quarantined_by_reason"].items()))
        bucket["by_status"] = dict(sorted(bucket["by_status"].items()))
    totals["by_stream"] = by_stream
    return totals


def land(
    landing: Path,
    streams: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: bool = False,
    url: str | None = None,
) -> dict:
    """Land every partition of `streams` (default: all) whose hour lies in [start, end) into schema raw.

    Returns {"ok", "error", "files": [per-file summary], "totals": {..., "by_stream": {...}},
    "ignored": [paths that do not fit the landing layout]}. `ok` is False when a file exceeded the
    bad-line limit, changed after landing, or could not be read; everything else that could land has
    landed. Database errors (and anything unexpected) raise: the file in progress rolls back whole.
    """
    landing = Path(landing)
    names = _stream_names(streams)
    _check_window(start, end)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing zone {landing} does not exist or is not a folder")
    files, ignored = discover(landing, names, start, end)
    url = url or db.database_url()
    report = _Progress(progress, len(files))
    if progress:
        window = f"[{start.isoformat() if start else '-inf'}, {end.isoformat() if end else '+inf'})"
        print(f"land: {len(files)} files of {', '.join(names)} in {window} from {landing}", file=sys.stderr,
              flush=True)
        for item in ignored:
            print(f"land: ignored {item['path']}: {item['reason']}", file=sys.stderr, flush=True)

    with db.connect(url, autocommit=True) as conn:
        ensure_raw_schema(conn)
        for stream, days in _partition_days(files).items():
            ensure_partitions(conn, stream, days)
        results = _land_all(conn, url, files, report)

    failed = [r for r in results if r["status"] in FAILED_STATUSES]
    error = None
    if failed:
        error = f"{len(failed)} of {len(results)} files did not land cleanly: " + "; ".join(
            f"{r['path']} ({r['status']}: {r['message']})" for r in failed[:5]
        ) + ("; ..." if len(failed) > 5 else "")
    return {"ok": not failed, "error": error, "files": results, "totals": _totals(results), "ignored": ignored}


def land_or_raise(*args, **kwargs) -> dict:
    """land(...), raising LandingFailed (with the summary) when it is not ok: for Airflow tasks."""
    result = land(*args, **kwargs)
    if not result["ok"]:
        raise LandingFailed(result)
    return result
