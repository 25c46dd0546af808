"""The warehouse's own schemas (raw, audit, router, reference), created by versioned, idempotent migrations.

dbt owns staging, intermediate, marts and udf. Everything routerloop writes outside dbt
lives in the four schemas below, and every table, type and role of theirs is created here and only
here:

- `MIGRATIONS` is an append-only list. A migration is never edited once released: a change is a new
  migration. `audit.schema_migrations` records which versions a database has, with a checksum of
  their SQL, and `migrate()` refuses a database whose recorded checksum differs from the code's.
- Every statement is idempotent (`if not exists`), so a database created before this table existed
  converges too.
- The raw stream tables follow the contract (routerloop.contract) rather than a version number: after
  the migrations, `migrate()` reconciles them with it (routerloop.warehouse.raw). A new ledger status
  or quarantine reason needs a new migration that replaces the check constraint; a test compares the
  constraints of a migrated database with the vocabularies in code.

Everything runs in one transaction under the MIGRATIONS advisory lock, so concurrent callers (two
landing tasks, a build and a gate) wait for each other and apply each migration once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from routerloop.warehouse import locks

ROUTER_READER_ROLE = "routerloop_router"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """The database's migration history does not match this code."""


MIGRATIONS_TABLE_DDL = """
create schema if not exists audit;
create table if not exists audit.schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
);
comment on table audit.schema_migrations is
    'Warehouse migrations applied to this database (routerloop.warehouse.migrations).';
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "schemas", """
create schema if not exists raw;
create schema if not exists audit;
create schema if not exists router;
"""),
    Migration(2, "landing ledger and quarantine", """
create table if not exists raw.landed_files (
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
    status text not null constraint landed_files_status_check
        check (status in ('loading', 'loaded', 'failed_bad_lines', 'failed_unreadable', 'refused_changed')),
    message text,
    check (status = 'loading' or sha256 is not null)
);
comment on table raw.landed_files is 'One row per landing of a file (path relative to the landing root) and per
refusal: what routerloop.landing did with it. lines = loaded + duplicates + quarantined.';
-- A concurrent lander of the same path waits on this index, then skips the file.
create unique index if not exists landed_files_path_once on raw.landed_files (path)
    where status in ('loading', 'loaded', 'failed_bad_lines');
create index if not exists landed_files_partition_hour on raw.landed_files (partition_hour);
create table if not exists raw.quarantine (
    quarantine_id bigint generated always as identity primary key,
    stream text not null,
    source_file text not null,
    line_number integer not null,
    reason text not null constraint quarantine_reason_check check (reason in (
        'not_utf8', 'invalid_json', 'truncated_line', 'missing_field', 'wrong_type', 'bad_enum',
        'out_of_range', 'bad_timestamp', 'bad_id', 'invalid_text'
    )),
    message text not null,
    raw_bytes bytea not null,
    file_id bigint not null references raw.landed_files (file_id),
    quarantined_at timestamptz not null default now()
);
comment on table raw.quarantine is 'Lines that broke the telemetry contract, byte-exact, with one reason code
from routerloop.contract.REASONS.';
create index if not exists quarantine_file_id on raw.quarantine (file_id);
"""),
    Migration(3, "gate results", """
create table if not exists audit.gate_results (
    gate_result_id bigserial primary key,
    suite text not null,
    batch text not null,
    success boolean not null,
    statistics jsonb not null,
    failed_expectations jsonb not null,
    parameters jsonb not null,
    data_docs_path text,
    validated_at timestamptz not null default now()
);
create index if not exists gate_results_suite_batch on audit.gate_results (suite, batch, validated_at desc);
comment on table audit.gate_results is
    'One row per validation of a batch by a Great Expectations suite (routerloop.gates).';
"""),
    Migration(4, "gate results record the digest of the validated rows", """
-- sha256 of the validated rows where the consumer checks it (the weights: routerloop.weight_rows)
alter table audit.gate_results add column if not exists batch_sha256 text;
"""),
    Migration(5, "router weights", """
create table if not exists router.weight_versions (
    weights_version text primary key,
    as_of_date date not null,
    generated_at timestamptz not null,
    row_count integer not null,
    sha256 text not null,
    dbt_invocation_id text,
    gate_result_id bigint not null
);
create table if not exists router.routing_weights_history (
    weights_version text not null references router.weight_versions,
    strategy text not null,
    team_id text not null,
    tier text not null,
    weight double precision not null,
    previous_weight double precision,
    generated_at timestamptz not null,
    primary key (weights_version, strategy, team_id, tier)
);
-- The current version: the same columns, one row per strategy x team x tier.
create table if not exists router.routing_weights (
    like router.routing_weights_history,
    primary key (strategy, team_id, tier)
);
create table if not exists router.publish_log (
    publish_id bigserial primary key,
    weights_version text not null references router.weight_versions,
    action text not null check (action in ('publish', 'rollback')),
    replaced_version text,
    published_at timestamptz not null default now()
);
comment on table router.routing_weights is 'The routing weights the router uses now (routerloop.export).';
comment on table router.routing_weights_history is 'Every published version of the routing weights.';
comment on table router.weight_versions is 'One row per published weights version: its as-of date, digest and gate.';
comment on table router.publish_log is 'Every publish and rollback: which version replaced which.';
"""),
    Migration(6, "router read-only role", f"""
do $$
begin
    create role {ROUTER_READER_ROLE} nologin;
-- roles are cluster-wide: another database may create it at the same moment
exception when duplicate_object or unique_violation then null;
end $$;
grant usage on schema router to {ROUTER_READER_ROLE};
grant select on all tables in schema router to {ROUTER_READER_ROLE};
alter default privileges in schema router grant select on tables to {ROUTER_READER_ROLE};
"""),
    Migration(7, "dbt run bookkeeping", """
create table if not exists audit.dbt_model_watermarks (
    model text primary key,
    processed_through timestamptz not null
);
create table if not exists audit.dbt_model_runs (
    invocation_id text not null,
    model text not null,
    status text not null,
    completed_at timestamptz not null default clock_timestamp(),
    primary key (invocation_id, model)
);
comment on table audit.dbt_model_watermarks is
    'Per incremental dbt model: the start of its last successful run; it next reads rows staged after it.';
comment on table audit.dbt_model_runs is 'Which dbt invocation built which model (the export names it).';
"""),
    Migration(8, "publish log records older versions", """
-- a version older than the router's current one is recorded in history without replacing it
alter table router.publish_log drop constraint if exists publish_log_action_check;
alter table router.publish_log add constraint publish_log_action_check
    check (action in ('publish', 'rollback', 'recorded'));
comment on table router.publish_log is
    'Every publish, rollback and recorded older version: which version replaced which (none for recorded).';
"""),
    Migration(9, "landing: rejected lines and files, conflicting duplicates, acknowledged failures", """
alter table raw.landed_files drop constraint if exists landed_files_status_check;
alter table raw.landed_files add constraint landed_files_status_check check (status in (
    'loading', 'loaded', 'failed_bad_lines', 'failed_unreadable', 'refused_changed', 'failed_rejected'
));
alter table raw.quarantine drop constraint if exists quarantine_reason_check;
alter table raw.quarantine add constraint quarantine_reason_check check (reason in (
    'not_utf8', 'invalid_json', 'truncated_line', 'missing_field', 'wrong_type', 'bad_enum',
    'out_of_range', 'bad_timestamp', 'bad_id', 'invalid_text', 'conflicting_duplicate', 'rejected_by_database'
));
alter table raw.landed_files add column if not exists conflicts integer not null default 0;
-- Which landing run wrote the row (routerloop.landing sets the session variable): a file landing in a
-- later run than a failure of its stream and hour re-delivers it.
alter table raw.landed_files add column if not exists landing_run text
    default nullif(current_setting('routerloop.landing_run', true), '');
comment on column raw.landed_files.conflicts is
    'Lines quarantined as conflicting_duplicate (counted in quarantined too).';
create table if not exists raw.ledger_acknowledgements (
    file_id bigint primary key references raw.landed_files (file_id),
    acknowledged_by text not null,
    acknowledged_at timestamptz not null default clock_timestamp(),
    reason text not null check (reason <> '')
);
comment on table raw.ledger_acknowledgements is 'A failed landing an operator accepted (routerloop ledger
acknowledge): who, when and why. Its hour no longer fails the hourly landing task.';
"""),
    Migration(10, "reference: the organisation's roster, loaded with history", """
create schema if not exists reference;
create table if not exists reference.loads (
    load_id bigint generated always as identity primary key,
    loaded_at timestamptz not null default clock_timestamp(),
    loaded_by text not null,
    source_dir text not null,
    checksum text not null,
    files jsonb not null,
    effective_from date not null,
    rewrite_history boolean not null default false
);
comment on table reference.loads is 'Every load of the reference folder (routerloop reference load): who, when,
from where, the digest of its files, and the day from which it changed the memberships.';
-- The current snapshot of each file. Databases built before this migration hold the dbt seeds of the
-- same names and columns: they converge by gaining load_id, and the first load replaces their rows.
create table if not exists reference.teams (
    team_id text primary key,
    team_name text not null,
    active_from date not null,
    active_to date,
    check (active_to is null or active_to >= active_from)
);
alter table reference.teams add column if not exists load_id bigint references reference.loads;
create table if not exists reference.agents (
    agent_id text not null,
    team_id text not null,
    active_from date not null,
    active_to date,
    primary key (agent_id, active_from),
    check (active_to is null or active_to >= active_from)
);
alter table reference.agents add column if not exists load_id bigint references reference.loads;
create table if not exists reference.sla_policies (
    sla_policy text primary key,
    tier text not null,
    first_response_minutes integer not null,
    resolve_minutes integer not null,
    warn_at_share numeric not null
);
alter table reference.sla_policies add column if not exists load_id bigint references reference.loads;
create table if not exists reference.experiments (
    experiment_id text not null,
    variant text not null,
    variant_kind text not null,
    traffic_share numeric not null,
    is_control boolean not null,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    primary_metric text not null,
    secondary_metrics text,
    guardrail_metrics text,
    min_sample_per_variant integer,
    min_relative_lift numeric,
    enabled boolean not null,
    primary key (experiment_id, variant)
);
alter table reference.experiments add column if not exists load_id bigint references reference.loads;
-- The history: which agent was in which team on which days, over every load. A load changes only the
-- days from its effective_from on (and days no earlier load covered), unless it rewrites history.
create table if not exists reference.agent_memberships (
    agent_id text not null,
    team_id text not null,
    valid_from date not null,
    valid_to date,
    load_id bigint not null references reference.loads,
    primary key (agent_id, valid_from),
    check (valid_to is null or valid_to >= valid_from)
);
comment on table reference.agent_memberships is 'Agent -> team membership periods over time, kept across
reference loads (valid_to inclusive, null while open); the marts attribute an agent by the period holding
the date.';
"""),
    Migration(11, "append-only audit trail", """
-- The audit trail: rows are appended, never changed or removed, by anyone (owner and superuser
-- included): a trigger refuses UPDATE, DELETE and TRUNCATE. A correction is a new row.
create table if not exists audit.weight_exports (
    export_id bigint generated always as identity primary key,
    weights_version text not null,
    action text not null check (action in ('publish', 'rollback', 'recorded')),
    replaced_version text,
    gate_result_id bigint,
    performed_by text not null default session_user,
    performed_at timestamptz not null default clock_timestamp()
);
comment on table audit.weight_exports is
    'Append-only: every publish, rollback and recorded older version of the routing weights (routerloop.export).';
create table if not exists audit.weight_changes (
    change_id bigint generated always as identity primary key,
    weights_version text not null,
    as_of_date date not null,
    strategy text not null,
    team_id text not null,
    tier text not null,
    previous_weight double precision,
    weight double precision not null,
    rules_fired text,
    rationale jsonb,
    performed_by text not null default session_user,
    recorded_at timestamptz not null default clock_timestamp()
);
comment on table audit.weight_changes is 'Append-only: every weight that changed in a version the router was
given (publish or rollback), with its rationale (formula and inputs) from marts.routing_weights.';
create table if not exists audit.erasures (
    erasure_id bigint generated always as identity primary key,
    customer_hash text not null,
    rows_removed jsonb not null,
    requested_by text not null,
    erased_at timestamptz not null default clock_timestamp()
);
comment on table audit.erasures is 'Append-only: every erasure of a customer (hashed id, rows removed per table).';
create table if not exists audit.api_requests (
    request_id bigint generated always as identity primary key,
    principal text,
    role text,
    method text not null,
    path text not null,
    query text,
    status integer not null,
    requested_at timestamptz not null default clock_timestamp()
);
comment on table audit.api_requests is 'Append-only: requests to the weights, experiments and metrics API.';
create or replace function audit.refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'audit.% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege',
              hint = 'audit rows are never changed or removed; append a correcting row instead';
end
$$;
do $$
declare
    audited text;
begin
    foreach audited in array array['gate_results', 'weight_exports', 'weight_changes', 'erasures', 'api_requests']
    loop
        execute format('create or replace trigger %I before update or delete on audit.%I'
                       ' for each row execute function audit.refuse_change()', audited || '_append_only', audited);
        execute format('create or replace trigger %I before truncate on audit.%I'
                       ' for each statement execute function audit.refuse_change()', audited || '_no_truncate', audited);
    end loop;
end
$$;
"""),
    Migration(12, "personal raw columns are nullable (retention nulls them)", """
-- New databases get them nullable from routerloop.warehouse.raw.column_sql; this converges older ones.
do $$
begin
    if to_regclass('raw.csat_ratings') is not null then
        alter table raw.csat_ratings alter column customer_id drop not null;
    end if;
end
$$;
"""),
    Migration(13, "erasure log: pseudonyms only, how and why requested", """
-- audit.erasures (created by migration 11) is what routerloop.erasure writes. The customer is only
-- ever logged as its HMAC-SHA256 pseudonym (64 hex digits), never as the raw id: the database refuses
-- anything else. NOT VALID: rows written before are kept as they are (the trail is append-only).
alter table audit.erasures add column if not exists requested_via text;
alter table audit.erasures add column if not exists reason text;
do $$
begin
    alter table audit.erasures add constraint erasures_customer_hash_is_a_pseudonym
        check (customer_hash ~ '^[0-9a-f]{64}$') not valid;
exception when duplicate_object then null;
end $$;
do $$
begin
    alter table audit.erasures add constraint erasures_rows_removed_is_an_object
        check (jsonb_typeof(rows_removed) = 'object') not valid;
exception when duplicate_object then null;
end $$;
comment on table audit.erasures is 'Append-only: every erasure of a customer (routerloop erase): the customer''s
HMAC pseudonym (never the raw id), rows removed per relation, who asked, through what, why and when.';
comment on column audit.erasures.requested_via is 'cli, or the Airflow DAG run (dag id and run id).';
-- The same protection as every audit table (migration 11), asserted again for this one.
create or replace trigger erasures_append_only before update or delete on audit.erasures
    for each row execute function audit.refuse_change();
create or replace trigger erasures_no_truncate before truncate on audit.erasures
    for each statement execute function audit.refuse_change();
"""),
    Migration(14, "API bearer tokens", """
-- Schema api, not audit: a token is revoked (updated), so it cannot live among the append-only tables,
-- and `routerloop db grant` gives the pipeline role INSERT on every audit table, which would let it mint
-- tokens. Schema api stays with the administrator who runs the migrations; no routerloop role is
-- granted anything in it. Only a SHA-256 of each token's secret is stored (the secret has 256 random
-- bits, so a fast hash is enough); the token is shown once, by `routerloop token create`.
create schema if not exists api;
revoke all on schema api from public;
create table if not exists api.tokens (
    token_id text primary key,
    role text not null check (role in ('router', 'analyst', 'admin')),
    secret_sha256 text not null,
    note text,
    created_by text not null default session_user,
    created_at timestamptz not null default clock_timestamp(),
    revoked_by text,
    revoked_at timestamptz,
    check ((revoked_at is null) = (revoked_by is null))
);
comment on table api.tokens is 'Bearer tokens of the routerloop API (routerloop token create/revoke): id, role and
the SHA-256 of the secret; never the secret itself.';
"""),
)


def _check_sequence() -> None:
    # Strictly increasing; a gap is a number reserved for a migration of another branch, applied when
    # it lands (migrate() applies every version a database lacks, in this order).
    versions = [m.version for m in MIGRATIONS]
    if versions != sorted(set(versions)) or versions[:1] != [1]:
        raise MigrationError(f"migration versions must increase from 1, got {versions}")


def applied(conn) -> dict[int, str]:
    """Version -> checksum of the migrations this database has (empty before the first migrate())."""
    exists = conn.execute("select to_regclass('audit.schema_migrations') is not null").fetchone()[0]
    if not exists:
        return {}
    return dict(conn.execute("select version, checksum from audit.schema_migrations").fetchall())


def _is_current(conn) -> bool:
    expected = {m.version: m.checksum for m in MIGRATIONS}
    return applied(conn) == expected


def migrate(conn) -> list[int]:
    """Bring the warehouse to the current migrations and the contract's raw tables; idempotent.

    Commits on `conn` (autocommit or not). Returns the versions applied now.
    """
    from routerloop.warehouse import raw

    _check_sequence()
    if _is_current(conn):  # the common case: no lock, one catalog read
        raw.reconcile_stream_tables(conn)
        return []
    with conn.transaction():
        locks.xact_lock(conn, locks.MIGRATIONS)
        conn.execute(MIGRATIONS_TABLE_DDL)
        done = applied(conn)
        for version, checksum in done.items():
            known = next((m for m in MIGRATIONS if m.version == version), None)
            if known is None or known.checksum != checksum:
                raise MigrationError(
                    f"the database has migration {version} with another definition than this code"
                    " (migrations are never edited: add a new one)"
                )
        now = [m for m in MIGRATIONS if m.version not in done]
        for migration in now:
            conn.execute(migration.sql)
            conn.execute(
                "insert into audit.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    raw.reconcile_stream_tables(conn)
    if not conn.autocommit:
        conn.commit()
    return [m.version for m in now]
