"""The hourly landing DAG end to end: `airflow dags test` lands exactly the previous full hour.

Airflow runs as a subprocess (`routerloop.airflow_env.run_airflow`) with its own SQLite metadata
database in a temporary AIRFLOW_HOME. The warehouse is a database of its own on the session's server:
other tests land other hours of other landing zones into the session database, and this test asserts
that nothing but one hour arrived.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routerloop import db
from routerloop.airflow_env import run_airflow
from routerloop.assets import RAW_ASSETS
from routerloop.cli import parse_time
from routerloop.config import settings
from routerloop.contract import STREAMS
from routerloop.windows import floor_hour, hour_window

DAG_ID = "router_telemetry_hourly"
RUN_AT = "2026-11-01T05:05:00+00:00"  # `dags test` takes the moment the run happens
LANDED_HOUR = datetime(2026, 11, 1, 4, tzinfo=UTC)
GENERATED_FROM = datetime(2026, 11, 1, tzinfo=UTC)
GENERATED_HOURS = 7
LANDING_LOG_WINDOW = "2026-11-01 04:00 to 05:00 UTC"  # how a landing task's log names the hour

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- hour_window


def _utc(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_run_at_five_past_lands_the_previous_full_hour():
    # The cron data-interval timetable gives the 05:05 run the interval [04:05, 05:05).
    assert hour_window(_utc(4, 5), _utc(5, 5)) == (_utc(4), _utc(5))


def test_consecutive_intervals_land_consecutive_hours_without_gaps_or_overlaps():
    edges = [_utc(0, 5) + timedelta(hours=i) for i in range(30)]
    windows = [hour_window(a, b) for a, b in zip(edges, edges[1:], strict=False)]
    assert all(w[1] - w[0] == timedelta(hours=1) for w in windows)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(windows, windows[1:], strict=False))


def test_other_timezones_and_long_intervals_map_to_whole_utc_hours():
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")  # UTC+1 in November
    start = datetime(2026, 11, 1, 5, 5, tzinfo=paris)
    assert hour_window(start, start + timedelta(hours=1)) == (_utc(4), _utc(5))
    assert hour_window(_utc(0, 5), _utc(0, 5, day=2)) == (_utc(0), _utc(0, day=2))
    assert hour_window(_utc(4, 5), _utc(4, 30)) == (_utc(4), _utc(4))  # no whole hour: lands nothing


def test_hour_window_refuses_naive_or_reversed_intervals():
    with pytest.raises(ValueError, match="no timezone"):
        floor_hour(datetime(2026, 11, 1, 4, 5))
    with pytest.raises(ValueError, match="before it starts"):
        hour_window(_utc(5), _utc(4))


# --------------------------------------------------------------------------- airflow dags test


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    from routerloop.simulation import generate

    out = tmp_path_factory.mktemp("hourly_landing")
    generate(out=out, start=GENERATED_FROM, hours=GENERATED_HOURS, seed=5, decisions_per_hour=60, bad_rate=0.0)
    return out


@pytest.fixture(scope="module")
def warehouse(database_url):
    name = db.url_parts(database_url)["dbname"] + "_hourly"
    url = db.create_database(database_url, name)
    yield url
    db.drop_database(database_url, name)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("airflow_home")


def _dags_test(landing: Path, warehouse: str, home: Path, run_at: str = RUN_AT):
    result = run_airflow(["dags", "test", DAG_ID, run_at], url=warehouse, home=home, landing=landing, timeout=900)
    return result, result.stdout + result.stderr


def _partition_files(landing: Path, stream: str, hour: datetime) -> list[Path]:
    folder = landing / stream / f"dt={hour:%Y-%m-%d}" / f"hr={hour:%H}"
    return sorted(p for p in folder.glob("*") if p.name.endswith((".jsonl", ".jsonl.gz")))


def _lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return data.splitlines()


def _key_value(stream: str, name: str, value):
    return parse_time(value) if STREAMS[stream].field(name).kind == "timestamp" else value


def _keys_in_files(landing: Path, stream: str, hour: datetime) -> list[tuple]:
    """The stream key of every line in the hour's partition files (timestamps as datetimes)."""
    keys = []
    for path in _partition_files(landing, stream, hour):
        for line in _lines(path):
            record = json.loads(line)
            keys.append(tuple(_key_value(stream, name, record[name]) for name in STREAMS[stream].key))
    return keys


def _keys_in_raw(conn, stream: str) -> list[tuple]:
    columns = ", ".join(STREAMS[stream].field(name).column for name in STREAMS[stream].key)
    return [tuple(row) for row in conn.execute(f"select {columns} from raw.{stream}").fetchall()]


def _asset_events(home: Path) -> dict[str, list[str]]:
    """Asset URI -> source task ids of its events, read from Airflow's SQLite metadata database."""
    with sqlite3.connect(home / "airflow.db") as meta:
        rows = meta.execute(
            "select a.uri, e.source_task_id from asset_event e join asset a on a.id = e.asset_id"
        ).fetchall()
    events: dict[str, list[str]] = {}
    for uri, task_id in rows:
        events.setdefault(uri, []).append(task_id)
    return events


def test_dags_test_lands_exactly_the_previous_hour_of_every_stream(landing, warehouse, airflow_home):
    result, output = _dags_test(landing, warehouse, airflow_home)
    assert result.returncode == 0, output[-6000:]

    with db.connect(warehouse, autocommit=True) as conn:
        for stream in STREAMS:
            expected = _keys_in_files(landing, stream, LANDED_HOUR)
            other_hours = [
                key
                for h in range(GENERATED_HOURS)
                if GENERATED_FROM + timedelta(hours=h) != LANDED_HOUR
                for key in _keys_in_files(landing, stream, GENERATED_FROM + timedelta(hours=h))
            ]
            assert expected and other_hours, f"{stream}: pick a seed whose hour 04 and other hours hold lines"
            landed = _keys_in_raw(conn, stream)
            # every line of hour 04 landed once (the generated zone holds no bad or repeated lines) ...
            assert sorted(landed) == sorted(expected), stream
            assert len(landed) == sum(len(_lines(p)) for p in _partition_files(landing, stream, LANDED_HOUR))
            # ... and nothing of any other hour
            assert not set(landed) & set(other_hours), stream
            hours = conn.execute(f"select distinct _partition_hour from raw.{stream}").fetchall()
            assert hours == [(LANDED_HOUR,)], stream
        assert conn.execute("select count(*) from raw.quarantine").fetchone()[0] == 0

    # each landing task says what it landed
    for stream in STREAMS:
        files = len(_partition_files(landing, stream, LANDED_HOUR))
        assert f"{stream}, {LANDING_LOG_WINDOW}: files: {files} landed now, 0 already landed" in output, stream

    # the freshness check after the landings: as of the end of the interval, every stream is fresh
    assert "freshness: every stream is fresh as of 2026-11-01 05:05 UTC" in output

    # each landing task emitted the asset of its own raw table, once
    events = _asset_events(airflow_home)
    assert events == {RAW_ASSETS[stream].uri: [f"land_{stream}"] for stream in STREAMS}


def test_running_the_same_hour_again_changes_nothing(landing, warehouse, airflow_home):
    with db.connect(warehouse, autocommit=True) as conn:
        before = {s: conn.execute(f"select count(*) from raw.{s}").fetchone()[0] for s in STREAMS}
    assert sum(before.values()) > 0, "runs after the landing test"

    result, output = _dags_test(landing, warehouse, airflow_home)
    assert result.returncode == 0, output[-6000:]

    with db.connect(warehouse, autocommit=True) as conn:
        after = {s: conn.execute(f"select count(*) from raw.{s}").fetchone()[0] for s in STREAMS}
    assert after == before
    for stream in STREAMS:  # and the task log says why nothing landed
        files = len(_partition_files(landing, stream, LANDED_HOUR))
        assert f"{stream}, {LANDING_LOG_WINDOW}: files: 0 landed now, {files} already landed before" in output


def test_a_file_of_bad_lines_fails_its_task_at_once_with_a_plain_reason(tmp_path, database_url):
    """Bad input is quarantined, its task fails without retries, the other streams still land."""
    landing = tmp_path / "landing"
    folder = landing / "router_decisions" / f"dt={LANDED_HOUR:%Y-%m-%d}" / f"hr={LANDED_HOUR:%H}"
    folder.mkdir(parents=True)
    (folder / "broken.jsonl").write_text("this is not json\n" * 10)
    name = db.url_parts(database_url)["dbname"] + "_hourly_bad"
    warehouse = db.create_database(database_url, name)
    try:
        result, output = _dags_test(landing, warehouse, tmp_path / "airflow_home")
        assert result.returncode != 0, "a refused landing must fail the run"
        assert (
            "routerloop: task 'land_router_decisions' of DAG 'router_telemetry_hourly' failed for the data "
            f"interval 2026-11-01 04:05 to 2026-11-01 05:05 UTC (try 1 of {settings().airflow_retries + 1}); "
            "it will not be retried."
        ) in output
        # nothing landed at all: the freshness check after the landings fails too, and says why
        assert (
            "routerloop: task 'freshness_gate' of DAG 'router_telemetry_hourly' failed for the data interval "
            "2026-11-01 04:05 to 2026-11-01 05:05 UTC (try 1 of 1); it will not be retried. Reason: StaleStreams: "
            f"{len(STREAMS)} of {len(STREAMS)} streams stale as of 2026-11-01 05:05 UTC: router_decisions: nothing landed"
        ) in output
        with db.connect(warehouse, autocommit=True) as conn:
            quarantined = conn.execute(
                "select count(*) from raw.quarantine where stream = 'router_decisions'"
            ).fetchone()[0]
        assert quarantined == 10  # nothing lost: every bad line is kept with its reason
        events = _asset_events(tmp_path / "airflow_home")
        assert RAW_ASSETS["router_decisions"].uri not in events
        assert set(events) == {RAW_ASSETS[s].uri for s in STREAMS if s != "router_decisions"}
    finally:
        db.drop_database(database_url, name)
