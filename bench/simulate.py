"""Wall time of `routerloop simulate` at the demo's volume (issue 13 §1: 14 days in under 10 minutes).

Runs `simulate` (sla_csat against static, each in a database of its own on the configured server,
dropped at the end) and prints the wall time, the time per strategy and per pipeline day, and the
overall figures with the paired differences against static.

    PYTHONPATH=plugins .venv/bin/python bench/simulate.py --days 14

With fewer --days than 14 it also prints the 14-day time extrapolated from the mean time per simulated
day (labelled as such: later days land and build more history, so it is a lower estimate).
dbt's artifacts go to a temporary folder, so the run does not disturb a build in the same checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--world", default="default")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strategy", default="sla_csat")
    parser.add_argument("--decisions-per-hour", type=int, default=None)
    parser.add_argument("--out", default=None, help="page folder (default: a temporary one)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="routerloop-bench-simulate-")
    os.environ.setdefault("DBT_TARGET_PATH", os.path.join(work, "dbt-target"))
    os.environ.setdefault("DBT_LOG_PATH", os.path.join(work, "dbt-logs"))
    from routerloop.loop import simulate

    started = time.monotonic()
    result = simulate(days=args.days, strategy=args.strategy, seed=args.seed, world=args.world,
                      decisions_per_hour=args.decisions_per_hour, out=args.out or os.path.join(work, "page"))
    wall = time.monotonic() - started
    lanes = result["run"]["lanes"]
    print(f"world {result['world']}, seed {args.seed}, {args.days} days x {result['decisions_per_hour']} decisions/hour,"
          f" strategies {', '.join(lanes)}")
    print(f"wall time: {wall:.1f} s ({wall / 60:.1f} min)")
    for name, lane in lanes.items():
        print(f"  {name}: {lane['seconds']:.1f} s, {lane['seconds'] / args.days:.1f} s per simulated day")
    if args.days < 14:
        print(f"extrapolated to 14 days (mean per day x 14, a lower estimate): {wall / args.days * 14 / 60:.1f} min")
    print(json.dumps({"overall": {s: f["overall"] for s, f in result["figures"].items()},
                      "against_static": {s: c["overall"] for s, c in result["comparisons"].items()}}, indent=1))
    print(f"page: {result['page']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
