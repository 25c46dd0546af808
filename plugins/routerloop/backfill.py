"""Backfill a range of hours: land it, rebuild the marts it affects, gate, and hand gated days to the export.

`plan_backfill()` decides everything from the landing zone and the ledger and changes nothing: which
files of which hour and stream would land (and which the ledger already holds), which dbt nodes would be
rebuilt for which interval, and which days would be gated and offered to the export. A dry run prints
that plan. `run_backfill(plan)` carries it out, in the same order as the scheduled DAGs:

1. land the range (`routerloop.landing.land`; the ledger makes re-landing a file a no-op);
2. `routerloop.build.build(start, end)` restricted to the nodes downstream of the backfilled streams
   (`@source:*.<stream>`: downstream nodes and what they read), or a full refresh of them; dbt gets the interval as the DAGs give it;
3. the raw gate of the range, then per day of the range the marts gate and the export. Days older than
   the router's current weights are not gated for publishing: the export would only record them, and
   a backfill never moves the router back (routerloop.export, PublishResult.action).

The `routerloop backfill` command and the manual DAG `router_backfill` both call these two functions.
No Airflow import.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from routerloop import contract, db
from routerloop.config import settings
from routerloop.windows import floor_hour


@dataclass(frozen=True)
class HourPlan:
    hour: datetime
    stream: str
    files: int  # in the landing zone
    already_landed: int  # of those, in the ledger already (landing them again is a no-op)


@dataclass(frozen=True)
class BackfillPlan:
    start: datetime  # whole UTC hours [start, end)
    end: datetime
    streams: list[str]
    full_refresh: bool
    landing: Path
    hours: list[HourPlan]
    select: list[str]  # dbt selection of the build
    days: list[date]  # days the range touches: the marts gate and export candidates
    current_version: str | None  # the router's weights version when planned
    current_as_of: date | None
    missing_hours: list[datetime] = field(default_factory=list)  # hours without any file of any stream

    @property
    def files_to_land(self) -> int:
        return sum(h.files - h.already_landed for h in self.hours)

    @property
    def publish_days(self) -> list[date]:
        """Days whose weights the export may take: not older than the router's current version."""
        return [d for d in self.days if self.current_as_of is None or d >= self.current_as_of]

    def describe(self) -> str:
        """What a run of this plan would land and build, as lines for a person (the dry run prints it)."""
        lines = [
            f"backfill [{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M}) UTC, "
            f"{int((self.end - self.start) / timedelta(hours=1))} hours, streams: {', '.join(self.streams)}",
            f"land from {self.landing}: {self.files_to_land} files to land, "
            f"{sum(h.already_landed for h in self.hours)} already landed (no-op)",
        ]
        for h in self.hours:
            lines.append(f"  {h.hour:%Y-%m-%d %H:00} {h.stream:20} {h.files} files"
                         + (f" ({h.already_landed} already landed)" if h.already_landed else ""))
        if self.missing_hours:
            lines.append(f"  no file at all for {len(self.missing_hours)} hours: "
                         + ", ".join(f"{h:%Y-%m-%d %H:00}" for h in self.missing_hours[:12])
                         + (" ..." if len(self.missing_hours) > 12 else ""))
        lines.append(f"build: dbt build{' --full-refresh' if self.full_refresh else ''} --select "
                     f"{' '.join(self.select)} with the interval [{self.start.isoformat()}, {self.end.isoformat()})")
        lines.append(f"gates: raw for the range; marts for {', '.join(map(str, self.publish_days)) or 'no day'}")
        older = [d for d in self.days if d not in self.publish_days]
        current = f"{self.current_version} (as of {self.current_as_of})" if self.current_version else "none yet"
        lines.append(f"export: offers {', '.join(map(str, self.publish_days)) or 'no day'}; the router's current "
                     f"version is {current}" + (f"; older days {', '.join(map(str, older))} are not published" if older else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["landing"] = str(self.landing)
        data["files_to_land"] = self.files_to_land
        data["publish_days"] = self.publish_days
        return data


def _whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole UTC hours: the first hour that holds start, up to the hour holding end."""
    first, last = floor_hour(start), floor_hour(end)
    if last < end.astimezone(UTC):
        last += timedelta(hours=1)
    if last <= first:
        raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    return first, last


def build_selection(streams: list[str]) -> list[str]:
    """The dbt nodes a backfill of these streams rebuilds: everything downstream of their sources, with
    everything those nodes read (dbt's `@`: seeds, and models of other streams, built incrementally over
    the same interval, so unchanged)."""
    return [f"@source:*.{stream}" for stream in streams]


def _current_version(url: str) -> tuple[str | None, date | None]:
    with db.connect(url) as conn:
        exists = conn.execute("select to_regclass('router.routing_weights') is not null").fetchone()[0]
        if not exists:
            return None, None
        row = conn.execute(
            "select w.weights_version, v.as_of_date from router.routing_weights as w"
            " inner join router.weight_versions as v using (weights_version) limit 1"
        ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _landed_paths(url: str, start: datetime, end: datetime) -> set[str]:
    from routerloop.warehouse.raw import LANDED_STATUSES, LEDGER

    with db.connect(url) as conn:
        if not conn.execute("select to_regclass(%s) is not null", (LEDGER,)).fetchone()[0]:
            return set()
        rows = conn.execute(
            f"select path from {LEDGER} where partition_hour >= %s and partition_hour < %s and status = any(%s)",
            (start, end, list(LANDED_STATUSES)),
        ).fetchall()
    return {r[0] for r in rows}


def plan_backfill(start: datetime, end: datetime, streams: list[str] | None = None, full_refresh: bool = False,
                  landing: Path | None = None, url: str | None = None) -> BackfillPlan:
    """What a backfill of [start, end) would do; reads the landing zone and the warehouse, writes nothing."""
    from routerloop.landing import discover

    for name, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} {moment.isoformat()} has no timezone")
    start, end = _whole_hours(start, end)
    names = [s for s in contract.STREAMS if not streams or s in streams]
    unknown = sorted(set(streams or ()) - set(contract.STREAMS))
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}; known: {', '.join(contract.STREAMS)}")
    landing = Path(landing or settings().landing_dir)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing zone {landing} does not exist or is not a folder")
    url = url or db.database_url()
    files, _ = discover(landing, names, start, end)
    landed = _landed_paths(url, start, end)
    counts: dict[tuple[datetime, str], list[int]] = {}
    for f in files:
        count = counts.setdefault((f.partition_hour, f.stream), [0, 0])
        count[0] += 1
        count[1] += f.relative in landed
    hours = [HourPlan(hour, stream, n, done) for (hour, stream), (n, done) in sorted(counts.items())]
    with_files = {h.hour for h in hours}
    every_hour = [start + timedelta(hours=i) for i in range(int((end - start) / timedelta(hours=1)))]
    last_day = (end - timedelta(microseconds=1)).date()
    days = [start.date() + timedelta(days=i) for i in range((last_day - start.date()).days + 1)]
    version, as_of = _current_version(url)
    return BackfillPlan(start=start, end=end, streams=names, full_refresh=full_refresh, landing=landing,
                        hours=hours, select=build_selection(names), days=days, current_version=version,
                        current_as_of=as_of, missing_hours=[h for h in every_hour if h not in with_files])


class BackfillFailed(RuntimeError):
    """A step of the backfill failed; what ran before it stays done (landing and builds are idempotent)."""


def _say(message: str) -> None:
    print(f"backfill: {message}", file=sys.stderr, flush=True)


def _days_with_weights(url: str, days: list[date]) -> set[date]:
    with db.connect(url) as conn:
        if not conn.execute("select to_regclass('marts.routing_weights') is not null").fetchone()[0]:
            return set()
        rows = conn.execute("select distinct as_of_date from marts.routing_weights where as_of_date = any(%s)",
                            (days,)).fetchall()
    return {r[0] for r in rows}


def land_range(plan: BackfillPlan, url: str | None = None) -> dict:
    """Step 1: land the plan's files (already landed ones are no-ops); raises BackfillFailed if not clean."""
    from routerloop.landing import land

    landed = land(landing=plan.landing, streams=plan.streams, start=plan.start, end=plan.end, url=url)
    if not landed.ok:
        raise BackfillFailed(f"landing failed: {landed.error}")
    return landed.totals.to_dict()


def rebuild(plan: BackfillPlan, url: str | None = None, quiet: bool = False) -> dict:
    """Step 2: dbt build of the nodes downstream of the plan's streams, for the plan's interval."""
    from routerloop.build import build

    built = build(start=plan.start, end=plan.end, full_refresh=plan.full_refresh, select=plan.select, url=url,
                  quiet=quiet)
    if not built["ok"]:
        raise BackfillFailed("dbt build failed: " + "; ".join(f"{n['node']}: {n['message']}" for n in built["failed"]))
    return {"models_built": built["models_built"], "tests_passed": built["tests_passed"],
            "invocation_id": built["invocation_id"]}


def gate_range(plan: BackfillPlan, url: str | None = None) -> list[dict]:
    """Step 3: the raw gate of the range (raises gates.GateFailed)."""
    from routerloop.gates import gate_raw

    return [r.summary() for r in gate_raw(plan.start, plan.end, url=url)]


def gate_days(plan: BackfillPlan, url: str | None = None) -> dict[str, list[dict]]:
    """Step 4: the marts gate of every day of the range the export may take (not older than the router's
    current version, re-read now) that has weights; raises gates.GateFailed. Day -> gate summaries."""
    from routerloop.gates import gate_marts

    _, current_as_of = _current_version(url or db.database_url())
    candidates = [d for d in plan.days if current_as_of is None or d >= current_as_of]
    return {str(day): [r.summary() for r in gate_marts(day, url=url)]
            for day in sorted(_days_with_weights(url or db.database_url(), candidates))}


def publish_gated(gated: dict[str, list[dict]], url: str | None = None) -> list[dict]:
    """Step 5: offer each gated day to the export, which never lets an older day replace the current one."""
    from routerloop.daily import publish_gated_day

    published = []
    for day, summaries in sorted(gated.items()):
        outcome = publish_gated_day(date.fromisoformat(day), summaries, url=url)
        published.append({"day": day, "action": outcome.action, "weights_version": outcome.weights_version,
                          "current_version": outcome.current_version})
    return published


def run_backfill(plan: BackfillPlan, url: str | None = None, publish: bool = True, quiet: bool = False) -> dict:
    """Carry out a plan, step by step as the DAG does: land, build, raw gate, marts gate, export.

    Raises BackfillFailed (landing, dbt) or gates.GateFailed; what ran before the failure stays done, and
    running the plan again redoes nothing that already happened (landing and builds are idempotent).
    """
    url = url or db.database_url()
    say = (lambda _m: None) if quiet else _say
    say(f"landing {plan.files_to_land} files of [{plan.start.isoformat()}, {plan.end.isoformat()})")
    summary = {"landed": land_range(plan, url)}
    say(f"building {' '.join(plan.select)}{' (full refresh)' if plan.full_refresh else ''}")
    summary["build"] = rebuild(plan, url, quiet=quiet)
    say("raw gate of the range")
    gate_range(plan, url)
    summary["published"] = []
    if publish:
        gated = gate_days(plan, url)
        say(f"marts gate passed for {', '.join(gated) or 'no day'}; offering them to the export")
        summary["published"] = publish_gated(gated, url)
    return summary
