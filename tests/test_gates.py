"""Great Expectations gates: raw suites on landed data, the weights and A/B suites on the marts.

Every validation is a real GX Core run against PostgreSQL; the assertions read what it recorded in
audit.gate_results (success, statistics, failed expectations with observed values) and the Data Docs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from routerloop import cli, db, export, gates
from routerloop.config import dbt_var, reload_settings, settings
from routerloop.contract import STREAMS, TIERS
from routerloop.gate_results import FailedExpectation, GateResult
from routerloop.weight_rows import mart_digest

DEMO_START = datetime(2026, 11, 1, tzinfo=UTC)  # where conftest's small_landing starts
WINDOW = (DEMO_START, DEMO_START + timedelta(hours=24))
BAD_WINDOW = (DEMO_START + timedelta(days=3), DEMO_START + timedelta(days=3, hours=2))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gates_reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERLOOP_REPORT_DIR", str(out / "reports"))
        patch.setenv("ROUTERLOOP_EXPORT_DIR", str(out / "exports"))
        reload_settings()
        yield out / "reports"
    reload_settings()


@pytest.fixture(scope="module")
def raw_url(database_url, small_landing, report_dir, tmp_path_factory):
    """A database holding the clean 24 hours of `small_landing`, plus 2 hours of a landing full of bad lines."""
    from routerloop.landing import land
    from routerloop.simulation import generate

    name = db.url_parts(database_url)["dbname"] + "_gates_raw"
    url = db.create_database(database_url, name)
    assert land(landing=small_landing, start=WINDOW[0], end=WINDOW[1], url=url).ok
    bad = tmp_path_factory.mktemp("landing_bad")
    generate(out=bad, start=BAD_WINDOW[0], hours=2, seed=3, decisions_per_hour=40, bad_rate=0.3)
    assert not land(landing=bad, url=url).ok  # over the bad-line limit: refused, lines quarantined
    yield url
    db.drop_database(database_url, name)


def _audit(url: str, ids: list[int]) -> dict[int, dict]:
    with db.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select gate_result_id, suite, batch, success, statistics, failed_expectations"
            " from audit.gate_results where gate_result_id = any(%s)",
            (ids,),
        ).fetchall()
    return {r[0]: {"suite": r[1], "batch": r[2], "success": r[3], "statistics": r[4], "failed": r[5]} for r in rows}


def _failed_by_type(recorded: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for failure in recorded["failed"]:
        out.setdefault(failure["expectation"], []).append(failure)
    return out


# --------------------------------------------------------------------------- raw suites


def test_raw_suites_pass_on_clean_landed_data(raw_url, report_dir):
    results = gates.gate_raw(*WINDOW, url=raw_url)
    assert {r.suite for r in results} == {f"raw_{s}" for s in STREAMS} | {gates.LANDING_FILES_SUITE}
    recorded = _audit(raw_url, [r.id for r in results])
    assert len(recorded) == len(results)
    for r in results:
        row = recorded[r.id]
        assert row["success"] is True and row["failed"] == [], row
        assert row["batch"].endswith(f"[{WINDOW[0].isoformat()},{WINDOW[1].isoformat()})")
        evaluated = len(gates.load_suite(r.suite)["expectations"])
        assert row["statistics"]["evaluated_expectations"] == row["statistics"]["successful_expectations"] == evaluated

    # Data Docs: the index and one validation page per run, in the folder README points to
    docs = report_dir / "data_docs"
    assert (docs / "index.html").exists()
    assert r.data_docs_path == str(docs / "index.html")
    index = (docs / "index.html").read_text()
    for suite in {r.suite for r in results}:
        assert suite in index, suite
    assert len(list((docs / "validations").rglob("*.html"))) >= len(results)


def test_raw_suite_fails_on_bad_rows_and_records_observed_values(raw_url):
    with db.connect(raw_url, autocommit=True) as conn:
        conn.execute(
            """
            create temp table bad as select * from raw.router_decisions order by decision_id limit 1;
            update bad set predicted_tier = 'T9', confidence = 1.5, _source_file = 'gate-test';
            insert into raw.router_decisions select * from bad;
            """
        )
        duplicated = conn.execute("select decision_id from bad").fetchone()[0]
    try:
        with pytest.raises(gates.GateFailed) as failure:
            gates.gate_raw(*WINDOW, url=raw_url)
    finally:
        with db.connect(raw_url, autocommit=True) as conn:
            conn.execute("delete from raw.router_decisions where _source_file = 'gate-test'")
    message = str(failure.value)
    assert "raw_router_decisions" in message and "'T9'" in message
    assert message.splitlines()[0].startswith("1 of 7 quality gate suites failed: raw_router_decisions on router_decisions[")

    recorded = _audit(raw_url, [failure.value.failed[0].id])[failure.value.failed[0].id]
    assert recorded["suite"] == "raw_router_decisions" and recorded["success"] is False
    failed = _failed_by_type(recorded)
    assert set(failed) == {
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
    }
    assert failed["expect_column_values_to_be_unique"][0]["observed"]["partial_unexpected_list"] == [duplicated] * 2
    assert failed["expect_column_values_to_be_in_set"][0]["kwargs"]["column"] == "predicted_tier"
    assert failed["expect_column_values_to_be_in_set"][0]["observed"]["partial_unexpected_list"] == ["T9"]
    assert failed["expect_column_values_to_be_between"][0]["observed"]["partial_unexpected_list"] == [1.5]
    assert recorded["statistics"]["unsuccessful_expectations"] == 3


def test_a_gate_failure_says_in_its_first_line_which_suites_failed():
    failed = [
        GateResult(id=11, suite="raw_csat_ratings", batch="csat_ratings[a,b)", success=False,
                   failed_expectations=[FailedExpectation("expect_table_row_count_to_be_between", {"min_value": 1}, 0)]),
        GateResult(id=12, suite="raw_sla_outcomes", batch="sla_outcomes[a,b)", success=False,
                   failed_expectations=[FailedExpectation("expect_column_max_to_be_between", {}, None)] * 2),
    ]
    lines = str(gates.GateFailed(failed, validated=7)).splitlines()
    assert lines[0] == (
        "2 of 7 quality gate suites failed: raw_csat_ratings on csat_ratings[a,b) (1 failed expectation); "
        "raw_sla_outcomes on sla_outcomes[a,b) (2 failed expectations). "
        "Observed values below and in audit.gate_results."
    )
    assert lines[1] == "gate raw_csat_ratings failed for batch csat_ratings[a,b) (gate_result_id 11):"
    assert len(lines) == 1 + 2 + 3


GX_IMPORT_LOG = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
from routerloop import gates
with gates._gx_logs_warnings_only():
    import great_expectations
    logging.getLogger("great_expectations.data_context.types.base").info("an INFO line of GX")
    logging.getLogger("great_expectations.core").warning("a real warning")
logging.getLogger("great_expectations.core").info("INFO again after the gate")
"""


def test_gates_drop_the_info_lines_of_great_expectations_but_keep_its_warnings():
    result = subprocess.run([sys.executable, "-c", GX_IMPORT_LOG], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines == [
        "great_expectations.core WARNING a real warning",
        "great_expectations.core INFO INFO again after the gate",
    ], result.stderr[-2000:]


def test_landing_gate_fails_when_files_were_over_the_bad_line_limit(raw_url):
    results = gates.gate_raw(*BAD_WINDOW, url=raw_url, raise_on_failure=False)
    ledger = next(r for r in results if r.suite == gates.LANDING_FILES_SUITE)
    recorded = _audit(raw_url, [ledger.id])[ledger.id]
    assert recorded["success"] is False
    failed = _failed_by_type(recorded)
    assert "failed_bad_lines" in failed["expect_column_values_to_be_in_set"][0]["observed"]["partial_unexpected_list"]
    rate = failed["expect_column_max_to_be_between"][0]["observed"]
    assert rate > settings().bad_line_limit
    with db.connect(raw_url, autocommit=True) as conn:
        worst = conn.execute(
            "select max(quarantined::float8 / nullif(lines, 0)) from raw.landed_files where partition_hour >= %s"
            " and partition_hour < %s",
            BAD_WINDOW,
        ).fetchone()[0]
    assert rate == pytest.approx(worst)


def test_landing_gate_judges_each_file_by_its_newest_ledger_row(raw_url):
    """An unreadable try followed by a clean landing passes; a refused change to a landed file fails."""
    with db.connect(raw_url, autocommit=True) as conn:
        path, hour = conn.execute(
            "select path, partition_hour from raw.landed_files where status = 'loaded' and partition_hour >= %s"
            " and partition_hour < %s order by path limit 1",
            WINDOW,
        ).fetchone()
        conn.execute(  # an earlier, unreadable try of the same file (a lower file_id than its landing)
            "insert into raw.landed_files (file_id, path, stream, partition_hour, size, sha256, started_at,"
            " finished_at, status, message) overriding system value"
            " select -1, path, stream, partition_hour, size, sha256, started_at, finished_at, 'failed_unreadable',"
            " 'gate-test' from raw.landed_files where path = %s and status = 'loaded'",
            (path,),
        )
    window = (hour, hour + timedelta(hours=1))

    def ledger_gate() -> dict:
        return next(r for r in gates.gate_raw(*window, url=raw_url, raise_on_failure=False)
                    if r.suite == gates.LANDING_FILES_SUITE)

    try:
        passed = ledger_gate()
        assert passed.success, passed.failed_expectations
        with db.connect(raw_url, autocommit=True) as conn:
            conn.execute(  # later, the file's bytes changed and landing refused it
                "insert into raw.landed_files (path, stream, partition_hour, size, sha256, started_at, finished_at,"
                " status, message) select path, stream, partition_hour, size, 'changed', started_at, finished_at,"
                " 'refused_changed', 'gate-test' from raw.landed_files where file_id = -1"
            )
        failed = _failed_by_type(_audit(raw_url, [ledger_gate().id]).popitem()[1])
        assert failed["expect_column_values_to_be_in_set"][0]["observed"]["partial_unexpected_list"] == [
            "refused_changed"
        ]
    finally:
        with db.connect(raw_url, autocommit=True) as conn:
            conn.execute("delete from raw.landed_files where message = 'gate-test'")


def test_raw_freshness_fails_when_the_newest_event_is_too_old(raw_url):
    late_end = WINDOW[1] + timedelta(hours=settings().freshness_max_lag_hours + 6)
    results = gates.gate_raw(WINDOW[0], late_end, url=raw_url, raise_on_failure=False)
    by_suite = {r.suite: r for r in results}
    assert by_suite[gates.LANDING_FILES_SUITE].success
    decisions = by_suite["raw_router_decisions"]
    assert not decisions.success
    assert [f.expectation for f in decisions.failed_expectations] == ["expect_column_max_to_be_between"]
    with db.connect(raw_url, autocommit=True) as conn:
        newest = conn.execute(
            "select max(created_at) from raw.router_decisions where _partition_hour >= %s and _partition_hour < %s",
            (WINDOW[0], late_end),
        ).fetchone()[0]
    assert datetime.fromisoformat(str(decisions.failed_expectations[0].observed)) == newest.astimezone(UTC)


# --------------------------------------------------------------------------- marts suites (hand-made marts)

TEAMS = ["team_a", "team_b", "team_c"]
STRATEGIES = list(dbt_var("weight_strategies"))
DAY = date(2026, 11, 20)
BASE = float(dbt_var("weights_base"))
CAP = float(dbt_var("weights_step_cap"))


@pytest.fixture(scope="module")
def marts_url(database_url, report_dir):
    name = db.url_parts(database_url)["dbname"] + "_gates_marts"
    url = db.create_database(database_url, name)
    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            create schema reference;
            create schema marts;
            create table reference.teams (team_id text, team_name text, active_from date, active_to date);
            insert into reference.teams values
                ('team_a', 'A', '2026-01-01', null), ('team_b', 'B', '2026-01-01', null),
                ('team_c', 'C', '2026-01-01', null), ('team_gone', 'Gone', '2026-01-01', '2026-10-31');
            create table marts.routing_weights (
                as_of_date date, strategy text, team_id text, tier text,
                weight double precision, previous_weight double precision, rationale jsonb, rules_fired text
            );
            create table reference.experiments (
                experiment_id text, variant text, traffic_share double precision, is_control boolean,
                starts_at timestamptz, ends_at timestamptz, enabled boolean
            );
            create table marts.ab_results (
                experiment_id text, as_of_date date, metric text, variant text, is_control boolean,
                traffic_share double precision, p_value double precision, p_value_holm double precision,
                srm_p_value double precision, verdict text,
                p_value_seq double precision, p_value_seq_holm double precision, decided_by text
            );
            create table marts.reference_gaps (
                kind text, id text, first_seen timestamptz, last_seen timestamptz, seen_rows bigint
            );
            """
        )
        # The dbt models that tell the gates which rows to expect, hand-made like the marts: the keys
        # of the teams that have weights, and the windows of the enabled experiments.
        conn.execute(
            f"""
            create schema intermediate;
            create table {gates.WEIGHT_KEYS_RELATION} (strategy text, team_id text, tier text);
            create view {gates.EXPERIMENT_WINDOWS_RELATION} as
                select
                    experiment_id,
                    (min(starts_at) at time zone 'UTC')::date as first_date,
                    ((min(ends_at) - interval '1 microsecond') at time zone 'UTC')::date
                    + {int(dbt_var("ab_settle_days"))} as last_date
                from reference.experiments
                where enabled
                group by experiment_id;
            """
        )
        conn.execute(
            f"insert into {gates.WEIGHT_KEYS_RELATION}"
            " select * from unnest(%s::text[]) as s, unnest(%s::text[]) as t, unnest(%s::text[]) as r",
            (STRATEGIES, TEAMS, list(TIERS)),
        )
    yield url
    db.drop_database(database_url, name)


def _weights(url: str, day: date, weight: float = BASE) -> None:
    """A complete, clean day: every strategy x active team x tier at `weight`, with a rationale."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute("delete from marts.routing_weights where as_of_date = %s", (day,))
        for strategy in STRATEGIES:
            for team in TEAMS:
                for tier in TIERS:
                    conn.execute(
                        "insert into marts.routing_weights values (%s, %s, %s, %s, %s, %s, %s)",
                        (day, strategy, team, tier, weight, weight, json.dumps({"formula": "target = base"})),
                    )


def _gate_weights(url: str, day: date) -> dict:
    return gates.validate(gates.weights_batch(day, url=url), url=url)


def _sql(url: str, statement: str, params: tuple = ()) -> None:
    with db.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


def test_weights_suite_passes_on_a_complete_day(marts_url):
    _weights(marts_url, DAY)
    result = _gate_weights(marts_url, DAY)
    assert result.success, result.failed_expectations
    recorded = _audit(marts_url, [result.id])[result.id]
    assert recorded["batch"] == f"routing_weights[{DAY}]" and recorded["success"]
    with db.connect(marts_url, autocommit=True) as conn:
        assert conn.execute(
            "select batch_sha256 from audit.gate_results where gate_result_id = %s", (result.id,)
        ).fetchone()[0] == mart_digest(conn, DAY)


def test_weights_suite_catches_a_missing_row(marts_url):
    _weights(marts_url, DAY)
    _sql(marts_url, "delete from marts.routing_weights where as_of_date = %s and strategy = 'sla'"
         " and team_id = 'team_b' and tier = 'T3'", (DAY,))
    result = _gate_weights(marts_url, DAY)
    assert not result.success
    failed = _failed_by_type(_audit(marts_url, [result.id])[result.id])
    assert failed["expect_column_values_to_be_null"][0]["observed"]["partial_unexpected_list"] == ["sla/team_b/T3"]


@pytest.mark.parametrize("ratio", ["floor", "ceiling"])
def test_weights_suite_catches_a_weight_outside_floor_and_ceiling(marts_url, ratio):
    bound = BASE * float(dbt_var(f"weights_{ratio}_ratio"))
    outside = bound * (0.9 if ratio == "floor" else 1.1)
    _weights(marts_url, DAY)
    _sql(marts_url, "update marts.routing_weights set weight = %s where as_of_date = %s and strategy = 'sla_csat'"
         " and team_id = 'team_a' and tier = 'T1'", (outside, DAY))
    result = _gate_weights(marts_url, DAY)
    assert not result.success
    failed = _failed_by_type(_audit(marts_url, [result.id])[result.id])
    between = failed["expect_column_values_to_be_between"][0]
    assert between["observed"]["partial_unexpected_list"] == [pytest.approx(outside)]
    assert between["kwargs"]["min_value"] == pytest.approx(BASE * float(dbt_var("weights_floor_ratio")))
    assert between["kwargs"]["max_value"] == pytest.approx(BASE * float(dbt_var("weights_ceiling_ratio")))


@pytest.mark.parametrize("rationale", [None, "null", "{}"])
def test_weights_suite_catches_a_missing_rationale(marts_url, rationale):
    _weights(marts_url, DAY)
    _sql(marts_url, "update marts.routing_weights set rationale = %s::jsonb where as_of_date = %s"
         " and strategy = 'static' and team_id = 'team_c' and tier = 'T4'", (rationale, DAY))
    result = _gate_weights(marts_url, DAY)
    assert not result.success
    failed = _failed_by_type(_audit(marts_url, [result.id])[result.id])
    assert [f["kwargs"]["column"] for f in failed["expect_column_values_to_not_be_null"]] == ["rationale"]
    assert failed["expect_column_values_to_not_be_null"][0]["observed"]["unexpected_count"] == 1


def test_weights_suite_catches_a_change_beyond_the_cap_against_the_exported_version(marts_url):
    exported_day = DAY - timedelta(days=10)
    _weights(marts_url, exported_day)
    assert _gate_weights(marts_url, exported_day).success
    export.publish(exported_day, url=marts_url)

    # one day after the exported version: a change of 1.5 x cap is too much ...
    next_day = exported_day + timedelta(days=1)
    _weights(marts_url, next_day)
    _sql(marts_url, "update marts.routing_weights set weight = %s where as_of_date = %s and strategy = 'sla'"
         " and team_id = 'team_a' and tier = 'T2'", (BASE * (1 + 1.5 * CAP), next_day))
    result = _gate_weights(marts_url, next_day)
    assert not result.success
    failed = _failed_by_type(_audit(marts_url, [result.id])[result.id])
    assert set(failed) == {"expect_column_max_to_be_between"}
    assert failed["expect_column_max_to_be_between"][0]["kwargs"]["column"] == "cap_excess"
    assert failed["expect_column_max_to_be_between"][0]["observed"] == pytest.approx(0.5 * CAP)
    with pytest.raises(export.ExportRefused):
        export.publish(next_day, url=marts_url)

    # ... and so is a cut of 1.5 x cap ...
    _sql(marts_url, "update marts.routing_weights set weight = %s where as_of_date = %s and strategy = 'sla'"
         " and team_id = 'team_a' and tier = 'T2'", (BASE * (1 - 1.5 * CAP), next_day))
    assert not _gate_weights(marts_url, next_day).success

    # ... while exactly the cap passes, and two days after the export the cap compounds
    _sql(marts_url, "update marts.routing_weights set weight = %s where as_of_date = %s and strategy = 'sla'"
         " and team_id = 'team_a' and tier = 'T2'", (BASE * (1 + CAP), next_day))
    assert _gate_weights(marts_url, next_day).success
    two_days = exported_day + timedelta(days=2)
    _weights(marts_url, two_days)
    _sql(marts_url, "update marts.routing_weights set weight = %s where as_of_date = %s and strategy = 'sla'"
         " and team_id = 'team_a' and tier = 'T2'", (BASE * (1 + 1.5 * CAP), two_days))
    assert _gate_weights(marts_url, two_days).success


def _experiment(url: str, shares: dict[str, float], results: dict[str, dict] | None, day: date = DAY) -> None:
    """One experiment running on `day` with these variants (the first is control) and their A/B rows."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute("delete from reference.experiments; delete from marts.ab_results")
        for i, (variant, share) in enumerate(shares.items()):
            conn.execute(
                "insert into reference.experiments values ('exp_1', %s, %s, %s, %s, %s, true)",
                (variant, share, i == 0, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
            )
        for metric in ("sla_breach", "csat_rating"):
            for i, (variant, share) in enumerate(shares.items()):
                row = {"p_value": None if i == 0 else 0.2, "p_value_holm": None if i == 0 else 0.4,
                       "srm_p_value": 0.5, "verdict": "inconclusive", **((results or {}).get(variant) or {})}
                if results is not None and variant not in results:
                    continue
                conn.execute(
                    "insert into marts.ab_results values ('exp_1', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (day, metric, variant, i == 0, share, row["p_value"], row["p_value_holm"], row["srm_p_value"],
                     row["verdict"]),
                )


def _gate_ab(url: str, day: date = DAY) -> dict[str, dict]:
    return {r.suite: r for r in (gates.validate(b, url=url) for b in gates.ab_gate_batches(day, url=url))}


def test_ab_suites_pass_on_sound_results(marts_url):
    _weights(marts_url, DAY)  # a day the marts hold
    _experiment(marts_url, {"control": 0.5, "treatment": 0.5}, {"control": {}, "treatment": {}})
    results = _gate_ab(marts_url)
    assert all(r.success for r in results.values()), {s: r.failed_expectations for s, r in results.items()}
    # and a day with no experiment running has nothing to check
    _sql(marts_url, "delete from reference.experiments; delete from marts.ab_results")
    assert all(r.success for r in _gate_ab(marts_url).values())


def test_ab_shares_must_sum_to_one(marts_url):
    _experiment(marts_url, {"control": 0.5, "treatment": 0.4}, {"control": {}, "treatment": {}})
    shares = _gate_ab(marts_url)[gates.AB_SHARES_SUITE]
    assert not shares.success
    failed = _failed_by_type(_audit(marts_url, [shares.id])[shares.id])
    assert failed["expect_column_values_to_be_between"][0]["observed"]["partial_unexpected_list"] == [
        pytest.approx(0.9), pytest.approx(0.9)
    ]


def test_ab_results_must_exist_for_a_running_experiment(marts_url):
    _experiment(marts_url, {"control": 0.5, "treatment": 0.5}, {})
    shares = _gate_ab(marts_url)[gates.AB_SHARES_SUITE]
    assert not shares.success
    assert [f.expectation for f in shares.failed_expectations] == ["expect_column_values_to_not_be_null"]


@pytest.mark.parametrize("column", ["p_value", "p_value_holm", "srm_p_value"])
@pytest.mark.parametrize("value", [-0.01, 1.2])
def test_ab_p_values_must_lie_in_the_unit_interval(marts_url, column, value):
    _experiment(marts_url, {"control": 0.5, "treatment": 0.5}, {"control": {}, "treatment": {column: value}})
    results = _gate_ab(marts_url)
    assert results[gates.AB_SHARES_SUITE].success
    ab = results[gates.AB_RESULTS_SUITE]
    assert not ab.success
    failed = _failed_by_type(_audit(marts_url, [ab.id])[ab.id])
    assert [f["kwargs"]["column"] for f in failed["expect_column_values_to_be_between"]] == [column]
    assert failed["expect_column_values_to_be_between"][0]["observed"]["partial_unexpected_list"] == [value, value]


def test_every_marts_suite_fails_on_a_day_without_data(marts_url, monkeypatch, capsys):
    """`routerloop gates marts --date D` for a day the marts do not hold: nothing passes, exit status 1."""
    empty_day = date(2027, 6, 1)  # no weights, no A/B rows, no experiment running
    _sql(marts_url, "delete from reference.experiments; delete from marts.ab_results")
    monkeypatch.setenv("ROUTERLOOP_DATABASE_URL", marts_url)
    reload_settings()
    try:
        assert cli.main(["gates", "marts", "--date", empty_day.isoformat()]) == 1
    finally:
        monkeypatch.undo()
        reload_settings()
    printed = {r["suite"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(printed) == {gates.WEIGHTS_SUITE, gates.AB_RESULTS_SUITE, gates.AB_SHARES_SUITE,
                            gates.REFERENCE_GAPS_SUITE}
    assert not any(r["success"] for r in printed.values())
    for suite in (gates.AB_RESULTS_SUITE, gates.AB_SHARES_SUITE, gates.REFERENCE_GAPS_SUITE):
        failed = printed[suite]["failed_expectations"]
        assert [f["expectation"] for f in failed] == ["expect_table_row_count_to_be_between"]
        assert failed[0]["observed"] == 0
    # the same suites pass on a day the marts hold without any experiment (nothing to check there)
    _weights(marts_url, empty_day)
    assert all(r.success for r in _gate_ab(marts_url, empty_day).values())


def test_unknown_roster_ids_warn_without_failing_the_gate(marts_url, caplog):
    """Ids the roster does not know, seen on the day, are a warning: the gate passes, records them with
    severity warning and logs them; ids seen only on other days are not the day's business."""
    _weights(marts_url, DAY)
    _sql(marts_url, "delete from marts.reference_gaps")
    _sql(marts_url, "insert into marts.reference_gaps values"
                    " ('team', 'team_new', %s, %s, 7), ('agent', 'ag_old', %s, %s, 2)",
         (f"{DAY} 08:00Z", f"{DAY} 09:00Z", "2026-10-01 08:00Z", "2026-10-02 08:00Z"))
    try:
        with caplog.at_level("WARNING", logger="routerloop.gates"):
            results = gates.run_gates([gates.reference_gaps_batch(DAY, url=marts_url)], url=marts_url)
    finally:
        _sql(marts_url, "delete from marts.reference_gaps")
    (result,) = results
    assert result.success and [w.severity for w in result.warnings] == ["warning"]
    assert result.warnings[0].observed["partial_unexpected_list"] == ["team:team_new"]
    assert result.summary()["warnings"] == 1
    recorded = _audit(marts_url, [result.id])[result.id]
    assert recorded["success"] is True and recorded["failed"][0]["severity"] == "warning"
    assert "passed with warnings" in caplog.text and "team:team_new" in caplog.text
    # the same suite on a day without unknown ids: no warning
    assert not gates.validate(gates.reference_gaps_batch(DAY, url=marts_url), url=marts_url).warnings


# --------------------------------------------------------------------------- the real build


def test_every_gate_passes_on_the_real_build(three_week_url, three_week_warehouse, report_dir):
    with db.connect(three_week_url, autocommit=True) as conn:
        first, last = conn.execute("select min(partition_hour), max(partition_hour) from raw.landed_files").fetchone()
        day = conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()[0]
    raw = gates.gate_raw(first, last + timedelta(hours=1), url=three_week_url)
    marts = gates.gate_marts(day, url=three_week_url)
    assert {r.suite for r in marts} == {gates.WEIGHTS_SUITE, gates.AB_RESULTS_SUITE, gates.AB_SHARES_SUITE,
                                        gates.REFERENCE_GAPS_SUITE}
    results = raw + marts
    assert all(r.success for r in results), [r.failed_expectations for r in results if not r.success]
    ab = next(r for r in marts if r.suite == gates.AB_RESULTS_SUITE)
    assert ab.statistics["evaluated_expectations"] == len(gates.load_suite(gates.AB_RESULTS_SUITE)["expectations"])
