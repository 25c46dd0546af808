"""dbt speed: a full refresh over a long history against the incremental build of one more hour.

Generates `--hours` hours of telemetry holding about `--decisions` decisions (the other streams follow
in proportion, as the generator simulates them) plus one extra hour, lands the history into a fresh
database on the warehouse server, times `routerloop build --full-refresh` over the whole project, then
lands the extra hour and times the incremental build of that hour (`routerloop build --start --end`).
Both builds run every model and data test and no unit test (dbt's unit tests check SQL, not data; CI
runs them). Prints both times, their ratio, and each build's slowest nodes (the run_results.json of each build is
kept in the dbt target folder as run_results_<phase>.json). Targets: one incremental hour <= 10 % of a
full refresh, and < 60 s.

    .venv/bin/python bench/dbt_incremental.py                     # 5 million decisions (long)
    .venv/bin/python bench/dbt_incremental.py --decisions 500000  # quick look

The database is dropped at the end (--keep keeps it and prints its URL, e.g. to EXPLAIN models).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from routerloop import db
from routerloop.config import reload_settings

TARGET_RATIO = 0.10
TARGET_INCREMENTAL_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=5_000_000, help="decisions in the history")
    parser.add_argument("--hours", type=int, default=720, help="hours of history before the extra hour")
    parser.add_argument("--start", default="2026-10-01T00:00:00+00:00", help="first hour of the history")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", help="where to generate (default: a temporary folder, removed)")
    parser.add_argument(
        "--landing", help="reuse a landing zone generated earlier with the same --start/--hours (skips generating)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (and the landing zone)")
    return parser.parse_args(argv)


def timed(label: str, func, *args, **kwargs):
    print(f"{label} ...", flush=True)
    began = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - began
    print(f"{label}: {seconds:.1f} s", flush=True)
    return result, seconds


def checked_build(**kwargs) -> dict:
    from routerloop.build import build

    result = build(quiet=True, unit_tests=False, **kwargs)
    if not result["ok"]:
        raise SystemExit(f"dbt build failed: {json.dumps(result['failed'], indent=2, default=str)}")
    return result


def slowest_nodes(phase: str, top: int = 12) -> None:
    """Prints the build's slowest nodes and keeps its run_results.json as run_results_<phase>.json."""
    target = Path(os.environ["DBT_TARGET_PATH"])
    results = json.loads((target / "run_results.json").read_text())
    shutil.copyfile(target / "run_results.json", target / f"run_results_{phase}.json")
    nodes = sorted(results["results"], key=lambda r: -r["execution_time"])
    by_kind: dict[str, float] = {}
    for node in nodes:
        kind = node["unique_id"].split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + node["execution_time"]
    print(f"  {phase}: {len(nodes)} nodes; summed seconds by kind: "
          + ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in sorted(by_kind.items())))
    for node in nodes[:top]:
        print(f"    {node['execution_time']:7.2f} s  {node['unique_id'].split('.', 2)[-1]}")


def checked_land(landing: Path, start: datetime, end: datetime) -> dict:
    from routerloop.landing import land

    result = land(landing=landing, start=start, end=end, progress=False, url=os.environ["ROUTERLOOP_DATABASE_URL"])
    if not result.ok:
        raise SystemExit(f"landing failed: {result.error}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from routerloop.simulation import generate

    start = datetime.fromisoformat(args.start).astimezone(UTC)
    history_end = start + timedelta(hours=args.hours)
    per_hour = math.ceil(args.decisions / args.hours)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="routerloop-bench-"))
    landing = Path(args.landing) if args.landing else workdir / "landing"
    server = db.database_url(start=True)
    name = f"routerloop_bench_{secrets.token_hex(4)}"
    url = db.create_database(server, name)
    previous_url = os.environ.get("ROUTERLOOP_DATABASE_URL")
    os.environ["ROUTERLOOP_DATABASE_URL"] = url  # landing and dbt use the bench database
    os.environ.setdefault("DBT_TARGET_PATH", str(workdir / "dbt-target"))
    os.environ.setdefault("DBT_LOG_PATH", str(workdir / "dbt-logs"))
    reload_settings()
    try:
        if not args.landing:
            timed(
                f"generate {args.hours + 1} h x {per_hour} decisions/h",
                generate,
                out=landing, start=start, hours=args.hours + 1, seed=args.seed,
                decisions_per_hour=per_hour, bad_rate=0.0, progress=False,
            )
        from routerloop.reference import load as load_reference

        load_reference(url=url)  # the roster the models report on (reference folder)
        landed, _ = timed("land the history", checked_land, landing, start, history_end)
        rows = {"lines": landed.totals.lines, "loaded": landed.totals.loaded}
        with db.connect(url) as conn:
            decisions = conn.execute("select count(*) from raw.router_decisions").fetchone()[0]
        print(f"history: {decisions} decisions landed {rows}", flush=True)

        _, full_seconds = timed("full refresh (routerloop build --full-refresh)", checked_build, full_refresh=True)
        slowest_nodes("full_refresh")
        timed("land one more hour", checked_land, landing, history_end, history_end + timedelta(hours=1))
        _, hour_seconds = timed(
            "incremental build of that hour",
            checked_build, start=history_end, end=history_end + timedelta(hours=1),
        )
        slowest_nodes("incremental")
        ratio = hour_seconds / full_seconds
        print()
        print(f"decisions in history:     {decisions}")
        print(f"full refresh:             {full_seconds:.1f} s")
        print(f"incremental hour:         {hour_seconds:.1f} s")
        print(f"ratio incremental / full: {ratio:.3f} (target <= {TARGET_RATIO:.2f})")
        ok = ratio <= TARGET_RATIO and hour_seconds < TARGET_INCREMENTAL_SECONDS
        print(f"targets met:              {'yes' if ok else 'NO'} (incremental < {TARGET_INCREMENTAL_SECONDS:.0f} s)")
        return 0 if ok else 1
    finally:
        if previous_url is None:
            os.environ.pop("ROUTERLOOP_DATABASE_URL", None)
        else:
            os.environ["ROUTERLOOP_DATABASE_URL"] = previous_url
        reload_settings()
        if args.keep:
            print(f"kept database {url} and {workdir}")
        else:
            db.drop_database(server, name)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
