"""Security and privacy: roles and their denials, pseudonyms, scrubbed text, no personal data beyond raw,
complementary suppression, retention and the append-only audit trail (README, "Security and privacy").

The three-week warehouse (built by the shared fixture with this session's own role prefix) is read,
never changed, except for the grants; retention and the audit trail get databases of their own.
"""

from __future__ import annotations

import re
import stat
from datetime import timedelta

import psycopg
import pytest
from conftest import DEMO_START, fresh_database, pointed_at

from routerloop import audit, cli, db, privacy
from routerloop.config import ConfigError, Settings, dbt_var, settings
from routerloop.simulation import texts
from routerloop.warehouse import roles as access
from routerloop.warehouse.migrations import migrate

# --------------------------------------------------------------------------- roles


@pytest.fixture(scope="module")
def granted(three_week_url) -> dict[str, str]:
    """The three-week warehouse with `routerloop db grant` applied (twice: it is idempotent)."""
    assert cli.main(["db", "grant"]) == 0  # the CLI, on the session database
    with db.connect(three_week_url) as conn:
        access.grant(conn)
        roles = access.grant(conn)
    assert all(name.startswith(settings().role_prefix + "_") for name in roles.values())
    return roles


def _as(url: str, role: str):
    return db.connect(url, user=role, autocommit=True)


DENIED_TO_ANALYST = [
    "select * from raw.csat_ratings limit 1",
    "select * from raw.quarantine limit 1",
    "select * from raw.router_feedback limit 1",
    "select * from staging.stg_support__csat_ratings limit 1",
    "select * from staging.stg_router__feedback limit 1",
    "select * from intermediate.int_sla_csat_windows_aggregated limit 1",
    "select * from reference.agents limit 1",
    "select * from audit.gate_results limit 1",
    "select * from router.routing_weights limit 1",
    "insert into marts.routing_weights select * from marts.routing_weights limit 1",
    "delete from marts.team_sla_csat_rolling",
    "create table marts.mine (x int)",
]
DENIED_TO_ROUTER = [
    "insert into router.routing_weights select * from router.routing_weights limit 1",
    "update router.routing_weights set weight = 2",
    "delete from router.routing_weights",
    "truncate router.routing_weights",
    "insert into router.publish_log (weights_version, action) values ('x', 'publish')",
    "create table router.mine (x int)",
    "insert into audit.api_requests (method, path, status) values ('GET', '/', 200)",
    "update marts.routing_weights set weight = 2",
    "select * from marts.routing_weights limit 1",
    "select * from raw.router_decisions limit 1",
    "select * from staging.stg_router__decisions limit 1",
]


@pytest.mark.parametrize("statement", DENIED_TO_ANALYST)
def test_the_analyst_is_denied_everything_but_reading_marts(granted, three_week_url, statement):
    with _as(three_week_url, granted["analyst"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


@pytest.mark.parametrize("statement", DENIED_TO_ROUTER)
def test_the_router_is_denied_every_write_and_everything_outside_router(granted, three_week_url, statement):
    with _as(three_week_url, granted["router"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_each_role_reads_what_it_is_granted(granted, three_week_url):
    with _as(three_week_url, granted["analyst"]) as conn:
        marts = [r for (r,) in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'marts' and c.relkind in ('r', 'p', 'v', 'm')"
        )]
        assert {"team_sla_csat_rolling", "agent_sla_csat_rolling", "routing_weights"} <= set(marts)
        for relation in marts:  # every mart, including the ones dbt rebuilt after the grant (dbt's grants)
            conn.execute(f"select * from marts.{relation} limit 1").fetchall()
    with _as(three_week_url, granted["router"]) as conn:
        conn.execute("select * from router.routing_weights").fetchall()
        conn.execute("select * from router.weight_versions").fetchall()
    with _as(three_week_url, granted["pipeline"]) as conn:
        assert conn.execute("select count(*) from raw.csat_ratings").fetchone()[0] > 0
        conn.execute("select count(*) from staging.stg_support__csat_ratings").fetchone()
        owners = {o for (o,) in conn.execute(
            "select distinct nspowner::regrole::text from pg_namespace"
            " where nspname in ('raw', 'staging', 'intermediate', 'marts', 'router')")}
        assert owners == {granted["pipeline"]}
        with conn.transaction():
            conn.execute("insert into audit.api_requests (method, path, status) values ('GET', '/healthz', 200)")
        # the pipeline appends to the trail but may not change it (privilege; the trigger would refuse too)
        for statement in ("update audit.api_requests set status = 500", "delete from audit.api_requests",
                          "truncate audit.gate_results"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_dbt_keeps_the_marts_granted_to_the_analyst(three_week_url):
    """The build granted every mart to this session's analyst (dbt's +grants), before any `db grant`."""
    analyst = access.role_names()["analyst"]
    with db.connect(three_week_url, autocommit=True) as conn:
        missing = conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'marts' and c.relkind in ('r', 'p') and not c.relispartition"
            " and not has_table_privilege(%s, c.oid, 'select')",
            (analyst,),
        ).fetchall()
    assert missing == []


# --------------------------------------------------------------------------- pseudonyms and scrubbed text


def test_staging_holds_the_keyed_hmac_of_ids_and_no_email(three_week_url):
    key = privacy.hmac_key()
    with db.connect(three_week_url, autocommit=True) as conn:
        pairs = conn.execute(
            "select r.customer_id, s.customer_hash from raw.csat_ratings r"
            " join staging.stg_support__csat_ratings s using (rating_id) limit 200"
        ).fetchall()
        actors = conn.execute(
            "select r.actor_id, s.actor_hash from raw.router_feedback r"
            " join staging.stg_router__feedback s using (feedback_id) where r.actor_id is not null limit 200"
        ).fetchall()
        columns = {c for (c,) in conn.execute(
            "select column_name from information_schema.columns where table_schema <> 'raw'"
            " and table_schema not in ('pg_catalog', 'information_schema')"
        )}
    assert pairs and actors
    assert all(h == privacy.pseudonymize(c, key) and re.fullmatch("[0-9a-f]{64}", h) for c, h in pairs)
    assert all(h == privacy.pseudonymize(a, key) for a, h in actors)
    assert not {"customer_id", "customer_email", "actor_id"} & columns


def test_the_scrubber_removes_every_planted_value_and_only_those(three_week_url):
    """Recall 100 % on every planted kind, and no placeholder where nothing was planted (precision)."""
    with db.connect(three_week_url, autocommit=True) as conn:
        rows = conn.execute(
            "select r.comment, s.comment, s.comment_redactions from raw.csat_ratings r"
            " join staging.stg_support__csat_ratings s using (rating_id) where r.comment is not null"
            " union all select r.free_text, s.free_text, s.free_text_redactions from raw.router_feedback r"
            " join staging.stg_router__feedback s using (feedback_id) where r.free_text is not null"
        ).fetchall()
    planted_kinds = set()
    for raw_text, scrubbed, redactions in rows:
        planted = texts.planted_values(raw_text)
        planted_kinds |= set(planted)
        for kind, values in planted.items():
            for value in values:
                assert value not in scrubbed, (raw_text, scrubbed)
            assert scrubbed.count(texts.PLANTED_KINDS[kind]) == len(values), (raw_text, scrubbed)
        assert redactions == sum(len(v) for v in planted.values()), (raw_text, scrubbed, redactions)
    assert planted_kinds == set(texts.PLANTED_KINDS)


def _planted_values(conn) -> set[str]:
    """Every personal value in raw that must not appear anywhere else: ids, emails, planted text values
    (phone numbers also as their digits)."""
    values = set()
    for (value,) in conn.execute(
        "select customer_id from raw.csat_ratings union select customer_email from raw.csat_ratings"
        " union select actor_id from raw.router_feedback"
    ):
        if value:
            values.add(value)
    for (text,) in conn.execute(
        "select comment from raw.csat_ratings where comment is not null"
        " union all select free_text from raw.router_feedback where free_text is not null"
    ):
        for kind, found in texts.planted_values(text).items():
            values.update(found)
            if kind == "phone":
                values.update(re.sub(r"\D", "", v) for v in found)
    return values


_TOKEN = re.compile(r"[\w.%+-]+@[\w.-]+\w|\+?\d[\d ().-]{5,}\d|[\w-]+")


def test_nothing_beyond_raw_holds_a_planted_personal_value(granted, three_week_url):
    """Scan every column of every relation the analyst can read (and everything else outside raw too)."""
    with db.connect(three_week_url, autocommit=True) as conn:
        planted = _planted_values(conn)
        relations = conn.execute(
            "select n.nspname, c.relname, has_schema_privilege(%(analyst)s, n.oid, 'usage')"
            "   and has_table_privilege(%(analyst)s, c.oid, 'select')"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition"
            " and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')",
            {"analyst": granted["analyst"]},
        ).fetchall()
    assert len(planted) > 1000 and any("@" in v for v in planted) and any(v.startswith("ACC-") for v in planted)
    readable = {(s, r) for s, r, analyst_reads in relations if analyst_reads}
    assert readable and {s for s, _ in readable} == {"marts"}
    outside_raw = [(s, r) for s, r, _ in relations if s != "raw"]
    assert readable <= set(outside_raw)
    with db.connect(three_week_url, autocommit=True) as conn:
        # the scan finds what is there: raw holds every kind
        in_raw = {token for _, _, token in _leaks(conn, [("raw", "csat_ratings"), ("raw", "router_feedback")], planted)}
        assert any("@" in t for t in in_raw) and any(t.startswith("ACC-") for t in in_raw)
        assert any(t.startswith("cus_") for t in in_raw) and any(t.startswith("+") for t in in_raw)
        assert _leaks(conn, outside_raw, planted) == []


def _leaks(conn, relations, planted: set[str]) -> list[tuple]:
    found = []
    for schema, relation in relations:
        with conn.cursor().copy(f'copy (select * from "{schema}"."{relation}") to stdout') as copy:
            for row in copy.rows():
                for cell in row:
                    if cell is None:
                        continue
                    for token in _TOKEN.findall(str(cell)):
                        if token in planted or re.sub(r"\D", "", token) in planted:
                            found.append((schema, relation, token))
    return found


# --------------------------------------------------------------------------- complementary suppression


def test_no_suppressed_agent_csat_can_be_recomputed_from_published_rows(granted, three_week_url):
    """Team total minus the other agents: for every team and window, what is hidden is never one cell."""
    k = int(dbt_var("csat_suppression_k"))
    with _as(three_week_url, granted["analyst"]) as conn:
        teams = {(d, w, t): (n, mean) for d, w, t, n, mean in conn.execute(
            "select as_of_date, window_days, team_id, csat_responses, csat_mean from marts.team_sla_csat_rolling")}
        agents: dict[tuple, list] = {}
        for d, w, t, n, suppressed, mean in conn.execute(
            "select as_of_date, window_days, team_id, csat_responses, csat_suppressed, csat_mean"
            " from marts.agent_sla_csat_rolling"
        ):
            agents.setdefault((d, w, t), []).append((n, suppressed, mean))
    exposed, complemented = [], 0
    for key, cells in agents.items():
        team_n, team_mean = teams[key]
        hidden = [n for n, suppressed, _ in cells if suppressed and n > 0]
        assert all(mean is None for _, suppressed, mean in cells if suppressed)
        complemented += sum(1 for n, suppressed, _ in cells if suppressed and n >= k)
        if team_mean is None:
            continue
        unassigned = team_n - sum(n for n, _, _ in cells)
        # one hidden agent and no other hidden ratings: team sum - published sums = that agent's sum
        if len(hidden) == 1 and unassigned == 0:
            published = sum(n * mean for n, suppressed, mean in cells if not suppressed)
            exposed.append((key, team_n * team_mean - published))
        # no hidden agent but a few ratings without one: their sum would be exposed
        if not hidden and 0 < unassigned < k:
            exposed.append((key, unassigned))
    assert exposed == []
    assert complemented > 0, "the data never needed complementary suppression: the test proves nothing"


# --------------------------------------------------------------------------- key and settings


def test_production_mode_without_a_key_is_a_startup_error(monkeypatch):
    with pytest.raises(ConfigError, match="ROUTERLOOP_HMAC_KEY"):
        Settings(production=True)
    assert Settings(production=True, hmac_key="k" * 40).hmac_key == "k" * 40
    assert "k" * 40 not in repr(Settings(production=True, hmac_key="k" * 40))
    with pytest.raises(ConfigError, match="role_prefix"):
        Settings(role_prefix="Bad-Prefix")


def test_the_local_key_is_generated_once_private_and_reaches_dbt_only_through_pgoptions(
        database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTERLOOP_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("ROUTERLOOP_HMAC_KEY", raising=False)
    from routerloop.config import reload_settings

    try:
        reload_settings()
        key = privacy.hmac_key()
        assert privacy.hmac_key() == key and len(key) == 64
        assert stat.S_IMODE((tmp_path / privacy.KEY_FILE).stat().st_mode) == 0o600
        env = privacy.key_env({"PGOPTIONS": "-c statement_timeout=0 -c routerloop.hmac_ipad=old"})
        ipad, opad = privacy.hmac_pads(key)
        assert env["PGOPTIONS"] == (f"-c statement_timeout=0 -c {privacy.IPAD_SETTING}={ipad}"
                                    f" -c {privacy.OPAD_SETTING}={opad}")
        # PostgreSQL's sha256 with the pads is HMAC-SHA256
        with db.connect(database_url, options=env["PGOPTIONS"]) as conn:
            (value,) = conn.execute(
                "select encode(sha256(decode(current_setting('routerloop.hmac_opad'), 'hex')"
                " || sha256(decode(current_setting('routerloop.hmac_ipad'), 'hex') || convert_to(%s, 'UTF8'))),"
                " 'hex')", ("cus_000042",)).fetchone()
        assert value == privacy.pseudonymize("cus_000042", key)
    finally:
        monkeypatch.undo()
        reload_settings()


# --------------------------------------------------------------------------- retention


def test_retention_nulls_personal_data_in_old_raw_rows_only(database_url, small_landing, tmp_path):
    from routerloop.landing import land

    with fresh_database(database_url, "retention") as url, pointed_at(url, tmp_path):
        assert land(landing=small_landing, progress=False, url=url).ok
        now = DEMO_START + timedelta(days=90, hours=12)  # cutoff: noon of the first day
        with db.connect(url, autocommit=True) as conn:
            before = conn.execute(
                "select count(*) filter (where _partition_hour < %s and customer_id is not null),"
                " count(*) filter (where _partition_hour >= %s) from raw.csat_ratings",
                (DEMO_START + timedelta(hours=12),) * 2,
            ).fetchone()
            result = privacy.retention(conn, now=now, days=90)
            assert result["nulled"]["raw.csat_ratings"]["customer_id"] == before[0] > 0
            assert result["nulled"]["raw.router_feedback"]["actor_id"] > 0
            old, kept = conn.execute(
                "select count(*) filter (where _partition_hour < %(cut)s and (customer_id is not null"
                "   or customer_email is not null or comment is not null"
                "   or _raw ?| array['customerId', 'customerEmail', 'comment'])),"
                " count(*) filter (where _partition_hour >= %(cut)s and customer_id is not null"
                "   and _raw ? 'customerId')"
                " from raw.csat_ratings",
                {"cut": DEMO_START + timedelta(hours=12)},
            ).fetchone()
            assert old == 0 and kept == before[1] > 0
            again = privacy.retention(conn, now=now, days=90)
            assert all(n == 0 for counts in again["nulled"].values() for n in counts.values())
        assert cli.main(["retention", "--days", "90"]) == 0  # the CLI: today, nothing is 90 days old


# --------------------------------------------------------------------------- the audit trail


@pytest.mark.parametrize("table", audit.APPEND_ONLY_TABLES)
def test_the_audit_trail_is_append_only_even_for_its_owner(database_url, table):
    rows = {  # table: (a row, a column to update)
        "audit.gate_results": ("(suite, batch, success, statistics, failed_expectations, parameters)"
                               " values ('s', 'b', true, '{}', '[]', '{}')", "success"),
        "audit.weight_exports": ("(weights_version, action) values ('v', 'publish')", "weights_version"),
        "audit.weight_changes": ("(weights_version, as_of_date, strategy, team_id, tier, weight)"
                                 " values ('v', '2026-11-01', 'sla', 't', 'T1', 1.0)", "weight"),
        "audit.erasures": ("(customer_hash, rows_removed, requested_by) values (repeat('0', 64), '{}', 'me')",
                           "requested_by"),
        "audit.api_requests": ("(method, path, status) values ('GET', '/healthz', 200)", "status"),
    }
    row, column = rows[table]
    with db.connect(database_url, autocommit=True) as conn:  # a superuser: privileges do not stop it
        migrate(conn)
        conn.execute(f"insert into {table} {row}")
        count = conn.execute(f"select count(*) from {table}").fetchone()[0]
        for statement in (f"update {table} set {column} = {column}", f"delete from {table}", f"truncate {table}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        assert conn.execute(f"select count(*) from {table}").fetchone()[0] == count


def test_audit_tail_prints_the_newest_entries(database_url, capsys):
    with db.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("insert into audit.weight_exports (weights_version, action) values ('tail-test', 'rollback')")
        newest = audit.tail(conn, 1)
    assert newest[0]["kind"] == "weight_export" and newest[0]["weights_version"] == "tail-test"
    assert cli.main(["audit", "tail", "-n", "3", "--kind", "weight_export"]) == 0
    assert "tail-test" in capsys.readouterr().out
    assert cli.main(["audit", "tail", "-n", "0"]) == 2
