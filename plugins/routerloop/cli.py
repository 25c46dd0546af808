"""`routerloop` command line: one subcommand per pipeline step.

Step modules are imported inside their handlers, so `routerloop --help` and `routerloop db url` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def parse_time(text: str) -> datetime:
    """ISO 8601 time; a missing offset means UTC; `Z` is accepted."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


# --------------------------------------------------------------------------- handlers


def cmd_db(args) -> int:
    from routerloop import db

    if args.action == "up":
        url = db.up(quiet=args.quiet)
        if not args.quiet:
            print(url)
    elif args.action == "down":
        print("stopped" if db.down() else "not running")
    elif args.action == "status":
        _print_json(db.status())
    elif args.action == "url":
        print(db.database_url())
    return 0


def cmd_generate(args) -> int:
    from routerloop.generate import generate

    summary = generate(
        out=Path(args.out),
        start=parse_time(args.start),
        hours=args.hours,
        seed=args.seed,
        decisions_per_hour=args.decisions_per_hour,
        bad_rate=args.bad_rate,
        progress=not args.quiet,
    )
    _print_json(summary)
    return 0


def cmd_land(args) -> int:
    from routerloop.config import settings
    from routerloop.landing import land

    result = land(
        landing=Path(args.landing or settings().landing_dir),
        streams=args.stream or None,
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        progress=not args.quiet,
    )
    _print_json(result.to_dict())
    return 0 if result.ok else 1


def cmd_build(args) -> int:
    from routerloop.build import build

    if args.parse:
        from routerloop.daily import write_manifest

        print(write_manifest())
        return 0
    result = build(
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        full_refresh=args.full_refresh,
        select=args.select or None,
        unit_tests=args.unit_tests,
    )
    return 0 if result["ok"] else 1


def cmd_lint_sql(args) -> int:
    from routerloop.build import lint_sql

    return 0 if lint_sql(fix=args.fix) else 1


def cmd_docs(args) -> int:
    from routerloop.build import docs

    return docs(serve=args.serve, port=args.port)


def cmd_gates(args) -> int:
    from routerloop import gates

    if args.action == "write-suites":
        for path in gates.write_suites():
            print(path)
        return 0
    if args.action == "raw":
        if not (args.start and args.end):
            raise SystemExit("routerloop gates raw needs --start and --end")
        results = gates.gate_raw(parse_time(args.start), parse_time(args.end), raise_on_failure=False)
    else:
        day = parse_time(args.date).date() if args.date else _latest_weights_date()
        results = gates.gate_marts(day, raise_on_failure=False)
    _print_json([{k: r[k] for k in ("id", "suite", "batch", "success", "failed_expectations")} for r in results])
    print(f"data docs: {gates.data_docs_dir() / 'index.html'}", file=sys.stderr)
    return 0 if all(r["success"] for r in results) else 1


def _latest_weights_date():
    from routerloop import db

    with db.connect() as conn:
        return conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()[0]


def cmd_export(args) -> int:
    from routerloop import export

    if args.rollback:
        _print_json(export.rollback(args.rollback))
    else:
        _print_json(export.publish(as_of_date=parse_time(args.date).date() if args.date else None))
    return 0


def cmd_report(args) -> int:
    from routerloop.report import write_report

    day = parse_time(args.date).date() if args.date else _latest_weights_date()
    print(write_report(day))
    return 0


def cmd_contract_doc(args) -> int:
    from routerloop.config import settings
    from routerloop.contract_doc import write

    print(write(settings().root / "docs" / "contract.md"))
    return 0


def cmd_airflow(args) -> int:
    from routerloop.airflow_env import run_airflow

    airflow_args = args.airflow_args[1:] if args.airflow_args[:1] == ["--"] else args.airflow_args
    return run_airflow(airflow_args or ["--help"], capture=False).returncode


def cmd_experiments(args) -> int:
    from routerloop import experiments

    if args.action == "show":
        if not args.experiment_id:
            raise SystemExit("routerloop experiments show needs an experiment id")
        _print_json(experiments.get_experiment(args.experiment_id).as_dict())
        return 0
    now = datetime.now(UTC)
    rows = [("experiment_id", "kind", "enabled", "running", "starts_at", "ends_at", "primary", "variants")]
    for e in experiments.load_experiments().values():
        variants = " ".join(f"{v.name}{'*' if v.is_control else ''}={v.traffic_share:g}" for v in e.variants)
        rows.append((e.experiment_id, e.kind, str(e.enabled).lower(), str(e.is_running(now)).lower(),
                     e.starts_at.isoformat(), e.ends_at.isoformat(), e.primary_metric, variants))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    print("(* = control)", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from routerloop.demo import run_demo

    return run_demo(hours=args.hours, seed=args.seed, decisions_per_hour=args.decisions_per_hour)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routerloop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("db", help="the warehouse: embedded PostgreSQL or ROUTERLOOP_DATABASE_URL")
    p.add_argument("action", choices=["up", "down", "status", "url"])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("generate", help="write simulated telemetry in the contract's landing layout")
    p.add_argument("--out", required=True)
    p.add_argument("--start", default="2026-11-01T00:00Z")
    p.add_argument("--hours", type=int, default=168)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--decisions-per-hour", type=int, default=2000)
    p.add_argument("--bad-rate", type=float, default=0.0, help="share of lines that break the contract")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("land", help="land partitions whose hour lies in [start, end) into schema raw")
    p.add_argument("--landing", help="landing root (default: settings landing_dir)")
    p.add_argument("--stream", action="append", help="only this stream (repeatable)")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_land)

    p = sub.add_parser("build", help="dbt build against the configured database")
    p.add_argument("--start", help="data interval start, passed to dbt as var `start`")
    p.add_argument("--end", help="data interval end, passed to dbt as var `end`")
    p.add_argument("--full-refresh", action="store_true")
    p.add_argument("--select", nargs="+")
    p.add_argument("--unit-tests", action=argparse.BooleanOptionalAction, default=None,
                   help="run dbt's unit tests (default: only in builds without --start)")
    p.add_argument("--parse", action="store_true",
                   help="only `dbt parse`: write the manifest the daily DAG is rendered from")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("lint-sql", help="sqlfluff lint of every dbt model")
    p.add_argument("--fix", action="store_true")
    p.set_defaults(func=cmd_lint_sql)

    p = sub.add_parser("docs", help="build the dbt docs site (and serve it on localhost)")
    p.add_argument("--serve", action="store_true")
    p.add_argument("--port", type=int, default=8081)
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("gates", help="Great Expectations gates (suites in expectations/)")
    p.add_argument("action", choices=["raw", "marts", "write-suites"])
    p.add_argument("--start", help="raw: first partition hour")
    p.add_argument("--end", help="raw: end of the window (exclusive)")
    p.add_argument("--date", help="marts: as-of date of the weights (default: newest)")
    p.set_defaults(func=cmd_gates)

    p = sub.add_parser("export", help="publish gated routing weights to the router (table + versioned file)")
    p.add_argument("--date", help="as-of date of the weights to publish (default: newest)")
    p.add_argument("--rollback", metavar="VERSION", help="re-publish an earlier version")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="write the static HTML report for a date")
    p.add_argument("--date", help="report date (default: newest weights date)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("contract-doc", help="regenerate docs/contract.md from routerloop.contract")
    p.set_defaults(func=cmd_contract_doc)

    p = sub.add_parser(
        "airflow",
        help="run the airflow CLI against routerloop (home .routerloop/airflow, SQLite): airflow -- ARGS",
    )
    p.add_argument("airflow_args", nargs=argparse.REMAINDER, help="arguments for airflow, after --")
    p.set_defaults(func=cmd_airflow)

    p = sub.add_parser("experiments", help="A/B experiments in dbt_project/seeds/experiments.csv (validated)")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("experiment_id", nargs="?", help="show: the experiment")
    p.set_defaults(func=cmd_experiments)

    p = sub.add_parser("demo", help="generate a week, land it, build it, and print a summary")
    p.add_argument("--hours", type=int, default=168)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--decisions-per-hour", type=int, default=500)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for users; tracebacks with ROUTERLOOP_DEBUG=1
        import os

        if os.environ.get("ROUTERLOOP_DEBUG"):
            raise
        print(f"routerloop {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
