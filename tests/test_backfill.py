"""Backfills through routerloop (`routerloop backfill`, the `router_backfill` DAG's functions): the dry run
changes nothing, and backfilling part of a landed and built range again leaves every mart identical and
the router's weights version unchanged."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import DEMO_START, marts_checksums, rows_reordered

from routerloop import db
from routerloop.backfill import plan_backfill, run_backfill
from routerloop.cli import main
from routerloop.config import reload_settings

HOURS = 48
END = DEMO_START + timedelta(hours=HOURS)

pytestmark = pytest.mark.slow

def _current_version(url: str) -> str | None:
    with db.connect(url) as conn:
        row = conn.execute("select distinct weights_version from router.routing_weights").fetchall()
    assert len(row) <= 1
    return row[0][0] if row else None


def _ledger(url: str) -> list[tuple]:
    with db.connect(url) as conn:
        return conn.execute("select file_id, path, status from raw.landed_files order by file_id").fetchall()


@pytest.fixture
def world(own_database, tmp_path, monkeypatch):
    from routerloop.simulation import generate

    monkeypatch.setenv("ROUTERLOOP_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("ROUTERLOOP_REPORT_DIR", str(tmp_path / "reports"))
    landing = tmp_path / "landing"
    monkeypatch.setenv("ROUTERLOOP_LANDING_DIR", str(landing))
    reload_settings()
    generate(out=landing, start=DEMO_START, hours=HOURS, seed=13, decisions_per_hour=40, bad_rate=0.0)
    yield landing, own_database
    monkeypatch.undo()
    reload_settings()


def test_a_dry_run_says_what_it_would_land_and_build_and_changes_nothing(world, capsys):
    landing, url = world
    part = (DEMO_START + timedelta(hours=3, minutes=30), DEMO_START + timedelta(hours=5, minutes=10))
    plan = plan_backfill(*part, streams=["csat_ratings", "router_decisions"])
    assert (plan.start, plan.end) == (DEMO_START + timedelta(hours=3), DEMO_START + timedelta(hours=6))  # whole hours
    files = {(h.hour, h.stream): h.files for h in plan.hours}
    for stream in ("csat_ratings", "router_decisions"):
        for hour in range(3, 6):
            moment = DEMO_START + timedelta(hours=hour)
            on_disk = len(list((landing / stream / f"dt={moment:%Y-%m-%d}" / f"hr={moment:%H}").glob("*.jsonl*")))
            assert files.get((moment, stream), 0) == on_disk
    assert plan.select == ["@source:*.router_decisions", "@source:*.csat_ratings"]
    text = plan.describe()
    assert f"{plan.files_to_land} files to land, 0 already landed" in text
    assert "with the interval [2026-11-01T03:00:00+00:00, 2026-11-01T06:00:00+00:00)" in text

    assert main(["backfill", "--start", part[0].isoformat(), "--end", part[1].isoformat(), "--dry-run"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["files_to_land"] == plan_backfill(*part).files_to_land  # every stream
    assert "build: dbt build --select @source:*.router_decisions" in out.err
    with db.connect(url) as conn:  # nothing was created, landed or built
        # the roster load of the fixture migrated the warehouse, so the ledger may exist: it must be empty
        ledger = conn.execute("select to_regclass('raw.landed_files')").fetchone()[0]
        assert ledger is None or conn.execute("select count(*) from raw.landed_files").fetchone()[0] == 0
        assert conn.execute("select count(*) from pg_namespace where nspname = 'marts'").fetchone()[0] == 0


def test_backfilling_part_of_a_built_range_again_changes_no_mart_and_not_the_router(world):
    landing, url = world
    first = run_backfill(plan_backfill(DEMO_START, END), quiet=True)
    assert [p["action"] for p in first["published"]] == ["published", "published"]
    version = _current_version(url)
    assert version and version.startswith(f"{(END - timedelta(days=1)):%Y%m%d}-")
    before, ledger = marts_checksums(url), _ledger(url)
    assert {"routing_weights", "team_sla_csat_rolling", "tier_confusion_daily"} <= set(before)

    # Part of the range again, on inputs in another physical order: nothing lands, every mart is
    # identical to the bit (no float sum follows row order), and the router keeps its version.
    assert rows_reordered(url, ("raw", "staging", "intermediate", "marts")) > 20
    part = plan_backfill(DEMO_START + timedelta(hours=12), DEMO_START + timedelta(hours=30))
    assert part.files_to_land == 0
    again = run_backfill(part, quiet=True)
    assert again["landed"]["loaded"] == 0
    assert [p["action"] for p in again["published"]] == ["unchanged"]  # only the current day is offered
    assert marts_checksums(url) == before
    assert _current_version(url) == version and _ledger(url) == ledger

    # One stream, rebuilt from scratch over the first day (older than the router's version): the same.
    older = plan_backfill(DEMO_START, DEMO_START + timedelta(days=1), streams=["csat_ratings"], full_refresh=True)
    assert older.publish_days == [] and older.days == [DEMO_START.date()]
    assert run_backfill(older, quiet=True)["published"] == []
    assert marts_checksums(url) == before
    assert _current_version(url) == version and _ledger(url) == ledger
