"""Schema `raw`: the landing ledger, the quarantine, and one raw and one keys table per contract stream.

The schema, `raw.landed_files` and `raw.quarantine` are created by the versioned migrations
(routerloop.warehouse.migrations); their vocabularies (ledger statuses, quarantine reasons) are named
here and a test keeps the migrated check constraints equal to them. The per-stream tables follow the
contract instead of a version number, derived from routerloop.contract by functions: each stream gets `raw.<stream>` (typed columns named after the contract's fields in snake_case, plus the
lineage columns `_raw jsonb`, `_source_file`, `_line_number`, `_loaded_at`, `_partition_hour`,
`_file_id`), RANGE-partitioned by day on `_partition_hour`; `raw.<stream>_keys`, the dedupe index (an
unpartitioned table whose primary key is the stream key: a unique index on the day-partitioned raw
table would have to include the partition column, and a probe would visit every partition); and, for
streams with string arrays, the composite type `raw.<stream>_arrays` the typed insert reads them
through. Day partitions are created on demand, idempotently.

reconcile_stream_tables() and ensure_partitions() apply it; both check the catalog first and take the
RAW_DDL advisory lock (routerloop.warehouse.locks) only when something is missing, so parallel landing
tasks never race.
"""

from __future__ import annotations

from datetime import date, timedelta

from routerloop import contract
from routerloop.warehouse import locks

SCHEMA = "raw"
LEDGER = "raw.landed_files"
QUARANTINE = "raw.quarantine"
ACKNOWLEDGEMENTS = "raw.ledger_acknowledgements"

# Ledger statuses. `loading` exists only inside a landing transaction.
LOADING = "loading"
LOADED = "loaded"
FAILED_BAD_LINES = "failed_bad_lines"
FAILED_UNREADABLE = "failed_unreadable"
REFUSED_CHANGED = "refused_changed"
# The database refused the file even line by line (or its path): nothing landed, retried by the next run.
FAILED_REJECTED = "failed_rejected"
LEDGER_STATUSES = (LOADING, LOADED, FAILED_BAD_LINES, FAILED_UNREADABLE, REFUSED_CHANGED, FAILED_REJECTED)
# A path with a row in one of these statuses has landed (or is landing right now): never again.
LANDED_STATUSES = (LOADING, LOADED, FAILED_BAD_LINES)

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


# --------------------------------------------------------------------------- per-stream DDL, from the contract


def column_sql(field: contract.Field) -> str:
    # Personal fields may be required by the contract (landing checks that) but are nullable: retention
    # nulls them once they are old enough (routerloop.privacy.retention).
    not_null = field.required and not field.personal
    return f"{field.column} {COLUMN_TYPES[field.kind]}" + (" not null" if not_null else "")


def key_fields(stream: contract.Stream) -> list[contract.Field]:
    return [stream.field(name) for name in stream.key]


def string_arrays(stream: contract.Stream) -> list[contract.Field]:
    return [f for f in stream.fields if f.kind == "string_array"]


def arrays_type(stream_name: str) -> str:
    return f"{stream_name}_arrays"


def partition_name(stream: str, day: date) -> str:
    return f"{stream}_p{day:%Y%m%d}"


def arrays_type_ddl(stream: contract.Stream, existing_attributes: set[str] | None) -> list[str]:
    """The composite type the typed insert reads a stream's string arrays through (see typed_expression)."""
    fields = string_arrays(stream)
    if not fields:
        return []
    name = arrays_type(stream.name)
    if existing_attributes is None:
        attributes = ", ".join(f'"{f.name}" text[]' for f in fields)
        return [f"create type raw.{name} as ({attributes})",
                f"comment on type raw.{name} is 'The string-array fields of {stream.name}, named as in the "
                "contract: routerloop.landing reads them out of a line''s jsonb with jsonb_populate_record.'"]
    return [f'alter type raw.{name} add attribute "{f.name}" text[]'
            for f in fields if f.name not in existing_attributes]


def stream_tables_ddl(stream: contract.Stream, existing_columns: set[str]) -> list[str]:
    """raw.<stream> (partitioned by day) and raw.<stream>_keys; a contract field the table lacks is added."""
    typed = ",\n    ".join(column_sql(f) for f in stream.fields)
    lineage = ",\n    ".join(f"{name} {kind} not null" for name, kind in LINEAGE_COLUMNS)
    keys = ", ".join(
        f"{f.column} {COLUMN_TYPES[f.kind]}" + (' collate "C"' if COLUMN_TYPES[f.kind] == "text" else "")
        + " not null"
        for f in key_fields(stream)
    )
    key_columns = ", ".join(f.column for f in key_fields(stream))
    name = stream.name
    return [
        f"create table if not exists raw.{name} (\n    {typed},\n    {lineage}\n) "
        "partition by range (_partition_hour)",
        f"comment on table raw.{name} is 'Lines of the {name} stream that passed the contract, one per "
        "key (first landed wins); landed by routerloop.landing. Partitioned by day on _partition_hour.'",
        f"create table if not exists raw.{name}_keys (\n    {keys},\n    _file_id bigint not null,\n"
        f"    _line_number integer not null,\n    _partition_hour timestamptz not null,\n"
        f"    primary key ({key_columns})\n)",
        f"comment on table raw.{name}_keys is 'Every {name} key landed so far and where its row is "
        "(_partition_hour, _file_id, _line_number): the dedupe index of routerloop.landing.'",
        # A field added to the contract later: a nullable column (older rows do not have it).
        *(f"alter table raw.{name} add column if not exists {column_sql(f).replace(' not null', '')}"
          for f in stream.fields if existing_columns and f.column not in existing_columns),
    ]


def partition_ddl(stream: str, day: date) -> str:
    # The day after 9999-12-31 is beyond Python's dates, not PostgreSQL's.
    next_day = "10000-01-01" if day == date.max else (day + timedelta(days=1)).isoformat()
    return (
        f"create table if not exists raw.{partition_name(stream, day)} partition of raw.{stream} "
        f"for values from ('{day.isoformat()} 00:00:00+00') to ('{next_day} 00:00:00+00')"
    )


def typed_expression(stream_name: str, field: contract.Field, record: str = "s.record") -> str:
    """SQL for a field's typed column value out of a line's jsonb `record`."""
    value = f"{record}->>'{field.name}'"
    kind = field.kind
    if kind in ("string", "enum"):
        return value
    if kind == "string_array":
        # jsonb_populate_record converts a JSON array of strings (or null) to text[] in C: 0.45 us per
        # line less than array(select jsonb_array_elements_text(...)), a subquery per row.
        return f'(jsonb_populate_record(null::raw.{arrays_type(stream_name)}, {record}))."{field.name}"'
    return f"({value})::{COLUMN_TYPES[kind]}"


def key_expression(stream_name: str, field: contract.Field, record: str) -> str:
    """typed_expression as the keys table compares it (text keys in collation "C")."""
    expression = typed_expression(stream_name, field, record)
    return f'({expression}) collate "C"' if COLUMN_TYPES[field.kind] == "text" else expression


# --------------------------------------------------------------------------- applying it


def raw_schema_ddl(found: dict[str, set[str]]) -> list[str]:
    """Every statement that brings the stream tables up to date, given the relations found."""
    statements = []
    for stream in contract.STREAMS.values():
        statements.extend(stream_tables_ddl(stream, found.get(stream.name, set())))
        statements.extend(arrays_type_ddl(stream, found.get(arrays_type(stream.name))))
    return statements


def _expected_relations() -> dict[str, set[str]]:
    """Relation name -> columns it must have (indexes: no columns; composite types: attributes)."""
    expected: dict[str, set[str]] = {}
    for stream in contract.STREAMS.values():
        expected[stream.name] = {f.column for f in stream.fields} | {name for name, _ in LINEAGE_COLUMNS}
        expected[f"{stream.name}_keys"] = {f.column for f in key_fields(stream)}
        if arrays := string_arrays(stream):
            expected[arrays_type(stream.name)] = {f.name for f in arrays}
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


def reconcile_stream_tables(conn) -> None:
    """Create every stream's raw and keys table (and arrays type), and add columns the contract gained.

    Called by routerloop.warehouse.migrations.migrate() after the versioned migrations, which create
    the schema, the ledger and the quarantine.

    Idempotent and safe under concurrency: a catalog check first (no locks when all is there), else
    the DDL runs under a transaction-scoped advisory lock, so parallel landing tasks never race.
    """
    if _schema_is_current(_found_relations(conn)):
        return
    with conn.transaction():
        locks.xact_lock(conn, locks.RAW_DDL)
        found = _found_relations(conn)
        if _schema_is_current(found):
            return
        for statement in raw_schema_ddl(found):
            conn.execute(statement)


def ensure_partitions(conn, stream: str, days: set[date]) -> list[str]:
    """Create the missing day partitions of raw.<stream> for `days`; return the names created."""
    wanted = {partition_name(stream, d): d for d in days}

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
        locks.xact_lock(conn, locks.RAW_DDL)
        for name in missing():
            conn.execute(partition_ddl(stream, wanted[name]))
            created.append(name)
    return created
