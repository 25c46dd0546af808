"""`routerloop` command line: one subcommand per pipeline step.

Each subcommand has an `add_<name>` function that declares its options and a `cmd_<name>` handler.
Step modules are imported inside the handlers, so `routerloop --help` and `routerloop db url` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from routerloop.config import DBT_INTERVAL_ENV

TIME_FORMAT = "ISO 8601 with timezone (none means UTC), e.g. 2026-11-01T00:00Z"
DATE_FORMAT = "YYYY-MM-DD, e.g. 2026-11-07"


class BadTimeFormat(argparse.ArgumentTypeError, ValueError):
    """A time or date option that is not ISO 8601; argparse shows the message with the option's name."""


def parse_time(text: str) -> datetime:
    """ISO 8601 time; a missing offset means UTC; `Z` is accepted."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadTimeFormat(f"{text!r} is not a time: expected {TIME_FORMAT}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_date(text: str) -> date:
    """An ISO 8601 date (a time is accepted too: its UTC day)."""
    try:
        return parse_time(text).date()
    except BadTimeFormat:
        raise BadTimeFormat(f"{text!r} is not a date: expected {DATE_FORMAT}") from None


def _refuse(command: str, message: str) -> int:
    """A command-line mistake: say what is wrong on stderr; exit status 2, as argparse's own errors."""
    print(f"routerloop {command}: {message}", file=sys.stderr)
    return 2


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def _time_option(parser, flag: str, what: str, **kwargs) -> None:
    parser.add_argument(flag, metavar="TIME", type=parse_time, help=f"{what}; {TIME_FORMAT}", **kwargs)


def _date_option(parser, what: str) -> None:
    parser.add_argument("--date", metavar="DATE", type=parse_date, help=f"{what}; {DATE_FORMAT}")


def _quiet_option(parser, what: str = "print no progress on stderr") -> None:
    parser.add_argument("--quiet", action="store_true", help=what)


# --------------------------------------------------------------------------- subcommands


def add_db(sub) -> None:
    p = sub.add_parser("db", help="the warehouse: embedded PostgreSQL or ROUTERLOOP_DATABASE_URL")
    p.add_argument("action", choices=["up", "down", "status", "url", "migrate", "grant"],
                   help="up: start the embedded server (or check the configured URL); down: stop it; "
                        "status: print mode, URL and whether it runs; url: print the warehouse URL; "
                        "migrate: create or update schemas raw, audit and router (routerloop.warehouse); "
                        "grant: create the pipeline, analyst and router roles (prefix: setting role_prefix) "
                        "and grant each its access (routerloop.warehouse.roles); idempotent")
    _quiet_option(p, "up: print nothing")
    p.set_defaults(func=cmd_db)


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
    elif args.action == "migrate":
        from routerloop.warehouse.migrations import migrate

        with db.connect(db.database_url(start=True)) as conn:
            applied = migrate(conn)
        print(f"applied migrations {applied}" if applied else "the warehouse is up to date")
    elif args.action == "grant":
        from routerloop.warehouse.roles import grant

        with db.connect(db.database_url(start=True)) as conn:
            _print_json(grant(conn))
    return 0


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate", help="write simulated telemetry in the contract's landing layout",
        description="Write simulated telemetry into a landing zone. Files already there are never deleted, so "
                    "later hours can be generated next to earlier ones; if a file this run would write exists, "
                    "it refuses unless --overwrite. Ids of a seed are unique across runs over other hours.")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="landing root to write <stream>/dt=YYYY-MM-DD/hr=HH/ partitions into (created if missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files of this run's partitions that already exist (others are kept); "
                        "without it, such files make the command fail")
    _time_option(p, "--start", "first hour generated (default: %(default)s)", default="2026-11-01T00:00Z")
    p.add_argument("--hours", type=int, default=168, metavar="N", help="number of hours generated (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, metavar="N",
                   help="random seed: the same seed and options write the same files; other hours get other "
                        "ids (default: %(default)s)")
    p.add_argument("--decisions-per-hour", type=int, default=2000, metavar="N",
                   help="router decisions per hour; the other streams follow from them (default: %(default)s)")
    p.add_argument("--bad-rate", type=float, default=0.0, metavar="SHARE",
                   help="share of lines that break the contract, 0 to 1 (default: %(default)s)")
    _quiet_option(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from routerloop.simulation import generate

    summary = generate(
        out=Path(args.out),
        start=args.start,
        hours=args.hours,
        seed=args.seed,
        decisions_per_hour=args.decisions_per_hour,
        bad_rate=args.bad_rate,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    _print_json(summary)
    return 0


def add_land(sub) -> None:
    p = sub.add_parser("land", help="land partitions whose hour lies in [start, end) into schema raw")
    p.add_argument("--landing", metavar="DIR",
                   help="landing root (default: ROUTERLOOP_LANDING_DIR, else .routerloop/landing)")
    p.add_argument("--stream", action="append", metavar="STREAM", help="only this stream (repeatable; default: every stream)")
    _time_option(p, "--start", "first partition hour to land (default: the oldest)")
    _time_option(p, "--end", "end of the window, exclusive (default: no end)")
    _quiet_option(p)
    p.set_defaults(func=cmd_land)


def cmd_land(args) -> int:
    from routerloop.config import settings
    from routerloop.landing import land

    result = land(
        landing=Path(args.landing or settings().landing_dir),
        streams=args.stream or None,
        start=args.start,
        end=args.end,
        progress=not args.quiet,
    )
    _print_json(result.to_dict())
    return 0 if result.ok else 1


def add_ledger(sub) -> None:
    p = sub.add_parser("ledger", help="the landing ledger raw.landed_files: acknowledge a failed landing")
    actions = p.add_subparsers(dest="ledger_action", required=True, help="what to do with the ledger")
    ack = actions.add_parser("acknowledge", help="accept a failed landing (who, when and why are recorded)")
    ack.add_argument("path", help="the file's path relative to the landing root, as the landing summary prints it")
    ack.add_argument("--reason", required=True, help="why the failure is accepted (recorded)")
    ack.add_argument("--by", help="who acknowledges (default: the current user)")
    p.set_defaults(func=cmd_ledger)


def cmd_ledger(args) -> int:
    from routerloop import db
    from routerloop.landing.failures import acknowledge
    from routerloop.warehouse.migrations import migrate

    with db.connect(db.database_url(), autocommit=True) as conn:
        migrate(conn)
        try:
            file_ids = acknowledge(conn, args.path, args.reason, by=args.by)
        except (LookupError, ValueError) as exc:
            print(f"routerloop ledger acknowledge: {exc}", file=sys.stderr)
            return 1
    _print_json({"acknowledged": args.path, "file_ids": file_ids, "reason": args.reason})
    return 0


def add_freshness(sub) -> None:
    p = sub.add_parser(
        "freshness", help="each stream's lag (now minus its newest landed event); exit 1 and notify when one is stale",
        description="Report each stream's lag: now minus the newest event time landed in its raw table. A stream "
                    "over its threshold (freshness_stale_after_minutes, default 120; per stream: "
                    "freshness_stale_after_minutes_by_stream) is stale: the notifier is called and the exit status is 1.")
    _time_option(p, "--as-of", "measure as of this moment instead of now (events after it are ignored)")
    p.add_argument("--stream", action="append", metavar="STREAM", help="only this stream (repeatable)")
    p.add_argument("--no-notify", action="store_true", help="report only: do not call the notifier")
    p.add_argument("--dbt", action="store_true",
                   help="run `dbt source freshness` instead (the same thresholds, checked by dbt)")
    p.set_defaults(func=cmd_freshness)


def cmd_freshness(args) -> int:
    from routerloop import freshness

    if args.dbt:
        summary = freshness.dbt_source_freshness(raise_on_stale=False)
        _print_json(summary)
        return 0 if summary["ok"] else 1
    if args.no_notify:
        report = freshness.check(as_of=args.as_of, streams=args.stream)
    else:
        try:
            report = freshness.check_and_notify(as_of=args.as_of, streams=args.stream)
        except freshness.StaleStreams as stale:
            report = stale.report
    _print_json(report.to_dict())
    if report.ok or args.no_notify:  # (a stale report was just logged by the notifier)
        print(report.describe(), file=sys.stderr)
    return 0 if report.ok else 1


def add_backfill(sub) -> None:
    p = sub.add_parser(
        "backfill", help="land [start, end), rebuild the marts it affects, gate, export (--dry-run: only say what)",
        description="Backfill whole UTC hours [start, end): land them, dbt build the nodes downstream of the "
                    "streams with that interval, run the gates, and offer gated days to the export (a day older "
                    "than the router's current weights is never published). --dry-run prints the plan and "
                    "changes nothing.")
    _time_option(p, "--start", "first hour of the range", required=True)
    _time_option(p, "--end", "end of the range, exclusive", required=True)
    p.add_argument("--streams", nargs="+", metavar="STREAM", help="only these streams (default: every stream)")
    p.add_argument("--landing", metavar="DIR", help="landing root (default: ROUTERLOOP_LANDING_DIR)")
    p.add_argument("--full-refresh", action="store_true", help="rebuild the selected models from scratch")
    p.add_argument("--dry-run", action="store_true", help="print what would be landed and built; change nothing")
    p.add_argument("--no-publish", action="store_true", help="stop after the raw gate: no marts gate, no export")
    p.set_defaults(func=cmd_backfill)


def cmd_backfill(args) -> int:
    from routerloop.backfill import BackfillFailed, plan_backfill, run_backfill

    plan = plan_backfill(args.start, args.end, streams=args.streams, full_refresh=args.full_refresh,
                         landing=Path(args.landing) if args.landing else None)
    print(plan.describe(), file=sys.stderr)
    if args.dry_run:
        _print_json(plan.to_dict())
        return 0
    try:
        _print_json(run_backfill(plan, publish=not args.no_publish))
    except BackfillFailed as failed:
        print(f"routerloop backfill: {failed}", file=sys.stderr)
        return 1
    return 0


def add_build(sub) -> None:
    p = sub.add_parser("build", help="dbt build against the configured database")
    interval = "dbt gets it in the environment variable {}, not as a var"
    _time_option(p, "--start", "data interval start; " + interval.format(DBT_INTERVAL_ENV["start"]))
    _time_option(p, "--end", "data interval end, exclusive; " + interval.format(DBT_INTERVAL_ENV["end"]))
    p.add_argument("--full-refresh", action="store_true", help="rebuild the incremental models from scratch")
    p.add_argument("--select", nargs="+", metavar="SELECTOR",
                   help="only these dbt nodes, as `dbt build --select`, e.g. stg_router__decisions+")
    p.add_argument("--unit-tests", action=argparse.BooleanOptionalAction, default=None,
                   help="run dbt's unit tests (default: only in builds without --start)")
    p.add_argument("--parse", action="store_true",
                   help="only `dbt parse`: check the project and write its manifest (setting dbt_manifest_path)")
    p.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from routerloop.build import build

    if (args.start is None) != (args.end is None):
        given, missing = ("--start", "--end") if args.end is None else ("--end", "--start")
        return _refuse("build", f"{given} needs {missing}: the data interval has both ends, e.g. "
                                "--start 2026-11-01T00:00Z --end 2026-11-02T00:00Z")
    if args.parse:
        from routerloop.daily import write_manifest

        print(write_manifest())
        return 0
    result = build(
        start=args.start,
        end=args.end,
        full_refresh=args.full_refresh,
        select=args.select or None,
        unit_tests=args.unit_tests,
    )
    return 0 if result["ok"] else 1


def add_lint_sql(sub) -> None:
    p = sub.add_parser("lint-sql", help="sqlfluff lint of every dbt model")
    p.add_argument("--fix", action="store_true", help="rewrite the models in place (sqlfluff fix)")
    p.set_defaults(func=cmd_lint_sql)


def cmd_lint_sql(args) -> int:
    from routerloop.build import lint_sql

    return 0 if lint_sql(fix=args.fix) else 1


def add_docs(sub) -> None:
    p = sub.add_parser("docs", help="build the dbt docs site (and serve it on localhost)")
    p.add_argument("--serve", action="store_true", help="then serve it on http://127.0.0.1:PORT")
    p.add_argument("--port", type=int, default=8081, metavar="PORT", help="port of --serve (default: %(default)s)")
    p.set_defaults(func=cmd_docs)


def cmd_docs(args) -> int:
    from routerloop.build import docs

    return docs(serve=args.serve, port=args.port)


def add_gates(sub) -> None:
    p = sub.add_parser("gates", help="Great Expectations gates (suites in expectations/)")
    p.add_argument("action", choices=["raw", "marts", "write-suites"],
                   help="raw: the landed data of [start, end); marts: the weights and A/B results of a date; "
                        "write-suites: rewrite the suites derived from the contract into expectations/")
    _time_option(p, "--start", "raw: first partition hour")
    _time_option(p, "--end", "raw: end of the window, exclusive")
    _date_option(p, "marts: as-of date of the weights (default: newest)")
    p.set_defaults(func=cmd_gates)


def cmd_gates(args) -> int:
    from routerloop import gates

    if args.action == "write-suites":
        for path in gates.write_suites():
            print(path)
        return 0
    if args.action == "raw":
        if not (args.start and args.end):
            return _refuse("gates", "raw needs --start and --end")
        results = gates.gate_raw(args.start, args.end, raise_on_failure=False)
    else:
        day = args.date or _latest_weights_date()
        if day is None:
            return _no_day_yet("gates")
        results = gates.gate_marts(day, raise_on_failure=False)
    _print_json([{k: v for k, v in r.to_dict().items() if k in ("id", "suite", "batch", "success", "failed_expectations")}
                 for r in results])
    print(f"data docs: {gates.data_docs_dir() / 'index.html'}", file=sys.stderr)
    return 0 if all(r.success for r in results) else 1


def _latest_weights_date():
    from routerloop import db

    with db.connect() as conn:
        return conn.execute("select max(as_of_date) from marts.routing_weights").fetchone()[0]


def _no_day_yet(command: str) -> int:
    print(f"routerloop {command}: the marts hold no day yet: run `routerloop build` first", file=sys.stderr)
    return 1


def add_export(sub) -> None:
    p = sub.add_parser("export", help="publish gated routing weights to the router (table + versioned file)")
    _date_option(p, "as-of date of the weights to publish (default: newest)")
    p.add_argument("--rollback", metavar="VERSION",
                   help="re-publish an earlier version, e.g. 20261107-630b7410368a (see router.weight_versions)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from routerloop import export

    if args.rollback:
        _print_json(export.rollback(args.rollback).to_dict())
    else:
        _print_json(export.publish(as_of_date=args.date).to_dict())
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="write the static HTML report for a date")
    _date_option(p, "report date (default: newest weights date)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from routerloop.report import NoDataForDay, write_report

    day = args.date or _latest_weights_date()
    if day is None:
        return _no_day_yet("report")
    try:
        print(write_report(day))
    except NoDataForDay as exc:
        print(f"routerloop report: {exc}", file=sys.stderr)
        return 1
    return 0


def add_contract_doc(sub) -> None:
    p = sub.add_parser("contract-doc", help="regenerate docs/contract.md from routerloop.contract")
    p.set_defaults(func=cmd_contract_doc)


def cmd_contract_doc(args) -> int:
    from routerloop.config import settings
    from routerloop.contract_doc import write

    print(write(settings().root / "docs" / "contract.md"))
    return 0


def add_airflow(sub) -> None:
    p = sub.add_parser(
        "airflow",
        help="run the airflow CLI against routerloop (home .routerloop/airflow, SQLite; PostgreSQL and Celery with "
             "ROUTERLOOP_AIRFLOW_EXECUTOR=celery): airflow -- ARGS; `airflow -- standalone` runs the local stack on "
             "127.0.0.1, `airflow stop` stops it, `airflow init` migrates the metadata database and creates the pools",
    )
    p.add_argument("airflow_args", nargs=argparse.REMAINDER,
                   help="arguments for airflow, after --, e.g. -- dags list; -- standalone: api-server, scheduler, "
                        "dag-processor and triggerer until Ctrl-C or SIGTERM stops every process they started; "
                        "(with the CeleryExecutor also a broker and the Celery workers); "
                        "stop (without --): stop the stack started by `-- standalone`; "
                        "init (without --): `airflow db migrate` and routerloop's pools, once")
    p.set_defaults(func=cmd_airflow)


def cmd_airflow(args) -> int:
    from routerloop.airflow_env import process_env, run_airflow

    if args.airflow_args == ["stop"]:
        from routerloop import airflow_stack
        from routerloop.config import settings

        stopped = airflow_stack.stop(settings().airflow_home)
        print("stopped" if stopped else "not running")
        return 0
    if args.airflow_args == ["init"]:
        from routerloop.airflow_env import ensure_metadata_db, pools

        ensure_metadata_db(process_env())
        slots = ", ".join(f"{name} ({pool['slots']} slots)" for name, pool in pools().items())
        print(f"metadata database migrated; pools: {slots}")
        return 0
    airflow_args = args.airflow_args[1:] if args.airflow_args[:1] == ["--"] else args.airflow_args
    if airflow_args[:1] == ["standalone"]:
        from routerloop.airflow_stack import run_stack

        if airflow_args[1:]:
            raise SystemExit("routerloop airflow -- standalone takes no arguments (configure it with AIRFLOW__ variables)")
        return run_stack(process_env())
    return run_airflow(airflow_args or ["--help"], capture=False).returncode


def add_reference(sub) -> None:
    p = sub.add_parser("reference", help="the organisation's roster and experiments (the reference folder)")
    p.add_argument("action", choices=["validate", "load", "show"],
                   help="validate: check the folder (file, line and rule of each problem); load: validate, then "
                        "replace schema reference's snapshot in one transaction, keeping history; show: what is loaded")
    p.add_argument("--dir", type=Path, metavar="DIR", help="validate/load: the folder (default: setting reference_dir)")
    p.add_argument("--effective-from", metavar="DATE", type=parse_date,
                   help=f"load: the first day the folder's memberships apply; earlier days keep what earlier loads "
                        f"recorded (default: today, UTC); {DATE_FORMAT}")
    p.add_argument("--rewrite-history", action="store_true",
                   help="load: a correction: the folder's periods replace the whole membership history")
    p.add_argument("--by", help="load: who loads (recorded; default: the current user)")
    p.add_argument("--as-of", metavar="DATE", type=parse_date, help=f"show: each team's agents on that day; {DATE_FORMAT}")
    p.add_argument("--agent", metavar="AGENT_ID", help="show: the agent's membership history")
    p.set_defaults(func=cmd_reference)


def cmd_reference(args) -> int:
    from routerloop import reference

    if args.action == "show":
        _print_json(reference.show(as_of=args.as_of, agent_id=args.agent))
        return 0
    try:
        if args.action == "validate":
            roster = reference.read_roster(args.dir)
            _print_json({"valid": True, "directory": str(roster.directory), "checksum": roster.checksum,
                         **roster.summary()})
            return 0
        result = reference.load(args.dir, effective_from=args.effective_from,
                                rewrite_history=args.rewrite_history, loaded_by=args.by)
    except reference.RosterError as exc:
        print(f"routerloop reference {args.action}: {exc}", file=sys.stderr)
        return 1
    _print_json(result)
    return 0


def add_experiments(sub) -> None:
    p = sub.add_parser("experiments", help="A/B experiments in the reference folder's experiments.csv (validated)")
    p.add_argument("action", choices=["list", "show"], help="list: a table of all; show: one as JSON")
    p.add_argument("experiment_id", nargs="?", help="show: the experiment")
    p.set_defaults(func=cmd_experiments)


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


def add_retention(sub) -> None:
    p = sub.add_parser("retention", help="null personal data in raw older than the retention period")
    p.add_argument("--days", type=int, metavar="N",
                   help="retention period in days (default: setting retention_days, ROUTERLOOP_RETENTION_DAYS)")
    p.set_defaults(func=cmd_retention)


def cmd_retention(args) -> int:
    from routerloop import db
    from routerloop.privacy import retention
    from routerloop.warehouse.migrations import migrate

    if args.days is not None and args.days < 0:
        return _refuse("retention", f"--days must be 0 or more, got {args.days}")
    with db.connect(db.database_url(), autocommit=True) as conn:
        migrate(conn)
        _print_json(retention(conn, days=args.days))
    return 0


def add_erase(sub) -> None:
    p = sub.add_parser(
        "erase", help="right to erasure: delete a customer's CSAT ratings everywhere, rebuild the marts, log it",
        description="Delete the customer's CSAT ratings from raw and from every relation derived per rating, in "
                    "one transaction that also appends the erasure to audit.erasures (the customer's pseudonym, "
                    "never the id; rows removed per relation; who), then rebuild every model downstream of the "
                    "staged ratings with a full refresh. Prints the counts. Running it again removes nothing.")
    p.add_argument("--customer-id", required=True, metavar="ID", help="the customerId as the CSAT telemetry carries it")
    p.add_argument("--requested-by", metavar="WHO", help="who asks for it, logged (default: the current OS user)")
    p.add_argument("--reason", metavar="TEXT", help="why, e.g. the request's reference, logged")
    _quiet_option(p, "no dbt output")
    p.set_defaults(func=cmd_erase)


def cmd_erase(args) -> int:
    from routerloop.erasure import ErasureError, erase_customer

    try:
        result = erase_customer(args.customer_id, requested_by=args.requested_by, reason=args.reason,
                                quiet=args.quiet)
    except ErasureError as exc:
        return _refuse("erase", str(exc))
    _print_json(result)
    erasure, rebuild = result["erasure"], result["rebuild"]
    print(f"erasure {erasure['erasure_id']}: {erasure['total_rows_removed']} rows removed; rebuild "
          + ("ok" if rebuild["ok"] else "FAILED (the ratings are erased; run `routerloop erase` again to rebuild)"),
          file=sys.stderr)
    return 0 if rebuild["ok"] else 1


def add_audit(sub) -> None:
    from routerloop.audit import TRAIL

    p = sub.add_parser("audit", help="the append-only audit trail (schema audit)")
    p.add_argument("action", choices=["tail"], help="tail: print the newest entries, newest first")
    p.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="entries (default: %(default)s)")
    p.add_argument("--kind", action="append", choices=sorted(TRAIL), help="only this kind (repeatable)")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args) -> int:
    from routerloop import db
    from routerloop.audit import tail
    from routerloop.warehouse.migrations import migrate

    if args.limit < 1:
        return _refuse("audit", f"--limit must be at least 1, got {args.limit}")
    with db.connect(db.database_url(), autocommit=True) as conn:
        migrate(conn)
        for entry in tail(conn, args.limit, args.kind):
            at, kind = entry.pop("at"), entry.pop("kind")
            print(f"{at}  {kind:<13}  {json.dumps(entry, default=str)}")
    return 0


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the API (weights, experiments, metrics) with uvicorn",
                       description="Serve the routerloop API on its own (the Airflow plugin mounts the same app "
                                   "under setting api_url_prefix). Every route but /healthz needs a bearer token "
                                   "(`routerloop token create`).")
    p.add_argument("--host", metavar="HOST", help="address to bind (default: setting api_host, 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="N", help="port (default: setting api_port)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="uvicorn worker processes (default: 1)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import uvicorn

    from routerloop import db
    from routerloop.config import settings
    from routerloop.warehouse.migrations import migrate

    with db.connect(db.database_url(), autocommit=True) as conn:
        migrate(conn)  # api.tokens and audit.api_requests exist before the first request
    s = settings()
    uvicorn.run("routerloop.api.app:create_app", factory=True, host=args.host or s.api_host,
                port=args.port if args.port is not None else s.api_port, workers=args.workers,
                log_level="warning", access_log=False)
    return 0


def add_token(sub) -> None:
    from routerloop.api.auth import ROLES

    p = sub.add_parser("token", help="API bearer tokens: create (printed once), revoke, list")
    p.add_argument("action", choices=["create", "revoke", "list"],
                   help="create: store a new token of --role and print it once; revoke: revoke TOKEN_ID; "
                        "list: every token's id, role and dates (never a secret)")
    p.add_argument("token_id", nargs="?", metavar="TOKEN_ID", help="revoke: the token's id (or the whole token)")
    p.add_argument("--role", choices=ROLES, help="create: router (weights), analyst (CSAT-bearing figures), admin (all)")
    p.add_argument("--note", help="create: what the token is for (stored)")
    p.set_defaults(func=cmd_token)


def cmd_token(args) -> int:
    from routerloop import db
    from routerloop.api import auth
    from routerloop.warehouse.migrations import migrate

    if args.action == "create" and not args.role:
        return _refuse("token", "create needs --role (router, analyst or admin)")
    if args.action == "revoke" and not args.token_id:
        return _refuse("token", "revoke needs a TOKEN_ID (see `routerloop token list`)")
    with db.connect(db.database_url(), autocommit=True) as conn:
        migrate(conn)
        if args.action == "create":
            token_id, token = auth.create(conn, args.role, args.note)
            print(f"token {token_id} (role {args.role}); shown once, store it now:", file=sys.stderr)
            print(token)
        elif args.action == "revoke":
            try:
                revoked = auth.revoke(conn, args.token_id)
            except auth.TokenError as exc:
                return _refuse("token", str(exc))
            print("revoked" if revoked else "already revoked")
        else:
            _print_json(auth.list_tokens(conn))
    return 0


def add_openapi(sub) -> None:
    p = sub.add_parser("openapi", help="write the API's OpenAPI spec to docs/openapi.json (committed)")
    p.add_argument("--out", type=Path, metavar="FILE", help="another file (default: docs/openapi.json)")
    p.set_defaults(func=cmd_openapi)


def cmd_openapi(args) -> int:
    from routerloop.api import write_spec

    print(write_spec(args.out))
    return 0


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="generate a week, land it, build it, and print a summary")
    p.add_argument("--hours", type=int, default=168, metavar="N", help="hours of telemetry from 2026-11-01 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, metavar="N", help="random seed of the generator (default: %(default)s)")
    p.add_argument("--decisions-per-hour", type=int, default=500, metavar="N",
                   help="router decisions per hour (default: %(default)s)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from routerloop.demo import run_demo

    return run_demo(hours=args.hours, seed=args.seed, decisions_per_hour=args.decisions_per_hour)


def add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="the closed loop, simulated day by day through the real pipeline, against static")
    p.add_argument("--days", type=int, metavar="N", help="days to simulate (default: setting simulate_days)")
    p.add_argument("--strategy", default="sla_csat", help="the strategy under test (dbt var weight_strategies; default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, metavar="N", help="random seed of the world (default: %(default)s)")
    p.add_argument("--world", default="default", help="default, no_signal, shift or thin (default: %(default)s)")
    p.add_argument("--baseline", action="append", default=[], metavar="STRATEGY",
                   help="another strategy to run beside static (repeatable)")
    p.add_argument("--decisions-per-hour", type=int, metavar="N",
                   help="volume (default: the world's, else setting simulate_decisions_per_hour)")
    p.add_argument("--out", type=Path, metavar="DIR", help="folder of the page and lanes (default: reports/simulate/WORLD-seedS)")
    p.add_argument("--keep-databases", action="store_true", help="keep the databases the run creates")
    p.add_argument("--database", action="append", default=[], metavar="STRATEGY=DBNAME",
                   help="run STRATEGY in this existing database (kept) instead of a new one (repeatable)")
    _quiet_option(p)
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args) -> int:
    from routerloop.loop import simulate

    databases = dict(item.split("=", 1) for item in args.database if "=" in item)
    if len(databases) != len(args.database):
        return _refuse("simulate", "--database takes STRATEGY=DBNAME")
    result = simulate(days=args.days, strategy=args.strategy, seed=args.seed, world=args.world,
                      baselines=tuple(args.baseline), decisions_per_hour=args.decisions_per_hour, out=args.out,
                      keep_databases=args.keep_databases, databases=databases, progress=not args.quiet)
    _print_json({"page": result["page"], "seconds": result["run"]["seconds"],
                 "overall": {s: f["overall"] for s, f in result["figures"].items()},
                 "against_static": {s: c["overall"] for s, c in result["comparisons"].items()}})
    return 0


# --------------------------------------------------------------------------- parser

# The subcommands in the order `routerloop --help` lists them.
SUBCOMMANDS = (add_db, add_generate, add_land, add_ledger, add_freshness, add_backfill, add_reference, add_build,
               add_lint_sql, add_docs, add_gates, add_export, add_report, add_contract_doc, add_airflow,
               add_experiments, add_retention, add_erase, add_audit, add_serve, add_token, add_openapi, add_simulate,
               add_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routerloop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(sub)
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
