"""`make demo`: a week of telemetry through the whole loop, then a short summary of where to look."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

from routerloop import db
from routerloop.config import settings

DEMO_START = datetime(2026, 11, 1, tzinfo=UTC)


def _step(title: str) -> float:
    print(f"\n==> {title}", flush=True)
    return time.monotonic()


def _done(started: float) -> None:
    print(f"    ({time.monotonic() - started:.1f} s)", flush=True)


def _generated_already(landing, hours: int, seed: int, decisions_per_hour: int) -> bool:
    try:
        manifest = json.loads((landing / "_generator_manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return (manifest.get("hours"), manifest.get("seed"), manifest.get("decisions_per_hour")) == (
        hours,
        seed,
        decisions_per_hour,
    )


def run_demo(hours: int = 168, seed: int = 7, decisions_per_hour: int = 500) -> int:
    from routerloop.build import build
    from routerloop.generate import generate
    from routerloop.land import land

    cfg = settings()
    landing = cfg.landing_dir
    url = db.database_url(start=True)
    print(f"warehouse: {db.status()['url']}")

    started = _step(f"generate {hours} hours of telemetry into {landing}")
    if _generated_already(landing, hours, seed, decisions_per_hour):
        print("    already generated with these settings; reusing it")
    else:
        generate(out=landing, start=DEMO_START, hours=hours, seed=seed,
                 decisions_per_hour=decisions_per_hour, progress=True)
    _done(started)

    started = _step("land every partition into schema raw")
    landed = land(landing=landing, start=DEMO_START, end=DEMO_START + timedelta(hours=hours), progress=True)
    _done(started)

    started = _step("dbt build (staging -> intermediate -> marts, with tests)")
    built = build(url=url, quiet=True)
    _done(started)
    for failure in built["failed"]:
        print(f"    FAILED {failure['node']}: {failure['message']}", file=sys.stderr)

    print("\n==> summary")
    print(f"{'stream':<22}{'lines':>10}{'loaded':>10}{'dupes':>8}{'quarantined':>13}")
    for stream, t in sorted(_landed_totals_by_stream(url).items()):
        print(f"{stream:<22}{t['lines']:>10}{t['loaded']:>10}{t['duplicates']:>8}{t['quarantined']:>13}")
    print(f"this run: {landed['totals']['files']} files looked at; landing ok: {landed['ok']}")
    print(f"dbt: {built['models_built']} models built, {built['tests_passed']} tests passed, "
          f"{len(built['failed'])} failed (invocation {built['invocation_id']})")
    print("\nwhere to look:")
    print(f"  marts:   schema marts in {url}  (e.g. psql {url} -c 'select * from marts.tier_confusion_daily limit 5')")
    print("  docs:    make docs  (dbt docs site on http://127.0.0.1:8081)")
    print(f"  landing: {landing}")
    return 0 if landed["ok"] and built["ok"] else 1


def _landed_totals_by_stream(url: str) -> dict:
    """Totals over everything landed so far (the ledger), so a re-run of the demo still reports the data."""
    with db.connect(url) as conn:
        rows = conn.execute(
            """
            select stream, sum(lines), sum(loaded), sum(duplicates), sum(quarantined)
            from raw.landed_files where status not in ('refused_changed')
            group by stream
            """
        ).fetchall()
    return {
        stream: {"lines": int(a), "loaded": int(b), "duplicates": int(c), "quarantined": int(d)}
        for stream, a, b, c, d in rows
    }
