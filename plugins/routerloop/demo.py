"""`make demo`: a week of telemetry through the whole loop, then a short summary of where to look.

generate -> load the reference folder -> land -> dbt build -> gates (raw for the landed window, marts for the newest day) -> export
-> report: the same functions, in the same order, as the DAGs. A failed gate stops before the export,
so the router keeps its last good version.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta

from routerloop import db
from routerloop.config import settings

DEMO_START = datetime(2026, 11, 1, tzinfo=UTC)


@contextlib.contextmanager
def _step(title: str):
    """Print the step's title, then its duration."""
    print(f"\n==> {title}", flush=True)
    started = time.monotonic()
    yield
    print(f"    ({time.monotonic() - started:.1f} s)", flush=True)


def _generated_already(landing, hours: int, seed: int, decisions_per_hour: int) -> bool:
    try:
        manifest = json.loads((landing / "_generator_manifest.json").read_text())
        start = datetime.fromisoformat(manifest["start"].replace("Z", "+00:00"))
    except (FileNotFoundError, KeyError, ValueError):  # JSONDecodeError is a ValueError
        return False
    # The manifest describes the latest run into `landing`; a later one (other hours) means regenerating.
    settings_used = (start, manifest.get("hours"), manifest.get("seed"), manifest.get("decisions_per_hour"))
    return settings_used == (DEMO_START, hours, seed, decisions_per_hour) and manifest.get("bad_rate") == 0.0


def run_demo(hours: int = 168, seed: int = 7, decisions_per_hour: int = 500) -> int:
    """The whole loop on `hours` of generated telemetry; 0 when every step succeeded and weights were published."""
    landing = settings().landing_dir
    url = db.database_url(start=True)
    window_end = DEMO_START + timedelta(hours=hours)
    print(f"warehouse: {db.status()['url']}")

    generate_telemetry(landing, hours, seed, decisions_per_hour)
    load_roster(url)
    landed = land_telemetry(landing, window_end)
    built = build_marts(url)
    day = _newest_weights_day(url)
    gate_results = run_quality_gates(url, window_end, day)
    failed_gates = [r for r in gate_results if not r.success]
    published = export_weights(url, day, built, failed_gates)
    report = write_html_report(url, day)
    print_summary(url, landing, landed, built, gate_results, published, report)
    return 0 if landed.ok and built["ok"] and published and not failed_gates else 1


def generate_telemetry(landing, hours: int, seed: int, decisions_per_hour: int) -> None:
    from routerloop.simulation import generate

    with _step(f"generate {hours} hours of telemetry into {landing}"):
        if _generated_already(landing, hours, seed, decisions_per_hour):
            print("    already generated with these settings; reusing it")
            return
        arguments = dict(out=landing, start=DEMO_START, hours=hours, seed=seed,
                         decisions_per_hour=decisions_per_hour, progress=True)
        try:
            generate(**arguments)
        except FileExistsError:
            # The demo's own landing zone, from an interrupted run or other settings: its files are
            # replaced (the generation is deterministic), files it does not write are kept.
            print("    replacing the files of an earlier generation in these hours (other files are kept)")
            generate(**arguments, overwrite=True)


def load_roster(url: str) -> dict:
    from routerloop.reference import load

    with _step(f"load the roster of {settings().reference_dir} into schema reference"):
        loaded = load(url=url)
        print(f"    {'loaded' if loaded['loaded'] else loaded['reason']}: {loaded['teams']} teams, "
              f"{loaded['agents']} agents, {loaded['sla_policies']} SLA policies, {loaded['experiments']} experiment(s)")
    return loaded


def land_telemetry(landing, window_end: datetime) -> dict:
    from routerloop.landing import land

    with _step("land every partition into schema raw"):
        return land(landing=landing, start=DEMO_START, end=window_end, progress=True)


def build_marts(url: str) -> dict:
    from routerloop.build import build

    with _step("dbt build (staging -> intermediate -> marts, with tests)"):
        built = build(url=url, quiet=True)
    for failure in built["failed"]:
        print(f"    FAILED {failure['node']}: {failure['message']}", file=sys.stderr)
    return built


def run_quality_gates(url: str, window_end: datetime, day) -> list[dict]:
    """The raw gate of the landed window, and the marts gate of the newest weights day (if any)."""
    from routerloop import gates

    with _step(f"quality gates: raw {DEMO_START:%Y-%m-%d %H:%M} to {window_end:%Y-%m-%d %H:%M} UTC"):
        results = gates.gate_raw(DEMO_START, window_end, url=url, raise_on_failure=False)
        if day is not None:
            print(f"    and marts (weights, A/B results) of {day}")
            results += gates.gate_marts(day, url=url, raise_on_failure=False)
    for r in results:
        if not r.success:
            print(f"    FAILED gate {r.suite} {r.batch} (gate_result_id {r.id}):", file=sys.stderr)
            for f in r.failed_expectations:
                print(f"      {f.expectation} {f.kwargs}: observed {f.observed}", file=sys.stderr)
    return results


def export_weights(url: str, day, built: dict, failed_gates: list[dict]) -> dict | None:
    """Publish the day's weights, unless there are none or a gate or the build failed."""
    from routerloop import export

    if day is None:
        print("\n==> export skipped: marts.routing_weights is empty", file=sys.stderr)
        return None
    if failed_gates or not built["ok"]:
        print("\n==> export skipped: a gate or the build failed; the router keeps its last good version",
              file=sys.stderr)
        return None
    with _step(f"export the weights of {day} to the router"):
        return export.publish(day, dbt_invocation_id=built["invocation_id"], url=url)


def write_html_report(url: str, day):
    from routerloop.report import write_report

    if day is None:
        return None
    with _step(f"HTML report for {day}"):
        return write_report(day, url=url)


def print_summary(url: str, landing, landed: dict, built: dict, gate_results: list[dict], published, report) -> None:
    from routerloop import gates

    passed = sum(1 for r in gate_results if r.success)
    print("\n==> summary")
    print(f"{'stream':<22}{'lines':>10}{'loaded':>10}{'dupes':>8}{'quarantined':>13}")
    for stream, t in sorted(_landed_totals_by_stream(url).items()):
        print(f"{stream:<22}{t['lines']:>10}{t['loaded']:>10}{t['duplicates']:>8}{t['quarantined']:>13}")
    print(f"this run: {landed.totals.files} files looked at; landing ok: {landed.ok}")
    print(f"dbt: {built['models_built']} models built, {built['tests_passed']} tests passed, "
          f"{len(built['failed'])} failed (invocation {built['invocation_id']})")
    warned = sum(1 for r in gate_results if r.warnings)
    print(f"gates: {passed} of {len(gate_results)} passed, {warned} with warnings "
          f"(audit.gate_results; Data Docs: {gates.data_docs_dir() / 'index.html'})")
    if published:
        print(f"exported weights version: {published.weights_version} ({published.action}, "
              f"{published.row_count} rows) -> router.routing_weights and {published.path}")
    else:
        print("exported weights version: none (nothing published by this run)")
    print(f"report: {report or 'not written'}")
    print("\nwhere to look:")
    print(f"  marts:   schema marts in {url}  (e.g. psql {url} -c 'select * from marts.tier_confusion_daily limit 5')")
    print("  docs:    make docs  (dbt docs site on http://127.0.0.1:8081)")
    print(f"  landing: {landing}")


def _newest_weights_day(url: str):
    with db.connect(url) as conn:
        exists = conn.execute("select to_regclass('marts.routing_weights') is not null").fetchone()[0]
        return conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()[0] if exists else None


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
