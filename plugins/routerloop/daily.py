"""The daily feedback run's own pieces (no Airflow import): its day window, the check that the hourly
landings of the day are complete, the day's dbt build, and the dbt manifest `routerloop build --parse` writes.

The steps themselves are the ordinary routerloop functions (build, gates, export, report); the DAG
`router_feedback_daily` and `routerloop demo` call them in the same order.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from routerloop import db
from routerloop.config import settings

# Environment variables dbt reads for its artifact folders (routerloop.build honours them too).
_DBT_ARTIFACT_VARIABLES = ("DBT_TARGET_PATH", "DBT_LOG_PATH")


def floor_day(moment: datetime) -> datetime:
    """Midnight UTC of the day containing `moment` (which must carry a timezone)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no timezone; data intervals are timezone-aware")
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def day_window(data_interval_start: datetime, data_interval_end: datetime) -> tuple[datetime, datetime]:
    """The whole UTC days [start, end) of a data interval, both ends floored to midnight.

    The daily timetable's interval is already one whole day; flooring keeps any other interval (a
    manual run) on day boundaries, as routerloop.windows.hour_window does for hours.
    """
    if data_interval_end < data_interval_start:
        raise ValueError(
            f"data interval ends ({data_interval_end.isoformat()}) before it starts "
            f"({data_interval_start.isoformat()})"
        )
    return floor_day(data_interval_start), floor_day(data_interval_end)


def landing_progress(start: datetime, end: datetime, landing: Path | None = None, url: str | None = None) -> dict:
    """Whether the hourly landings of [start, end) are complete.

    Complete means: every hour of the window has at least one file in the ledger (the hourly DAG ran
    for it and found data), every file of the window in the landing zone has been processed (it is in
    the ledger with a final status), and no hour holds a failed landing that was neither re-delivered
    nor acknowledged (routerloop.landing.failures): a failed hour is not a landed hour.
    """
    from routerloop.contract import STREAMS
    from routerloop.landing import discover
    from routerloop.landing.failures import open_failures
    from routerloop.warehouse.raw import LEDGER, LOADING

    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    with db.connect(url or db.database_url()) as conn:
        exists = conn.execute("select to_regclass(%s) is not null", (LEDGER,)).fetchone()[0]
        rows = (
            conn.execute(
                f"select path, partition_hour, status from {LEDGER}"
                " where partition_hour >= %s and partition_hour < %s",
                (start, end),
            ).fetchall()
            if exists
            else []
        )
        failures = open_failures(conn, list(STREAMS), start, end) if exists else []
    done = {path for path, _, status in rows if status != LOADING}
    landed_hours = {partition_hour for _, partition_hour, _ in rows}
    files, _ = discover(Path(landing or settings().landing_dir), list(STREAMS), start, end)
    missing = [h for h in hours if h not in landed_hours]
    pending = sorted(f.relative for f in files if f.relative not in done)
    return {
        "ready": not missing and not pending and not failures,
        "missing_hours": [h.isoformat() for h in missing],
        "pending_files": pending,
        "failed_hours": sorted({f.partition_hour.isoformat() for f in failures}),
        "failed_files": [f.path for f in failures],
        "ledger_files": len(rows),
    }


def describe_progress(progress: dict) -> str:
    """One plain sentence about what the landing of the day still lacks."""
    if progress["ready"]:
        return f"every hour is landed ({progress['ledger_files']} files in the ledger)"
    parts = []
    if progress["missing_hours"]:
        hours = progress["missing_hours"]
        shown = ", ".join(h[11:16] for h in hours[:6]) + (" ..." if len(hours) > 6 else "")
        parts.append(f"{len(hours)} hours have no landed file yet ({shown})")
    if progress["pending_files"]:
        parts.append(f"{len(progress['pending_files'])} files in the landing zone are not landed yet")
    if progress.get("failed_files"):
        parts.append(f"{len(progress['failed_hours'])} hours hold failed landings ({', '.join(progress['failed_files'][:3])}"
                     f"{' ...' if len(progress['failed_files']) > 3 else ''}): see raw.quarantine, then re-deliver "
                     "or run `routerloop ledger acknowledge PATH --reason ...`")
    return "; ".join(parts)


def write_manifest(url: str | None = None) -> Path:
    """`dbt parse` the project and publish its manifest.json at settings().dbt_manifest_path atomically.

    dbt writes into a target folder beside the published file (reused, so later parses are partial);
    a reader only ever sees a complete manifest.
    """
    from routerloop.build import parse
    from routerloop.files import write_atomically

    destination = settings().dbt_manifest_path
    work = destination.parent / "parse"
    work.mkdir(parents=True, exist_ok=True)
    saved = {name: os.environ.get(name) for name in _DBT_ARTIFACT_VARIABLES}
    os.environ["DBT_TARGET_PATH"] = str(work / "target")
    os.environ["DBT_LOG_PATH"] = str(work / "logs")
    try:
        manifest = parse(url=url)
        data = manifest.read_bytes()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    write_atomically(destination, data)
    return destination


class BuildFailed(RuntimeError):
    """The day's dbt build failed; `verdict` is True when only tests failed (a verdict on the data)."""

    def __init__(self, message: str, failed: list[dict], verdict: bool):
        super().__init__(message)
        self.failed, self.verdict = failed, verdict


def build_day(start: datetime, end: datetime, url: str | None = None) -> dict:
    """One `dbt build` of every model and test for the day [start, end), as the daily DAG runs it.

    routerloop.build.build holds the build lock for the whole build, so a second day's run (a backfill,
    `routerloop build`) waits for this one. dbt logs each node's line; the summary lists every node.
    Raises BuildFailed naming the failing nodes.
    """
    from routerloop.build import build

    result = build(start=start, end=end, url=url)
    summary = {key: result[key] for key in ("ok", "invocation_id", "models_built", "tests_passed", "lock")}
    summary["interval"] = {"start": start.isoformat(), "end": end.isoformat()}
    summary["nodes"] = {n["node"]: n["status"] for n in result["results"]}
    if not result["ok"]:
        failed = result["failed"]
        verdict = bool(failed) and all(n["node"].startswith(("test.", "unit_test.")) and n["status"] == "fail" for n in failed)
        kind = "dbt tests failed" if verdict else "dbt build failed"
        first = "; ".join(f"{n['node']} ({n['status']}: {(n['message'] or '').splitlines()[0][:200]})"
                          for n in failed[:5])
        raise BuildFailed(f"{kind} for {start:%Y-%m-%d}: {len(failed)} nodes: {first}"
                          f"{' ...' if len(failed) > 5 else ''}", failed, verdict)
    return summary


def publish_gated_day(day: date, marts_gate_results: list[dict], url: str | None = None):
    """Publish the weights of `day` as the run's own marts gate passed them (its summaries, the XCom).

    The export checks that exact gate result, not the day's newest: another run or a manual gate of
    the same day in between must not decide what this run publishes.
    """
    from routerloop.export import publish
    from routerloop.gate_results import weights_gate_id

    return publish(as_of_date=day, url=url, gate_result_id=weights_gate_id(marts_gate_results, day))
