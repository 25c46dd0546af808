"""The dbt staging layer on a landed, generated day: it builds with every test green and agrees with raw."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from routerloop.build import build
from routerloop.landing import land
from routerloop.reference import load as load_reference
from routerloop.warehouse.raw import ensure_partitions

pytestmark = pytest.mark.slow

STAGING_SELECT = ["path:models/staging"]
STAGING_MODELS = {
    "stg_router__decisions",
    "stg_router__feedback",
    "stg_router__review_items",
    "stg_router__decision_outcomes",
    "stg_support__sla_outcomes",
    "stg_support__csat_ratings",
    "stg_reference__teams",
    "stg_reference__agents",
    "stg_reference__sla_policies",
    "stg_reference__experiments",
}
# Staging model -> (raw table, the stream key it has one row per).
ONE_ROW_PER_KEY = {
    "stg_router__decisions": ("router_decisions", ("decision_id",)),
    "stg_router__feedback": ("router_feedback", ("feedback_id",)),
    "stg_router__review_items": ("router_review_queue", ("review_id",)),
    "stg_router__decision_outcomes": ("decision_outcomes", ("outcome_id",)),
    "stg_support__sla_outcomes": ("sla_outcomes", ("ticket_id", "sla_policy")),
    "stg_support__csat_ratings": ("csat_ratings", ("rating_id",)),
}


@pytest.fixture(scope="module")
def staged(small_landing, database_url, tmp_path_factory):
    """Load the roster, land the generated day, then `dbt build` staging (models, data and unit tests)."""
    target = tmp_path_factory.mktemp("staging_dbt")
    with pytest.MonkeyPatch.context() as patch:
        # Private dbt artifacts: other dbt runs (parallel sessions) must not share target/.
        patch.setenv("DBT_TARGET_PATH", str(target / "target"))
        patch.setenv("DBT_LOG_PATH", str(target / "logs"))
        # Only tests whose parents are all selected: a singular test joining staging to a mart is not ours.
        patch.setenv("DBT_INDIRECT_SELECTION", "cautious")
        load_reference(url=database_url)
        landed = land(landing=small_landing, url=database_url)
        assert landed.ok, landed
        result = build(select=STAGING_SELECT, url=database_url, quiet=True)
    return result


def test_staging_builds_with_every_test_passing(staged):
    failures = "\n".join(f"{n['node']}: {n['message']}" for n in staged["failed"])
    assert staged["ok"], f"dbt build failed:\n{failures}"
    assert staged["failed"] == []
    built = {n["node"].split(".")[-1] for n in staged["results"] if n["node"].startswith("model.")}
    assert built >= STAGING_MODELS
    assert all(name.startswith("stg_") for name in built)
    assert all(n["status"] == "success" for n in staged["results"] if n["node"].startswith("model."))
    unit_tests = [n for n in staged["results"] if n["node"].startswith("unit_test.")]
    assert len(unit_tests) >= 3 and all(n["status"] == "pass" for n in unit_tests)
    assert staged["tests_passed"] > 100


@pytest.mark.parametrize("model", sorted(ONE_ROW_PER_KEY))
def test_staging_has_exactly_one_row_per_raw_key(conn, staged, model):
    table, key = ONE_ROW_PER_KEY[model]
    columns = ", ".join(key)
    staged_rows, staged_keys = conn.execute(
        f"select count(*), count(distinct ({columns})) from staging.{model}"
    ).fetchone()
    (raw_keys,) = conn.execute(f"select count(distinct ({columns})) from raw.{table}").fetchone()
    assert raw_keys > 0, f"raw.{table} is empty: the landing fixture landed nothing"
    assert staged_rows == staged_keys == raw_keys
    (missing,) = conn.execute(
        f"select count(*) from (select {columns} from raw.{table} except select {columns} from staging.{model}) as m"
    ).fetchone()
    assert missing == 0


def test_review_items_are_the_latest_state_of_each_review(conn, staged):
    states = conn.execute(
        "select review_id, updated_at, _loaded_at, _file_id, _line_number, status, resolved_at, resolution"
        " from raw.router_review_queue"
    ).fetchall()
    latest: dict[str, tuple] = {}
    for row in states:
        if row[0] not in latest or row[1:5] > latest[row[0]][1:5]:
            latest[row[0]] = row
    assert len(states) > len(latest), "the generated day should hold reviews with more than one state"
    expected = {r[0]: (r[1], r[5], r[6], r[7], r[2]) for r in latest.values()}
    actual = {
        r[0]: r[1:]
        for r in conn.execute(
            "select review_id, updated_at, status, resolved_at, resolution, loaded_at from staging.stg_router__review_items"
        )
    }
    assert actual == expected
    assert {status for _, status, *_ in actual.values()} == {"open", "resolved"}


def test_sla_outcomes_are_the_latest_evaluation_with_resolve_minutes(conn, staged):
    evaluations = conn.execute(
        "select ticket_id, sla_policy, evaluated_at, _loaded_at, _file_id, _line_number, outcome, opened_at,"
        " resolved_at from raw.sla_outcomes"
    ).fetchall()
    latest: dict[tuple, tuple] = {}
    for row in evaluations:
        key = row[:2]
        if key not in latest or row[2:6] > latest[key][2:6]:
            latest[key] = row
    assert len(evaluations) > len(latest), "the generated day should hold re-evaluated tickets"
    actual = {
        r[:2]: r[2:]
        for r in conn.execute(
            "select ticket_id, sla_policy, evaluated_at, outcome, resolve_minutes, evaluated_date"
            " from staging.stg_support__sla_outcomes"
        )
    }
    assert actual.keys() == latest.keys()
    for key, (_, _, evaluated_at, _, _, _, outcome, opened_at, resolved_at) in latest.items():
        minutes = None if resolved_at is None else (resolved_at - opened_at).total_seconds() / 60
        got_evaluated_at, got_outcome, got_minutes, got_date = actual[key]
        assert (got_evaluated_at, got_outcome) == (evaluated_at, outcome), key
        assert got_minutes == pytest.approx(minutes) if minutes is not None else got_minutes is None, key
        assert got_date == evaluated_at.astimezone(UTC).date(), key
    assert any(m is None for _, _, m, _ in actual.values()) and any(m is not None for _, _, m, _ in actual.values())


def test_utc_dates_and_loaded_at_come_from_the_kept_raw_line(conn, staged):
    (mismatches,) = conn.execute(
        """
        select count(*)
        from staging.stg_router__decisions as s
        join raw.router_decisions as r on r.decision_id = s.decision_id
        where s.decision_date <> (r.created_at at time zone 'UTC')::date or s.loaded_at <> r._loaded_at
        """
    ).fetchone()
    assert mismatches == 0
    (mismatches,) = conn.execute(
        """
        select count(*)
        from staging.stg_support__csat_ratings as s
        join raw.csat_ratings as r on r.rating_id = s.rating_id
        where s.submitted_date <> (r.submitted_at at time zone 'UTC')::date or s.rating <> r.rating
        """
    ).fetchone()
    assert mismatches == 0


def test_reference_models_have_their_declared_types(conn, staged):
    types = dict(
        conn.execute(
            "select replace(table_name, 'stg_reference__', '') || '.' || column_name, data_type"
            " from information_schema.columns where table_schema = 'staging' and table_name like 'stg_reference__%'"
        ).fetchall()
    )
    assert types["teams.active_from"] == "date"
    assert types["agents.active_to"] == "date"
    assert types["sla_policies.resolve_minutes"] == "integer"
    assert types["experiments.starts_at"] == "timestamp with time zone"
    assert types["experiments.is_control"] == "boolean"
    assert types["experiments.traffic_share"] == "numeric"


def test_incremental_runs_keep_the_first_delivery_and_the_latest_state(conn, staged, database_url, tmp_path,
                                                                        monkeypatch):
    """Staging is incremental: a run reads only the raw partitions of its window, yet a re-delivered
    decision landing there must not replace the first delivery held from earlier runs, and a later SLA
    evaluation must replace the one held. Afterwards staging equals a full refresh."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "cautious")
    late_day = date(2026, 11, 2)  # after the generated day, inside the window of a run starting 11-04
    run_start = datetime(2026, 11, 4, tzinfo=UTC)
    models = ["stg_router__decisions", "stg_support__sla_outcomes"]
    decision_id, channel_id = conn.execute(
        "select decision_id, channel_id from raw.router_decisions order by decision_id limit 1"
    ).fetchone()
    ticket_id, policy, outcome = conn.execute(
        "select ticket_id, sla_policy, outcome from staging.stg_support__sla_outcomes order by ticket_id limit 1"
    ).fetchone()
    new_outcome = "breach" if outcome != "breach" else "attained"
    try:
        with conn.transaction():
            ensure_partitions(conn, "router_decisions", {late_day})
            ensure_partitions(conn, "sla_outcomes", {late_day})
            # Each late line comes in a file of its own, with its ledger row, as landing writes them.
            late_files = {
                stream: conn.execute(
                    "insert into raw.landed_files (path, stream, partition_hour, size, sha256, started_at, status)"
                    " values (%s, %s, '2026-11-02T00:00Z', 0, '', now(), 'loaded') returning file_id",
                    (f"{stream}/dt=2026-11-02/hr=00/late.jsonl", stream),
                ).fetchone()[0]
                for stream in ("router_decisions", "sla_outcomes")
            }

            def moved(stream: str) -> str:
                changes = {"_loaded_at": "r._loaded_at + interval '2 days'", "_partition_hour": "'2026-11-02T00:00Z'",
                           "_file_id": str(late_files[stream])}
                return ", ".join(f"'{k}', {v}" for k, v in changes.items())

            conn.execute(
                f"""insert into raw.router_decisions select (jsonb_populate_record(r, jsonb_build_object(
                    'channel_id', 'redelivered', {moved("router_decisions")}))).*
                    from raw.router_decisions as r where r.decision_id = %s""",
                (decision_id,),
            )
            conn.execute(
                f"""insert into raw.sla_outcomes select (jsonb_populate_record(r, jsonb_build_object(
                    'outcome', %s::text, 'evaluated_at', r.evaluated_at + interval '1 day',
                    {moved("sla_outcomes")}))).*
                    from raw.sla_outcomes as r where r.ticket_id = %s and r.sla_policy = %s
                    order by r.evaluated_at desc limit 1""",
                (new_outcome, ticket_id, policy),
            )
        result = build(start=run_start, end=run_start, select=models, url=database_url, quiet=True)
        assert result["ok"], result["failed"]
        assert conn.execute(
            "select channel_id from staging.stg_router__decisions where decision_id = %s", (decision_id,)
        ).fetchall() == [(channel_id,)]
        assert conn.execute(
            "select outcome from staging.stg_support__sla_outcomes where ticket_id = %s and sla_policy = %s",
            (ticket_id, policy),
        ).fetchall() == [(new_outcome,)]

        def staged_rows(model: str) -> list[tuple]:
            """Every column but staged_at, which says when a run wrote the row, not what it holds."""
            columns = [c for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'staging'"
                " and table_name = %s and column_name <> 'staged_at' order by ordinal_position", (model,)
            )]
            return conn.execute(f"select {', '.join(columns)} from staging.{model} order by 1, 2").fetchall()

        snapshot = {m: staged_rows(m) for m in models}
        result = build(full_refresh=True, select=models, url=database_url, quiet=True)
        assert result["ok"], result["failed"]
        for model in models:
            assert staged_rows(model) == snapshot[model]
    finally:
        with conn.transaction():
            conn.execute("delete from raw.router_decisions where _partition_hour >= '2026-11-02T00:00Z'")
            conn.execute("delete from raw.sla_outcomes where _partition_hour >= '2026-11-02T00:00Z'")
            conn.execute("delete from raw.landed_files where path like '%/dt=2026-11-02/hr=00/late.jsonl'")
        build(full_refresh=True, select=models, url=database_url, quiet=True)
