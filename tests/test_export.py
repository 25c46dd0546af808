"""The export to the router: gated, one transaction, atomic files, concurrent readers, rollback, role.

A database of its own holds a small hand-made marts.routing_weights (plus reference.teams and a raw
table), so every figure the router should see is known; the weights gate is the real GX run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import date, timedelta

import psycopg
import pytest

from routerloop import cli, daily, db, export, gate_results, gates
from routerloop.config import dbt_var, reload_settings
from routerloop.contract import TIERS
from routerloop.files import PUBLISHED_FILE_MODE, write_atomically
from routerloop.warehouse.migrations import ROUTER_READER_ROLE, migrate

TEAMS = [f"team_{i:02d}" for i in range(12)]
STRATEGIES = list(dbt_var("weight_strategies"))
DAY = date(2026, 11, 10)


@pytest.fixture(scope="module")
def warehouse(database_url, tmp_path_factory):
    """(url, export folder): a fresh database and settings pointing exports and Data Docs at tmp dirs."""
    name = db.url_parts(database_url)["dbname"] + "_export"
    url = db.create_database(database_url, name)
    out = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERLOOP_DATABASE_URL", url)
        patch.setenv("ROUTERLOOP_EXPORT_DIR", str(out / "exports"))
        patch.setenv("ROUTERLOOP_REPORT_DIR", str(out / "reports"))
        reload_settings()
        with db.connect(url, autocommit=True) as conn:
            conn.execute(
                """
                create schema reference;
                create schema marts;
                create schema raw;
                create table reference.teams (team_id text, team_name text, active_from date, active_to date);
                create table marts.routing_weights (
                    as_of_date date, strategy text, team_id text, tier text,
                    weight double precision, previous_weight double precision, rules_fired text, rationale jsonb
                );
                create table raw.router_decisions (decision_id text);
                """
            )
            for team in TEAMS:
                conn.execute("insert into reference.teams values (%s, %s, '2026-01-01', null)", (team, team))
            # The keys the weights gate expects (the dbt model int_routing_weight_keys_enumerated), by hand.
            conn.execute(f"create schema intermediate; create table {gates.WEIGHT_KEYS_RELATION} (strategy text,"
                         " team_id text, tier text)")
            conn.execute(
                f"insert into {gates.WEIGHT_KEYS_RELATION}"
                " select * from unnest(%s::text[]) as s, unnest(%s::text[]) as t, unnest(%s::text[]) as r",
                (STRATEGIES, TEAMS, list(TIERS)),
            )
        try:
            yield url, out / "exports" / "routing_weights"
        finally:
            reload_settings()
    reload_settings()
    db.drop_database(database_url, name)


def _weight(day: date, strategy: str, team: str, tier: str) -> float:
    """A distinct weight per day and key: 1 ± 10 % per key, times 1 ± 4 % per day (inside the step cap)."""
    if strategy == "static":
        return 1.0
    key = hashlib.sha256(f"{strategy}{team}{tier}".encode()).digest()[0] / 255
    daily = hashlib.sha256(f"{day}{strategy}{team}{tier}".encode()).digest()[0] / 255
    return round((0.9 + 0.2 * key) * (0.96 + 0.08 * daily), 9)


def _write_day(url: str, day: date) -> dict[tuple, float]:
    """(Re)write one day of marts.routing_weights; return key -> weight."""
    weights = {}
    with db.connect(url, autocommit=True) as conn:
        conn.execute("delete from marts.routing_weights where as_of_date = %s", (day,))
        with conn.cursor().copy(
            "copy marts.routing_weights (as_of_date, strategy, team_id, tier, weight, previous_weight, rationale)"
            " from stdin"
        ) as copy:
            for strategy in STRATEGIES:
                for team in TEAMS:
                    for tier in TIERS:
                        w = _weight(day, strategy, team, tier)
                        weights[(strategy, team, tier)] = w
                        previous = _weight(day - timedelta(days=1), strategy, team, tier)
                        copy.write_row((day, strategy, team, tier, w, previous,
                                        json.dumps({"formula": "test", "inputs": {"n": 1}})))
    return weights


def _gate(url: str, day: date) -> dict:
    return gates.validate(gates.weights_batch(day, url=url), url=url)


def _current(url: str) -> list[tuple]:
    with db.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select weights_version, strategy, team_id, tier, weight from router.routing_weights"
            " order by strategy, team_id, tier"
        ).fetchall()


def _log(url: str) -> list[tuple]:
    with db.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select weights_version, action, replaced_version from router.publish_log order by publish_id"
        ).fetchall()


def _read_document(path) -> dict:
    return json.loads(path.read_text())


def _check_document(document: dict) -> None:
    manifest, rows = document["manifest"], document["weights"]
    canonical = json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(canonical).hexdigest() == manifest["sha256"]
    assert len(rows) == manifest["row_count"]
    assert manifest["weights_version"].endswith(manifest["sha256"][:12])


# --------------------------------------------------------------------------- refusals


def test_export_refuses_without_a_passing_gate(warehouse):
    url, folder = warehouse
    day = DAY - timedelta(days=30)
    weights = _write_day(url, day)

    with pytest.raises(export.ExportRefused, match="no marts_routing_weights gate result"):
        export.publish(day, url=url)

    # a failed gate: one weight above the ceiling
    ceiling = float(dbt_var("weights_base")) * float(dbt_var("weights_ceiling_ratio"))
    with db.connect(url, autocommit=True) as conn:
        conn.execute(
            "update marts.routing_weights set weight = %s where as_of_date = %s and strategy = 'sla'"
            " and team_id = %s and tier = 'T1'",
            (ceiling * 1.5, day, TEAMS[0]),
        )
    failed = _gate(url, day)
    assert not failed.success
    with pytest.raises(export.ExportRefused, match=f"failed \\(gate_result_id {failed.id}\\)"):
        export.publish(day, url=url)

    # a passing gate, but the weights changed afterwards: what was gated is not what would be published
    _write_day(url, day)
    assert _gate(url, day).success
    with db.connect(url, autocommit=True) as conn:
        conn.execute("update marts.routing_weights set weight = weight * 1.01 where as_of_date = %s", (day,))
    with pytest.raises(export.ExportRefused, match="changed after gate result"):
        export.publish(day, url=url)

    # nothing reached the router
    assert _current(url) == []
    assert not (folder / "latest.json").exists()
    _write_day(url, day)
    assert weights  # the day is restored for nobody else: later tests use other days


# --------------------------------------------------------------------------- publish


def test_publish_writes_table_history_and_files_with_a_manifest(warehouse):
    url, folder = warehouse
    day = DAY
    weights = _write_day(url, day)
    gate = _gate(url, day)
    assert gate.success, gate.failed_expectations
    with db.connect(url, autocommit=True) as conn:  # what the dbt on-run-end hook records
        conn.execute(
            "create schema if not exists audit; create table if not exists audit.dbt_model_runs ("
            " invocation_id text, model text, status text, completed_at timestamptz default clock_timestamp());"
            " insert into audit.dbt_model_runs values ('older', 'routing_weights', 'success', now() - interval '1 day'),"
            " ('inv-123', 'routing_weights', 'success', now()), ('other', 'ab_results', 'success', now())"
        )

    before = len(_log(url))
    manifest = export.publish(day, url=url)
    version = manifest.weights_version
    assert manifest.action == "published"
    assert manifest.gate_result_id == gate.id
    assert manifest.dbt_invocation_id == "inv-123"
    assert manifest.row_count == len(weights) == len(STRATEGIES) * len(TEAMS) * len(TIERS)

    # the table: exactly the mart's weights of the day, under one version
    current = _current(url)
    assert {row[0] for row in current} == {version}
    assert {(s, t, tier): w for _, s, t, tier, w in current} == weights
    with db.connect(url, autocommit=True) as conn:
        history = conn.execute(
            "select strategy, team_id, tier, weight from router.routing_weights_history where weights_version = %s",
            (version,),
        ).fetchall()
        versions = conn.execute(
            "select row_count, sha256, gate_result_id, dbt_invocation_id from router.weight_versions"
            " where weights_version = %s",
            (version,),
        ).fetchone()
    assert {(s, t, tier): w for s, t, tier, w in history} == weights
    assert versions == (len(weights), manifest.sha256, gate.id, "inv-123")
    assert _log(url)[before:] == [(version, "publish", manifest.replaced_version)]

    # the files: <version>.json and latest.json hold the same document; no temp file is left behind
    version_doc, latest_doc = _read_document(folder / f"{version}.json"), _read_document(folder / "latest.json")
    assert version_doc == latest_doc
    _check_document(version_doc)
    assert {k: version_doc["manifest"][k] for k in ("weights_version", "row_count", "sha256", "gate_result_id",
                                                    "dbt_invocation_id", "generated_at")} == {
        k: manifest.to_dict()[k] for k in ("weights_version", "row_count", "sha256", "gate_result_id",
                                 "dbt_invocation_id", "generated_at")
    }
    assert {(r["strategy"], r["team_id"], r["tier"]): r["weight"] for r in version_doc["weights"]} == weights
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert (folder / "latest.json").stat().st_mode & 0o777 == PUBLISHED_FILE_MODE  # the router may be another user

    # publishing the same weights again changes nothing
    again = export.publish(day, url=url)
    assert again.action == "unchanged" and again.weights_version == version
    assert len(_log(url)) == before + 1
    assert _read_document(folder / "latest.json") == latest_doc


def test_a_failed_file_write_keeps_the_previous_file(warehouse, monkeypatch):
    _, folder = warehouse
    target = folder / "atomic-check.json"
    write_atomically(target, b"old\n")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, b"new and longer\n")
    monkeypatch.undo()
    assert target.read_bytes() == b"old\n"
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".atomic-check")]
    target.unlink()


# --------------------------------------------------------------------------- concurrent readers


def test_a_concurrent_reader_only_ever_sees_one_whole_version(warehouse):
    url, folder = warehouse
    days = [DAY + timedelta(days=i) for i in range(1, 5)]
    expected: dict[str, dict] = {}  # version -> {key: weight}
    for day in days:
        weights = _write_day(url, day)
        assert _gate(url, day).success
        manifest = export.publish(day, url=url)
        expected[manifest.weights_version] = weights
    versions = list(expected)
    assert len(set(versions)) == len(days)

    stop = threading.Event()
    seen: list[str] = []
    seen_files: list[str] = []
    problems: list[str] = []

    def read_table():
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "select weights_version, strategy, team_id, tier, weight from router.routing_weights"
                ).fetchall()
                found = {row[0] for row in rows}
                if len(found) != 1:
                    problems.append(f"table: {len(rows)} rows of versions {sorted(found)}")
                    continue
                version = found.pop()
                if {(s, t, tier): w for _, s, t, tier, w in rows} != expected[version]:
                    problems.append(f"table: rows of {version} differ from that version")
                seen.append(version)

    def read_file():
        while not stop.is_set():
            try:
                document = _read_document(folder / "latest.json")
                _check_document(document)
                seen_files.append(document["manifest"]["weights_version"])
            except Exception as exc:  # a torn or half-written file
                problems.append(f"latest.json: {type(exc).__name__}: {exc}")

    readers = [threading.Thread(target=read_table), threading.Thread(target=read_file)]
    for reader in readers:
        reader.start()
    try:
        for i in range(24):
            # publishes of every gated day (each a known version by now) and rollbacks, interleaved
            if i % 3 == 2:
                export.rollback(versions[(i * 3) % len(versions)], url=url)
            else:
                export.publish(days[i % len(days)], url=url)
            time.sleep(0.01)
    finally:
        stop.set()
        for reader in readers:
            reader.join()

    assert problems == []
    assert len(seen) > 24 and len(set(seen)) >= 2, "the reader must have seen several versions"
    assert set(seen) <= set(versions) and set(seen_files) <= set(versions)


# --------------------------------------------------------------------------- rollback


def test_rollback_republishes_an_earlier_version_and_is_logged(warehouse):
    url, folder = warehouse
    first_day, second_day = DAY + timedelta(days=10), DAY + timedelta(days=11)
    first_weights = _write_day(url, first_day)
    assert _gate(url, first_day).success
    first = export.publish(first_day, url=url)
    second_weights = _write_day(url, second_day)
    assert _gate(url, second_day).success
    second = export.publish(second_day, url=url)
    assert second.replaced_version == first.weights_version

    (folder / f"{first.weights_version}.json").unlink()  # rebuilt from history when missing
    assert cli.main(["export", "--rollback", first.weights_version]) == 0

    current = _current(url)
    assert {row[0] for row in current} == {first.weights_version}
    assert {(s, t, tier): w for _, s, t, tier, w in current} == first_weights
    assert _log(url)[-1] == (first.weights_version, "rollback", second.weights_version)
    latest = _read_document(folder / "latest.json")
    assert latest == _read_document(folder / f"{first.weights_version}.json")
    assert latest["manifest"]["weights_version"] == first.weights_version
    _check_document(latest)

    with pytest.raises(export.ExportRefused, match="unknown weights version"):
        export.rollback("20990101-000000000000", url=url)
    assert _log(url)[-1][1] == "rollback" and {row[0] for row in _current(url)} == {first.weights_version}

    # the append-only audit trail: every log row, and each weight the rollback changed with what it replaced
    with db.connect(url, autocommit=True) as conn:
        exports = conn.execute(
            "select weights_version, action, replaced_version from audit.weight_exports order by export_id"
        ).fetchall()
        changes = conn.execute(
            "select strategy, team_id, tier, previous_weight, weight from audit.weight_changes"
            " where change_id > (select max(change_id) from audit.weight_changes"
            "                    where weights_version = %s)",
            (second.weights_version,),
        ).fetchall()
    assert exports == _log(url)
    expected = {key: (second_weights[key], weight) for key, weight in first_weights.items()
                if weight != second_weights[key]}
    assert expected and {(s, t, tier): (p, w) for s, t, tier, p, w in changes} == expected


# --------------------------------------------------------------------------- nothing older replaces the current version
# (days after every earlier test's, so the current version at the start is older than all of them)


def _versions(url: str) -> set[str]:
    with db.connect(url, autocommit=True) as conn:
        return {r[0] for r in conn.execute("select weights_version from router.weight_versions")}


def test_an_older_day_is_recorded_in_history_but_never_replaces_the_current_version(warehouse):
    url, folder = warehouse
    newer_day, older_day = DAY + timedelta(days=21), DAY + timedelta(days=20)
    for day in (newer_day, older_day):
        _write_day(url, day)
        assert _gate(url, day).success
    newer = export.publish(newer_day, url=url)
    latest_before = (folder / "latest.json").read_bytes()

    older = export.publish(older_day, url=url)  # a backfill of an earlier day

    assert older.action == "recorded_older"
    assert older.replaced_version is None and older.current_version == newer.weights_version
    assert {row[0] for row in _current(url)} == {newer.weights_version}
    assert (folder / "latest.json").read_bytes() == latest_before
    assert older.weights_version in _versions(url)
    assert _read_document(folder / f"{older.weights_version}.json")["manifest"] == older.manifest()
    with db.connect(url, autocommit=True) as conn:
        history = conn.execute(
            "select count(*) from router.routing_weights_history where weights_version = %s", (older.weights_version,)
        ).fetchone()[0]
    assert history == older.row_count
    assert _log(url)[-1] == (older.weights_version, "recorded", None)

    # again: nothing new to record; still not current
    log_length = len(_log(url))
    assert export.publish(older_day, url=url).action == "recorded_older"
    assert len(_log(url)) == log_length and {row[0] for row in _current(url)} == {newer.weights_version}

    # only a rollback moves the router back, and it is logged
    assert cli.main(["export", "--rollback", older.weights_version]) == 0
    assert {row[0] for row in _current(url)} == {older.weights_version}
    assert _log(url)[-1] == (older.weights_version, "rollback", newer.weights_version)
    assert _read_document(folder / "latest.json")["manifest"]["weights_version"] == older.weights_version
    # the next publish of a newer day moves it forward again
    assert export.publish(newer_day, url=url).action == "published"
    assert {row[0] for row in _current(url)} == {newer.weights_version}


def test_a_changed_version_of_the_same_day_replaces_the_current_one(warehouse):
    url, folder = warehouse
    day = DAY + timedelta(days=22)
    _write_day(url, day)
    assert _gate(url, day).success
    first = export.publish(day, url=url)
    with db.connect(url, autocommit=True) as conn:  # a rebuild of the same day with other weights
        conn.execute("update marts.routing_weights set weight = weight * 1.001 where as_of_date = %s", (day,))
    assert _gate(url, day).success
    rebuilt = export.publish(day, url=url)
    assert rebuilt.weights_version != first.weights_version and rebuilt.as_of_date == first.as_of_date
    assert rebuilt.action == "published" and rebuilt.replaced_version == first.weights_version
    assert {row[0] for row in _current(url)} == {rebuilt.weights_version}
    assert _read_document(folder / "latest.json")["manifest"]["weights_version"] == rebuilt.weights_version


def test_a_named_gate_result_is_checked_instead_of_the_newest(warehouse):
    url, _ = warehouse
    day, other_day = DAY + timedelta(days=23), DAY + timedelta(days=22)
    _write_day(url, day)
    passed = _gate(url, day)
    assert passed.success
    # a later gate of the same day fails (e.g. another run saw other weights); the weights are restored
    with db.connect(url, autocommit=True) as conn:
        conn.execute("update marts.routing_weights set weight = 1e6 where as_of_date = %s and strategy = 'sla'", (day,))
    failed = _gate(url, day)
    assert not failed.success
    _write_day(url, day)
    other = _gate(url, other_day)

    with pytest.raises(export.ExportRefused, match="as the newest"):
        export.publish(day, url=url)
    with pytest.raises(export.ExportRefused, match=f"failed \\(gate_result_id {failed.id}\\)"):
        export.publish(day, url=url, gate_result_id=failed.id)
    with pytest.raises(export.ExportRefused, match=f"gate result {other.id} is marts_routing_weights of"):
        export.publish(day, url=url, gate_result_id=other.id)
    with pytest.raises(export.ExportRefused, match="no gate result 999999"):
        export.publish(day, url=url, gate_result_id=999999)

    published = export.publish(day, url=url, gate_result_id=passed.id)
    assert published.action == "published" and published.gate_result_id == passed.id


def test_the_daily_run_publishes_with_its_own_marts_gate_result(warehouse):
    """What the DAG's publish_weights does with marts_gate's XCom (routerloop.daily.publish_gated_day)."""
    url, _ = warehouse
    day = DAY + timedelta(days=24)
    _write_day(url, day)
    own = _gate(url, day)
    assert own.success
    ab = {"id": own.id + 1000, "suite": gates.AB_RESULTS_SUITE, "batch": f"ab_results[{day}]", "success": True}
    _write_day(url, day)
    newer = _gate(url, day)  # e.g. a manual gate of the same day after the run's own
    published = daily.publish_gated_day(day, [own.summary(), ab], url=url)
    assert published.gate_result_id == own.id != newer.id
    with pytest.raises(ValueError, match="reported 0 marts_routing_weights results"):
        gate_results.weights_gate_id([ab], day)


# --------------------------------------------------------------------------- the router's role


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("select count(*) from router.routing_weights", True),
        ("select count(*) from router.routing_weights_history", True),
        ("select count(*) from router.weight_versions", True),
        ("select count(*) from router.publish_log", True),
        ("insert into router.routing_weights select * from router.routing_weights limit 1", False),
        ("update router.routing_weights set weight = 2", False),
        ("delete from router.routing_weights", False),
        ("truncate router.routing_weights", False),
        ("create table router.mine (x int)", False),
        ("select count(*) from marts.routing_weights", False),
        ("select count(*) from raw.router_decisions", False),
        ("select count(*) from audit.gate_results", False),
    ],
)
def test_router_role_can_only_select_from_schema_router(warehouse, statement, allowed):
    url, _ = warehouse
    with db.connect(url) as conn:
        migrate(conn)
        conn.commit()
        conn.execute(f"set role {ROUTER_READER_ROLE}")
        if allowed:
            conn.execute(statement).fetchall()
        else:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        conn.rollback()


# --------------------------------------------------------------------------- the real build


def test_the_real_build_is_gated_and_published_with_its_dbt_invocation(three_week_url, warehouse):
    with db.connect(three_week_url, autocommit=True) as conn:
        day = conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()[0]
        rows = conn.execute("select count(*) from marts.routing_weights where as_of_date = %s", (day,)).fetchone()[0]
    assert gates.validate(gates.weights_batch(day, url=three_week_url), url=three_week_url).success
    manifest = export.publish(day, url=three_week_url)
    assert manifest.row_count == rows > 0
    with db.connect(three_week_url, autocommit=True) as conn:
        built_by = conn.execute(
            "select invocation_id from audit.dbt_model_runs where model = 'routing_weights'"
        ).fetchall()
        current = conn.execute("select count(*), min(weights_version) from router.routing_weights").fetchone()
    assert manifest.dbt_invocation_id in {r[0] for r in built_by}
    assert current == (rows, manifest.weights_version)
