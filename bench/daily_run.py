"""The daily run under a real scheduler against the dbt build it wraps (issue 14 §1).

Generates `make demo`'s telemetry (168 hours from 1 November, seed 7, 500 decisions per hour), lands
it into a fresh database on the warehouse server and builds it once (untimed: the state `make demo`
leaves). Then, for the last demo day (7 November):

1. `routerloop build --start DAY --end DAY+1`, as a command;
2. router_feedback_daily under a real scheduler: routerloop's local stack (`routerloop airflow --
   standalone`: api-server, scheduler, dag-processor, triggerer; LocalExecutor on SQLite) in a
   temporary AIRFLOW_HOME on a free port, and `airflow backfill create` of that day (created before
   the stack starts, see timed_dag_run), polled until the run ends. Its time runs from unpausing the
   DAG with the stack ready to the run's end: the scheduler picking it up, sensor, raw gate, the dbt
   build, marts gate, publish and report, and every gap between them. Airflow's own record of the
   run (start to end) is printed too.

Prints both wall times, their ratio, each task's time, and the goal: DAG run <= 2 x build + 60 s.

    PYTHONPATH=plugins .venv/bin/python bench/daily_run.py

The stack is stopped (every process of its sessions, as `routerloop airflow stop` does) and the
database dropped at the end, also on Ctrl-C or SIGTERM (--keep keeps the database and the folder).
Unpausing the DAG makes the scheduler start a run for yesterday's real date too; its sensor pokes
once beside the backfill (it finds nothing landed and sleeps an hour), a few seconds inside the time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from routerloop import airflow_stack, db
from routerloop.airflow_env import process_env
from routerloop.config import reload_settings, settings

DAG_ID = "router_feedback_daily"
DEMO_START = datetime(2026, 11, 1, tzinfo=UTC)
DEMO_HOURS, DEMO_SEED, DEMO_DECISIONS_PER_HOUR = 168, 7, 500
GOAL_FACTOR, GOAL_EXTRA_SECONDS = 2.0, 60.0
FINISHED = ("success", "failed")
STARTED: list[subprocess.Popen] = []  # the stack's supervisor, in a session of its own


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day", default="2026-11-07", help="the demo day to run (default: the last one)")
    parser.add_argument("--workdir", help="where to generate and keep Airflow's home (default: a temporary folder)")
    parser.add_argument("--landing", help="reuse a landing zone of the demo's telemetry (skips generating)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on the DAG run after these seconds")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work folder")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metadata(home: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read Airflow's SQLite metadata database (read-only; Airflow keeps writing it)."""
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=30) as meta:
        return meta.execute(sql, params).fetchall()


def wait_for(what: str, check, timeout: float, every: float = 1.0, alive=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise SystemExit(f"the Airflow stack exited (code {alive.returncode}) while waiting for {what}")
        try:
            found = check()
        except sqlite3.Error:  # the table may not exist yet, or is being written
            found = None
        if found:
            return found
        time.sleep(every)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


def timed_build(day: datetime, env: dict[str, str]) -> float:
    command = [sys.executable, "-m", "routerloop", "build", "--start", day.isoformat(),
               "--end", (day + timedelta(days=1)).isoformat()]
    say(f"routerloop build for {day:%Y-%m-%d} ...")
    began = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"routerloop build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    say(f"routerloop build: {seconds:.1f} s")
    return seconds


def timed_dag_run(day: datetime, env: dict[str, str], timeout: float) -> tuple[float, float, str, list[tuple]]:
    """Backfill `day` under the stack and wait for the run's end; the stack is stopped by the caller.

    The backfill is created before the stack starts, the DAG still paused: with SQLite, `backfill
    create` next to a busy scheduler failed with "database is locked" (a read turned write meets the
    scheduler's writes). The clock starts when the DAG is unpaused with the stack ready.
    """
    home = Path(env["AIRFLOW_HOME"])
    say("serialise the DAGs and create the backfill (DAG paused, no scheduler yet)")
    airflow(["dags", "reserialize"], env)
    airflow(["backfill", "create", "--dag-id", DAG_ID, "--from-date", day.date().isoformat(),
             "--to-date", day.date().isoformat()], env)
    with open(home / "stack.log", "w") as log:  # the child keeps its own copy of the descriptor
        stack = subprocess.Popen([sys.executable, "-m", "routerloop", "airflow", "--", "standalone"], env=env,
                                 start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(stack)
    api_url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    wait_for("the stack to be healthy", lambda: airflow_stack.api_is_healthy(
        api_url, ("scheduler", "triggerer", "dag_processor")), 300, alive=stack)
    say("stack ready; unpausing the DAG")
    began = time.perf_counter()
    airflow(["dags", "unpause", DAG_ID], env)
    state, run_seconds = wait_for("the backfill run to finish", lambda: next(iter(metadata(
        home, "select state, (julianday(end_date) - julianday(start_date)) * 86400 from dag_run"
              " where dag_id = ? and run_type = 'backfill' and state in (?, ?)",
        (DAG_ID, *FINISHED))), None), timeout, every=0.5, alive=stack)
    seconds = time.perf_counter() - began
    tasks = metadata(
        home,
        "select ti.task_id, ti.state, (julianday(ti.end_date) - julianday(ti.start_date)) * 86400"
        " from task_instance ti join dag_run r on r.dag_id = ti.dag_id and r.run_id = ti.run_id"
        " where r.dag_id = ? and r.run_type = 'backfill' order by ti.start_date", (DAG_ID,))
    say(f"DAG run {state}: {seconds:.1f} s from unpausing (Airflow records {run_seconds:.1f} s)")
    return seconds, run_seconds, state, tasks


def airflow(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "routerloop", "airflow", "--", *args], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    day = datetime.fromisoformat(args.day).replace(tzinfo=UTC)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="routerloop-bench-daily-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    landing = Path(args.landing).resolve() if args.landing else workdir / "landing"
    home = workdir / "state" / "airflow"  # settings().airflow_home under ROUTERLOOP_STATE_DIR below
    server = db.database_url(start=True)
    name = f"routerloop_bench_daily_{secrets.token_hex(4)}"
    url = db.create_database(server, name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on SIGTERM too
    ours = {
        "ROUTERLOOP_DATABASE_URL": url,
        "ROUTERLOOP_LANDING_DIR": str(landing),
        "ROUTERLOOP_EXPORT_DIR": str(workdir / "exports"),
        "ROUTERLOOP_REPORT_DIR": str(workdir / "reports"),
        "ROUTERLOOP_STATE_DIR": str(workdir / "state"),
        "ROUTERLOOP_DAILY_LANDING_POKE_SECONDS": "3600",  # the scheduled run for the real yesterday sleeps
        "DBT_TARGET_PATH": str(workdir / "dbt-target"),
        "DBT_LOG_PATH": str(workdir / "dbt-logs"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(settings().root / "plugins"), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__API__PORT": str(free_port()),
        # SQLite allows one writer; on a busy machine the CLI's backfill gave up after sqlite's default 5 s
        # wait while the scheduler wrote ("database is locked"). Wait longer.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
    }
    os.environ.update(ours)
    reload_settings()
    env = process_env(url=url, home=home, landing=landing, extra_env=ours)
    home.mkdir(parents=True, exist_ok=True)
    try:
        from routerloop.build import build
        from routerloop.landing import land
        from routerloop.simulation import generate

        if not args.landing:
            say(f"generate the demo's telemetry into {landing}")
            generate(out=landing, start=DEMO_START, hours=DEMO_HOURS, seed=DEMO_SEED,
                     decisions_per_hour=DEMO_DECISIONS_PER_HOUR, bad_rate=0.0, progress=False)
        say("land it")
        landed = land(landing=landing, start=DEMO_START, end=DEMO_START + timedelta(hours=DEMO_HOURS),
                      progress=False, url=url)
        if not landed.ok:
            raise SystemExit(f"landing failed: {landed.error}")
        say("build it once (untimed; the state make demo leaves)")
        if not build(url=url, quiet=True)["ok"]:
            raise SystemExit("the first build failed")

        build_seconds = timed_build(day, env)
        run_seconds, recorded_seconds, state, tasks = timed_dag_run(day, env, args.timeout)
    finally:
        stopped = airflow_stack.stop(home) if home.exists() else False
        airflow_stack.stop_sessions([p.pid for p in STARTED])  # also a stack that had not written its state yet
        for process in STARTED:
            process.poll()
        left = [p.pid for p in airflow_stack.session_processes([p.pid for p in STARTED])]
        say(f"stack {'stopped' if stopped else 'not running'}; processes left: {left or 'none'}")
        if args.keep:
            say(f"kept database {url} and {workdir}")
        else:
            db.drop_database(server, name)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    goal = GOAL_FACTOR * build_seconds + GOAL_EXTRA_SECONDS
    print()
    print(f"day:                                    {day:%Y-%m-%d} (demo telemetry, {DEMO_DECISIONS_PER_HOUR} decisions/h)")
    print(f"routerloop build --start --end:         {build_seconds:.1f} s")
    print(f"{DAG_ID} under the scheduler: {run_seconds:.1f} s ({state}; from unpausing to the run's end)")
    print(f"    the run's start to its end as Airflow records it: {recorded_seconds:.1f} s")
    for task_id, task_state, seconds in tasks:
        print(f"    {task_id:28} {task_state:10} {seconds or 0:6.1f} s")
    print(f"ratio DAG run / build:                  {run_seconds / build_seconds:.2f}")
    met = state == "success" and run_seconds <= goal
    print(f"goal DAG run <= 2 x build + 60 s = {goal:.0f} s: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
