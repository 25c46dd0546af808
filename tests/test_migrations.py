"""The warehouse's own schemas: versioned, idempotent migrations and one registry of advisory locks."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from routerloop import contract, db, export
from routerloop.warehouse import locks, migrations, raw

PACKAGE = Path(migrations.__file__).resolve().parents[1]
DDL = re.compile(r"\b(create|alter)\s+(schema|table|type|index|unique index|role)\b", re.IGNORECASE)


@pytest.fixture
def fresh_url(database_url):
    server = database_url.rsplit("/", 1)[0]
    name = database_url.rsplit("/", 1)[1] + "_migrations"
    url = db.create_database(server + "/postgres", name)
    yield url
    db.drop_database(server + "/postgres", name)


def test_migrate_applies_every_version_once_and_is_idempotent(fresh_url):
    with db.connect(fresh_url, autocommit=True) as conn:
        assert migrations.migrate(conn) == [m.version for m in migrations.MIGRATIONS]
        assert migrations.migrate(conn) == []
        recorded = conn.execute("select version, name, checksum from audit.schema_migrations order by 1").fetchall()
        assert recorded == [(m.version, m.name, m.checksum) for m in migrations.MIGRATIONS]
        tables = {r[0] for r in conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema in ('raw', 'audit', 'router')")}
        assert {"raw.landed_files", "raw.quarantine", "raw.router_decisions", "audit.gate_results",
                "audit.dbt_model_watermarks", "router.routing_weights"} <= tables


def test_a_database_with_an_edited_migration_is_refused(fresh_url):
    with db.connect(fresh_url, autocommit=True) as conn:
        migrations.migrate(conn)
        conn.execute("update audit.schema_migrations set checksum = 'edited' where version = 2")
        with pytest.raises(migrations.MigrationError, match="migration 2 with another definition"):
            migrations.migrate(conn)


def test_concurrent_migrations_apply_each_version_once(fresh_url):
    applied, errors = [], []

    def run():
        try:
            with db.connect(fresh_url, autocommit=True) as conn:
                applied.extend(migrations.migrate(conn))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(applied) == [m.version for m in migrations.MIGRATIONS]


def test_versions_increase_from_one():
    # A gap is a number reserved for another branch's migration (migrate() applies whatever is missing).
    versions = [m.version for m in migrations.MIGRATIONS]
    assert versions[0] == 1 and versions == sorted(set(versions))


def test_no_module_outside_the_warehouse_package_creates_tables():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py") if "warehouse" not in path.relative_to(PACKAGE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1) if DDL.search(line)
    ]
    assert offenders == []


def test_lock_keys_are_unique():
    fixed = [locks.MIGRATIONS, locks.RAW_DDL, locks.PUBLISH, locks.UDF_STATISTICS, locks.UDF_WEIGHTS, locks.DBT_BUILD,
             locks.REFERENCE_LOAD, locks.ERASURE]
    streams = [locks.stream_key(s) for s in locks.contract.STREAMS]
    assert len(set(fixed + streams)) == len(fixed) + len(streams)
    assert min(streams) > max(fixed)


def _check_values(conn, constraint: str) -> set[str]:
    definition = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint where conname = %s", (constraint,)
    ).fetchone()[0]
    return set(re.findall(r"'([a-z0-9_]+)'::text", definition))


def test_migrated_vocabularies_match_the_code(fresh_url):
    """A new ledger status or quarantine reason in code needs a migration that replaces the constraint."""
    with db.connect(fresh_url, autocommit=True) as conn:
        migrations.migrate(conn)
        assert _check_values(conn, "landed_files_status_check") == set(raw.LEDGER_STATUSES)
        assert _check_values(conn, "quarantine_reason_check") == set(contract.QUARANTINE_REASONS)
        assert _check_values(conn, "publish_log_action_check") == set(export.LOG_ACTIONS)


def test_the_dbt_lock_macro_uses_the_registry():
    macro = (PACKAGE.parents[1] / "dbt_project" / "macros" / "advisory_locks.sql").read_text()
    assert int(re.search(r"set lock_class = (\d+)", macro).group(1)) == locks.LOCK_CLASS
    keys = dict(re.findall(r"'(\w+)': (\d+)", re.search(r"set keys = \{(.*?)\}", macro).group(1)))
    assert {name: int(key) for name, key in keys.items()} == locks.DBT_LOCKS
