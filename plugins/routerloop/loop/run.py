"""`simulate`: the strategies of a run, each in its own lane, day by day, then the read-out and the page."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from routerloop import db
from routerloop.config import dbt_var, settings
from routerloop.loop import metrics
from routerloop.loop.page import write_page
from routerloop.loop.pipeline import Lane, close_lane, open_lane, prepare, run_day
from routerloop.loop.policy import WeightedRouting
from routerloop.loop.world import LoopWorld, TicketLog
from routerloop.loop.worlds import WORLDS, World
from routerloop.simulation.clock import DAY_MS, HOUR_MS, to_ms
from routerloop.simulation.faults import FaultInjector
from routerloop.simulation.reference import load_reference
from routerloop.simulation.writer import Outbox, PartitionWriter

BASELINE = "static"


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"simulate: {message}", file=sys.stderr, flush=True)


def _strategies(strategy: str, baselines: tuple[str, ...], with_static: bool) -> list[str]:
    known = dbt_var("weight_strategies")
    wanted = list(dict.fromkeys([strategy, *([BASELINE] if with_static else []), *baselines]))
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"unknown strategy {', '.join(unknown)}; dbt var weight_strategies has {', '.join(known)}")
    return wanted


def _start() -> datetime:
    return datetime.fromisoformat(settings().simulate_start).replace(tzinfo=UTC)


def run_lane(lane: Lane, world: World, seed: int, days: int, per_hour: int, progress: bool) -> TicketLog:
    """Simulate `days` days of one strategy; each day's telemetry goes through the lane's pipeline."""
    start = _start()
    writer = PartitionWriter(lane.landing, FaultInjector(0.0, seed, world.parameters.recent_lines_kept, -1))
    outbox = Outbox(writer, end_ms=to_ms(start) + days * DAY_MS)
    router = WeightedRouting(lane.strategy, lane.weights_file)
    loop_world = LoopWorld(load_reference(), world.parameters, seed, outbox, router)
    prepare(lane)
    for day in range(1, days + 1):
        day_start = start + timedelta(days=day - 1)
        loop_world.begin_day(day, world.skill_changes_on(day))
        for hour in range(24):
            hour_start = day_start + timedelta(hours=hour)
            loop_world.run_hour(to_ms(hour_start), per_hour)
            outbox.release_until(to_ms(hour_start) + HOUR_MS)
            writer.flush((day - 1) * 24 + hour, hour_start)
        started = time.monotonic()
        outcome = run_day(lane, day_start.date())
        _say(f"{lane.strategy} day {day}/{days} ({day_start:%Y-%m-%d}): routed with {router.version or 'base'},"
             f" pipeline {time.monotonic() - started:.0f} s, published {outcome['published']}"
             f"{', FAILED gates ' + ', '.join(outcome['failed_gates']) if outcome['failed_gates'] else ''}", progress)
    return loop_world.log


def weight_paths(lane: Lane) -> list[dict]:
    """The lane's own strategy's weights by as-of date (day 1 = the first simulated day)."""
    first = _start().date()
    with db.connect(lane.url) as conn:
        rows = conn.execute(
            "select as_of_date, team_id, tier, weight, previous_weight, rules_fired from marts.routing_weights"
            " where strategy = %s order by as_of_date, team_id, tier",
            (lane.strategy,),
        ).fetchall()
    return [{"day": (d - first).days + 1, "team_id": t, "tier": tier, "weight": w, "previous_weight": p,
             "rules_fired": r} for d, t, tier, w, p, r in rows]


def limits() -> dict:
    base = float(dbt_var("weights_base"))
    return {"base": base, "step_cap": float(dbt_var("weights_step_cap")),
            "deadband": float(dbt_var("weights_deadband")),
            "floor": base * float(dbt_var("weights_floor_ratio")),
            "ceiling": base * float(dbt_var("weights_ceiling_ratio"))}


def read_out(logs: dict, paths: dict, *, world: str, seed: int, days: int, per_hour: int, run: dict) -> dict:
    satisfied_min = int(dbt_var("csat_satisfied_min_rating"))
    arrays = {s: metrics.ticket_arrays(log, satisfied_min) for s, log in logs.items()}
    resamples = settings().simulate_bootstrap
    return {
        "world": world, "seed": seed, "days": days, "decisions_per_hour": per_hour, "limits": limits(),
        "figures": {s: metrics.figures(a, days) for s, a in arrays.items()},
        "comparisons": {s: metrics.compare(a, arrays[BASELINE], days, resamples, seed)
                        for s, a in arrays.items() if s != BASELINE and BASELINE in arrays},
        "weight_paths": paths,
        "run": run,
    }


def simulate(*, days: int | None = None, strategy: str = "sla_csat", seed: int = 7, world: str | World = "default",
             baselines: tuple[str, ...] = (), decisions_per_hour: int | None = None, out: Path | None = None,
             keep_databases: bool = False, databases: dict | None = None, progress: bool = True,
             with_static: bool = True) -> dict:
    """Run `strategy` and the baselines (`static`, unless not `with_static`) over `days` days of `world`
    (a name of WORLDS or a World); write the page.

    Each strategy gets a database of its own, created on the configured server and dropped at the end
    (kept with `keep_databases`), unless `databases` names one per strategy (used as is, never dropped).
    Returns the read-out (also written as result.json beside index.html under `out`).
    """
    if isinstance(world, str) and world not in WORLDS:
        raise ValueError(f"unknown world {world!r}; known: {', '.join(WORLDS)}")
    spec = WORLDS[world] if isinstance(world, str) else world
    days, world = days or settings().simulate_days, spec.name
    per_hour = decisions_per_hour or spec.decisions_per_hour or settings().simulate_decisions_per_hour
    out = Path(out or settings().report_dir / "simulate" / f"{world}-seed{seed}")
    server = db.database_url()
    run_name = f"{db.url_parts(server)['dbname']}_sim{os.getpid()}"
    logs, paths, lanes, started = {}, {}, {}, time.monotonic()
    for name in _strategies(strategy, baselines, with_static):
        shutil.rmtree(out / name, ignore_errors=True)
        lane = open_lane(name, out, server, (databases or {}).get(name), run_name)
        try:
            lane_started = time.monotonic()
            logs[name] = run_lane(lane, spec, seed, days, per_hour, progress)
            paths[name] = weight_paths(lane)
            lanes[name] = {"seconds": round(time.monotonic() - lane_started, 1), "days": lane.days}
        finally:
            close_lane(lane, server, keep_databases)
    run = {"seconds": round(time.monotonic() - started, 1), "lanes": lanes}
    result = read_out(logs, paths, world=world, seed=seed, days=days, per_hour=per_hour, run=run)
    result["page"] = str(write_page(result, out / "index.html"))
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result
