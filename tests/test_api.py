"""The API (README, "Security and privacy" > "API"): every endpoint's auth matrix, what each returns
against a small built world, the database roles behind the roles, the audit of every request, the
committed OpenAPI spec, a schemathesis run with and without a token, and the Airflow plugin mount.

One database of this module's own: three days generated, landed, built, gated and published, with
`routerloop db grant` applied and a token of each role (and a revoked one).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
import schemathesis
from conftest import DEMO_START, fresh_database, pointed_at
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from routerloop import cli, db, gate_results
from routerloop.api import auth, spec_path
from routerloop.api.app import create_app
from routerloop.api.queries import Database
from routerloop.config import dbt_var, reload_settings
from routerloop.warehouse.roles import grant

HOURS = 72


@dataclass
class World:
    url: str
    app: object
    client: TestClient
    tokens: dict[str, str]  # role (and "revoked") -> token
    ids: dict[str, str]  # role -> token id
    version: str


@pytest.fixture(scope="module")
def world(database_url, tmp_path_factory):
    from routerloop import export, gates
    from routerloop.build import build
    from routerloop.landing import land
    from routerloop.reference import load as load_reference
    from routerloop.simulation import generate

    work = tmp_path_factory.mktemp("api")
    with fresh_database(database_url, "api") as url, pointed_at(url, work), pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERLOOP_EXPORT_DIR", str(work / "exports"))
        patch.setenv("ROUTERLOOP_REPORT_DIR", str(work / "reports"))
        reload_settings()
        generate(out=work / "landing", start=DEMO_START, hours=HOURS, seed=31, decisions_per_hour=40,
                 bad_rate=0.0, progress=False)
        load_reference(url=url)
        assert land(landing=work / "landing", progress=False, url=url).ok
        built = build(full_refresh=True, url=url, quiet=True)
        assert built["ok"], built["failed"]
        day = (DEMO_START + timedelta(hours=HOURS - 1)).date()
        assert all(r.success for r in gates.gate_marts(day, url=url, raise_on_failure=False))
        version = export.publish(day, url=url).weights_version
        tokens, ids = {}, {}
        with db.connect(url, autocommit=True) as conn:
            grant(conn)
            for role in (*auth.ROLES, "revoked"):
                ids[role], tokens[role] = auth.create(conn, "router" if role == "revoked" else role, note="test")
            assert auth.revoke(conn, ids["revoked"])
        database = Database(url)
        app = create_app(url, database=database)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(url, app, client, tokens, ids, version)
        database.close()


def _get(world: World, path: str, who: str | None = None, **headers):
    if who:
        headers["Authorization"] = f"Bearer {world.tokens[who]}" if who in world.tokens else who
    return world.client.get(path, headers=headers)


def _rows(url: str, sql: str, params=()) -> list[tuple]:
    with db.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


# --------------------------------------------------------------------------- the auth matrix

WEIGHTS = {"router": 200, "analyst": 403, "admin": 200}
CSAT = {"router": 403, "analyst": 200, "admin": 200}
ADMIN = {"router": 403, "analyst": 403, "admin": 200}
ENDPOINTS = [
    ("/api/v1/weights/current", WEIGHTS),
    ("/api/v1/weights/{version}", WEIGHTS),
    ("/api/v1/weights/changes?since=2026-11-02", CSAT),
    ("/api/v1/experiments", CSAT),
    ("/api/v1/experiments/exp_weights_2026_11/results", CSAT),
    ("/api/v1/metrics/summary?window_days=7", CSAT),
    ("/metrics", ADMIN),
]
NOT_A_TOKEN = ["Bearer", "Bearer rl_000000000000_" + "A" * 43, "Basic dXNlcjpwYXNz", "rl_abc"]


@pytest.mark.parametrize(("path", "expected"), ENDPOINTS, ids=[p for p, _ in ENDPOINTS])
def test_each_endpoint_answers_401_403_or_200_by_token(world, path, expected):
    path = path.format(version=world.version)
    for role, status in expected.items():
        response = _get(world, path, role)
        assert response.status_code == status, (role, response.text)
        if status == 403:
            assert f"role {role} may not read this" in response.json()["detail"]
    for who in [None, "revoked", *NOT_A_TOKEN]:
        response = _get(world, path, who)
        assert response.status_code == 401, (who, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


def test_healthz_needs_no_token(world):
    assert _get(world, "/healthz").json() == {"status": "ok"}


# --------------------------------------------------------------------------- what each endpoint returns


def test_current_weights_are_the_routers_table_page_by_page(world):
    expected = _rows(world.url, "select strategy, team_id, tier, weight, previous_weight from router.routing_weights"
                                " order by strategy, team_id, tier")
    rows, offset, pages = [], 0, 0
    while offset is not None:
        body = _get(world, f"/api/v1/weights/current?limit=25&offset={offset}", "router").json()
        assert body["weights_version"] == world.version and body["current"] is True
        assert body["row_count"] == len(expected) and len(body["weights"]) <= 25
        rows += [tuple(r.values()) for r in body["weights"]]
        offset, pages = body["next_offset"], pages + 1
    assert rows == expected and pages == -(-len(expected) // 25)
    one_team = _get(world, f"/api/v1/weights/current?team_id={expected[0][1]}", "router").json()["weights"]
    assert {r["team_id"] for r in one_team} == {expected[0][1]} and len(one_team) == len(expected) // len(
        {r[1] for r in expected})


def test_a_version_is_served_from_history_and_unknown_ones_are_404(world):
    body = _get(world, f"/api/v1/weights/{world.version}", "router").json()
    current = _get(world, "/api/v1/weights/current", "router").json()
    assert body == current
    assert _get(world, "/api/v1/weights/20200101-000000000000", "router").status_code == 404
    bad = _get(world, "/api/v1/weights/latest;drop table x", "router")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "version"]


def test_weight_changes_carry_their_rationale_and_filters_apply(world):
    body = _get(world, "/api/v1/weights/changes?since=2026-11-03&team_id=team_billing&limit=1000", "analyst").json()
    expected = _rows(world.url, "select count(*) from marts.weight_adjustment_log"
                                " where as_of_date >= '2026-11-03' and team_id = 'team_billing'")[0][0]
    assert len(body["changes"]) == expected > 0 and body["next_offset"] is None
    for change in body["changes"]:
        assert change["team_id"] == "team_billing" and change["as_of_date"] >= "2026-11-03"
        assert {"formula", "inputs"} <= set(change["rationale"])


def test_experiments_and_their_results(world):
    listed = _get(world, "/api/v1/experiments", "analyst").json()["experiments"]
    assert [e["experiment_id"] for e in listed] == [r[0] for r in _rows(
        world.url, "select distinct experiment_id from marts.ab_results order by 1")]
    first = listed[0]
    results = _get(world, f"/api/v1/experiments/{first['experiment_id']}/results", "analyst").json()
    assert results["as_of_date"] == first["last_as_of_date"]
    assert {r["variant"] for r in results["results"]} == set(first["variants"])
    assert _get(world, "/api/v1/experiments/no_such_experiment/results", "analyst").status_code == 404


def test_the_summary_gives_each_team_sla_csat_and_the_routing_quality(world):
    body = _get(world, "/api/v1/metrics/summary?window_days=7", "analyst").json()
    teams = _rows(world.url, "select team_id, csat_mean from marts.team_sla_csat_rolling"
                             " where window_days = 7 and as_of_date = %s order by team_id", (body["as_of_date"],))
    assert [(t["team_id"], t["csat_mean"]) for t in body["teams"]] == teams
    assert {q["label_kind"] for q in body["routing_quality"]} == {"tier", "action"}


def test_bad_parameters_get_a_422_naming_the_parameter(world):
    windows = dbt_var("rolling_windows")
    for path, where in [
        ("/api/v1/metrics/summary?window_days=3", ["query", "window_days"]),
        ("/api/v1/weights/changes?since=yesterday", ["query", "since"]),
        (f"/api/v1/weights/current?limit={10**6}", ["query", "limit"]),
        ("/api/v1/weights/current?offset=-1", ["query", "offset"]),
        ("/api/v1/weights/current?team_id=%00", ["query", "team_id"]),
    ]:
        response = _get(world, path, "admin")
        assert response.status_code == 422, path
        assert response.json()["detail"][0]["loc"] == where
    message = _get(world, "/api/v1/metrics/summary?window_days=3", "admin").json()["detail"][0]["msg"]
    assert all(str(w) in message for w in windows)


def test_prometheus_metrics_follow_the_naming_rules_and_match_the_warehouse(world):
    response = _get(world, "/metrics", "admin")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) routerloop_[a-z_]+ .+", line), line
            if line.startswith("# TYPE") and line.endswith(" counter"):
                assert line.split()[2].endswith("_total")
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    assert samples[f'routerloop_weights_exported_info{{version="{world.version}",as_of_date="2026-11-03"}}'] == 1
    newest = _rows(world.url, "select extract(epoch from max(created_at)) from raw.router_decisions")[0][0]
    assert samples['routerloop_stream_newest_event_timestamp_seconds{stream="router_decisions"}'] == pytest.approx(
        float(newest))
    assert samples['routerloop_quarantined_lines_total{stream="router_decisions"}'] == 0
    assert samples[f'routerloop_gate_last_success{{suite="{gate_results.WEIGHTS_SUITE}"}}'] == 1
    for mart in ("routing_weights", "ab_results", "team_sla_csat_rolling"):
        count = _rows(world.url, f"select count(*) from marts.{mart}")[0][0]
        assert samples[f'routerloop_mart_rows{{mart="{mart}"}}'] == count
    logged = _rows(world.url, "select count(*) from marts.weight_adjustment_log where run_id ="
                              " (select run_id from marts.weight_adjustment_log order by logged_at desc limit 1)")
    assert samples["routerloop_weight_changes_last_run"] == logged[0][0]
    assert "routerloop_weights_published_timestamp_seconds" in samples


# --------------------------------------------------------------------------- the database decides


def test_each_role_reads_through_its_postgresql_role_and_cannot_write(world):
    database = world.app.state.database
    for kind, statement in [
        ("router", "select * from marts.team_sla_csat_rolling limit 1"),  # a bug serving CSAT to the router
        ("router", "select * from raw.csat_ratings limit 1"),
        ("analyst", "select * from router.routing_weights limit 1"),
        ("analyst", "select * from raw.csat_ratings limit 1"),
        ("analyst", "select * from api.tokens"),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), database.reading_as(kind) as conn:
            conn.execute(statement)
    # admin reads as the pipeline role, in a read-only transaction: no write gets through either
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), database.reading_as("pipeline") as conn:
        conn.execute("delete from router.routing_weights")
    assert _rows(world.url, "select count(*) from router.routing_weights")[0][0] > 0


# --------------------------------------------------------------------------- the audit trail


def test_every_api_request_is_audited_with_who_what_and_status(world):
    before = _rows(world.url, "select max(request_id) from audit.api_requests")[0][0] or 0
    _get(world, "/api/v1/weights/current?limit=5", "router")
    _get(world, "/api/v1/metrics/summary", "router")
    _get(world, "/metrics")
    _get(world, "/api/v1/weights/changes?since=bad", "analyst")
    _get(world, "/healthz")
    rows = _rows(world.url, "select principal, role, method, path, query, status from audit.api_requests"
                            " where request_id > %s order by request_id", (before,))
    assert rows == [
        (world.ids["router"], "router", "GET", "/api/v1/weights/current", "limit=5", 200),
        (world.ids["router"], "router", "GET", "/api/v1/metrics/summary", None, 403),
        (None, None, "GET", "/metrics", None, 401),
        (world.ids["analyst"], "analyst", "GET", "/api/v1/weights/changes", "since=bad", 422),
    ]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _rows(world.url, "update audit.api_requests set status = 200 where request_id > %s", (before,))


def test_a_request_whose_audit_row_cannot_be_written_is_refused(world):
    """The API's login without INSERT on audit.api_requests (but member of the router role, able to
    look tokens up): the weights are readable, yet every answer is a 503 and nothing is served."""
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from routerloop.config import settings
    from routerloop.warehouse.roles import role_names

    login = f"{settings().role_prefix}_apitest"
    with db.connect(world.url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login in role {}").format(
            sql.Identifier(login), sql.Identifier(role_names()["router"])))
        conn.execute(sql.SQL("grant usage on schema api to {0}; grant select on api.tokens to {0}").format(
            sql.Identifier(login)))
    database = Database(make_conninfo(world.url, user=login))
    try:
        with TestClient(create_app(database=database), raise_server_exceptions=False) as client:
            response = client.get("/api/v1/weights/current", headers={"Authorization": f"Bearer {world.tokens['router']}"})
        assert response.status_code == 503 and "audit trail" in response.json()["detail"]
        assert "weights" not in response.text
    finally:
        database.close()
        with db.connect(world.url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop owned by {0}; drop role {0}").format(sql.Identifier(login)))


# --------------------------------------------------------------------------- tokens


def test_token_create_prints_it_once_and_stores_only_a_hash(world, capsys):
    assert cli.main(["token", "create", "--role", "analyst", "--note", "cli test"]) == 0
    token = capsys.readouterr().out.strip()
    token_id = token.split("_")[1]
    stored = _rows(world.url, "select row_to_json(t)::text from api.tokens t where token_id = %s", (token_id,))
    assert len(stored) == 1 and token.split("_", 2)[2] not in stored[0][0]
    assert _get(world, "/api/v1/experiments", f"Bearer {token}").status_code == 200
    assert cli.main(["token", "revoke", token_id]) == 0
    assert _get(world, "/api/v1/experiments", f"Bearer {token}").status_code == 401
    assert cli.main(["token", "create"]) == 2  # no --role
    assert cli.main(["token", "revoke", "000000000000"]) == 2


def test_no_routerloop_role_can_read_or_mint_tokens(world):
    with db.connect(world.url, autocommit=True) as conn:
        roles = grant(conn)
    for role in roles.values():
        with db.connect(world.url, user=role, autocommit=True) as conn, pytest.raises(
                psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into api.tokens (token_id, role, secret_sha256) values ('x', 'admin', 'x')")


# --------------------------------------------------------------------------- spec, fuzzing, serving


def test_the_committed_openapi_spec_is_the_apps():
    committed = json.loads(spec_path().read_text())
    assert committed == create_app("postgresql://unused@invalid.invalid/x").openapi(), (
        "docs/openapi.json is stale: run `routerloop openapi`")


class _Target:
    """The ASGI app schemathesis calls: the spec is loaded at import (from an app that needs no database);
    the fuzzing tests point it at the world's app (schemathesis' from_fixture does not work on pytest 9)."""

    def __init__(self):
        self.app = create_app("postgresql://unused@invalid.invalid/spec-only")

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


FUZZ_TARGET = _Target()
schema = schemathesis.openapi.from_asgi("/openapi.json", FUZZ_TARGET)
FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture
def fuzzed(world):
    FUZZ_TARGET.app = world.app
    return world


@schema.parametrize()
@FUZZ
def test_fuzzing_with_an_admin_token_finds_no_5xx_and_no_schema_violation(case, fuzzed):
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzzed.tokens['admin']}"})


@schema.parametrize()
@FUZZ
def test_fuzzing_without_a_token_finds_no_5xx_and_no_schema_violation(case, fuzzed):
    response = case.call_and_validate()
    if case.path != "/healthz" and case.method == "GET":  # other methods: 405, checked by schemathesis
        assert response.status_code == 401


def test_the_airflow_plugin_mounts_the_app_under_its_prefix(world):
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from fastapi import FastAPI

    import routerloop_plugin

    (mounted,) = routerloop_plugin.RouterloopPlugin.fastapi_apps
    assert not any(mounted["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    host = FastAPI()
    host.mount(mounted["url_prefix"], create_app(world.url))  # what Airflow's init_plugins does
    with TestClient(host) as client:
        prefix = mounted["url_prefix"]
        assert client.get(f"{prefix}/api/v1/weights/current").status_code == 401  # Airflow adds no auth
        ok = client.get(f"{prefix}/api/v1/weights/current?limit=1",
                        headers={"Authorization": f"Bearer {world.tokens['router']}"})
        assert ok.status_code == 200 and ok.json()["weights_version"] == world.version
    last = _rows(world.url, "select path, status from audit.api_requests order by request_id desc limit 1")
    assert last == [("/api/v1/weights/current", 200)]


def test_the_core_package_and_the_api_import_no_airflow():
    code = ("import sys, routerloop.api, routerloop.api.app, routerloop.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
