"""A strategy's lane: its warehouse, landing zone and export folder, and its daily pipeline run.

A day's run is what the daily DAG does, with the same functions: land the day's partitions, `dbt build`
of the day's interval (routerloop.daily.build_day), the raw and marts gates, and the export of the
day's weights when the gates passed (otherwise the router keeps the version it has).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from routerloop import db
from routerloop.config import reload_settings

# What a lane points elsewhere while its steps run (the settings every step reads).
_LANE_SETTINGS = ("ROUTERLOOP_DATABASE_URL", "ROUTERLOOP_LANDING_DIR", "ROUTERLOOP_EXPORT_DIR",
                  "ROUTERLOOP_REPORT_DIR")


@dataclass
class Lane:
    """One strategy's warehouse (url), landing zone, export folder and report folder."""

    strategy: str
    url: str
    folder: Path
    created_database: str | None = None  # the database this run created (and drops)
    days: list[dict] = field(default_factory=list)  # what each day's pipeline run did

    landing = property(lambda self: self.folder / "landing")
    exports = property(lambda self: self.folder / "exports")
    weights_file = property(lambda self: self.folder / "exports" / "routing_weights" / "latest.json")

    @contextlib.contextmanager
    def active(self):
        """The lane's database and folders as the settings while inside (restored afterwards)."""
        saved = {name: os.environ.get(name) for name in _LANE_SETTINGS}
        values = (self.url, self.landing, self.exports, self.folder / "reports")
        os.environ.update({name: str(value) for name, value in zip(_LANE_SETTINGS, values, strict=True)})
        reload_settings()
        try:
            yield self
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reload_settings()


def open_lane(strategy: str, folder: Path, server_url: str, database: str | None, run_name: str) -> Lane:
    """A lane on `database` of the server (as given: kept), or on a new database this run creates."""
    folder = Path(folder) / strategy
    folder.mkdir(parents=True, exist_ok=True)
    if database:
        return Lane(strategy, db.with_database(server_url, database), folder)
    name = re.sub(r"[^a-z0-9_]", "_", f"{run_name}_{strategy}".lower())[:63]
    return Lane(strategy, db.create_database(server_url, name), folder, created_database=name)


def close_lane(lane: Lane, server_url: str, keep: bool) -> None:
    if lane.created_database and not keep:
        db.drop_database(server_url, lane.created_database)


def prepare(lane: Lane) -> None:
    """The roster in the lane's warehouse (the reference folder, as `make demo` loads it)."""
    from routerloop.reference import load

    with lane.active():
        load(url=lane.url)


def run_day(lane: Lane, day: date) -> dict:
    """land -> dbt build -> gates -> export for `day`; returns what happened (published version or why not)."""
    from routerloop import gates
    from routerloop.daily import build_day
    from routerloop.landing import land

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    with lane.active():
        landed = land(landing=lane.landing, start=start, end=end, url=lane.url)
        build_day(start, end, url=lane.url)
        results = gates.gate_raw(start, end, url=lane.url, raise_on_failure=False)
        results += gates.gate_marts(day, url=lane.url, raise_on_failure=False)
        failed = [f"{r.suite} {r.batch}" for r in results if not r.success]
        outcome = {"day": day.isoformat(), "landed_ok": landed.ok, "failed_gates": failed, "published": None}
        if not failed:
            outcome["published"] = _publish(lane, day, results)
    lane.days.append(outcome)
    return outcome


def _publish(lane: Lane, day: date, results) -> str:
    from routerloop.export import publish
    from routerloop.gate_results import weights_gate_id

    published = publish(as_of_date=day, url=lane.url,
                        gate_result_id=weights_gate_id([r.to_dict() for r in results], day))
    return published.weights_version
