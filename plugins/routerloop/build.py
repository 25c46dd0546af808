"""dbt: `routerloop build` runs `dbt build` against the configured warehouse; the DAGs make the same call.

dbt runs in-process through dbtRunner. The warehouse reaches dbt's committed profiles.yml through the
ROUTERLOOP_PG* environment variables (routerloop.db.dbt_env), so no secret is ever written to disk.
DBT_TARGET_PATH / DBT_LOG_PATH may point dbt's artifacts elsewhere (parallel runs must not share them).

One build at a time: the incremental models' watermarks assume it. build() holds the session advisory
lock DBT_BUILD (warehouse.locks) on a connection of its own for the whole build, so a second build, from
the CLI, the daily DAG, a backfill or `airflow backfill create` (which ignores max_active_runs), waits
for the first one to finish, saying so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from routerloop import db
from routerloop.config import DBT_INTERVAL_ENV, settings
from routerloop.freshness import dbt_freshness_env
from routerloop.warehouse import locks

log = logging.getLogger(__name__)


class DbtError(RuntimeError):
    """dbt reported a failure; the message names the failing nodes."""


def dbt_environment(url: str | None = None) -> dict[str, str]:
    from routerloop.privacy import key_env

    env = db.dbt_env(url or db.database_url())
    env["ROUTERLOOP_DBT_THREADS"] = str(settings().dbt_threads)
    env.update(dbt_freshness_env())  # the source freshness thresholds (routerloop.freshness)
    # The role dbt's grants name (dbt_project.yml) and the pseudonymization key (PGOPTIONS, not SQL).
    env["ROUTERLOOP_ROLE_PREFIX"] = settings().role_prefix
    env.update(key_env())
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def interval_env(start: datetime | None, end: datetime | None) -> dict[str, str]:
    """The interval as dbt's environment; an absent bound is an empty string (none)."""
    return {
        DBT_INTERVAL_ENV["start"]: start.isoformat() if start else "",
        DBT_INTERVAL_ENV["end"]: end.isoformat() if end else "",
    }


def run_dbt(
    args: list[str],
    url: str | None = None,
    quiet: bool = False,
    start: datetime | None = None,
    end: datetime | None = None,
):
    """Invoke dbt in-process with the warehouse environment and the data interval [start, end) (none:
    no interval, whatever an earlier call set); return dbt's result object."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_environment(url))
    os.environ.update(interval_env(start, end))
    project = str(settings().dbt_project_dir)
    full_args = [*args, "--project-dir", project, "--profiles-dir", project]
    if quiet:
        full_args = ["--quiet", *full_args]
    result = dbtRunner().invoke(full_args)
    if result.exception is not None:
        raise DbtError(f"dbt {args[0]} could not run: {result.exception}") from result.exception
    return result


def _node_results(result) -> list[dict]:
    rows = []
    for r in getattr(result.result, "results", None) or []:
        rows.append(
            {
                "node": r.node.unique_id,
                "status": str(r.status),
                "message": r.message,
                "execution_time": round(r.execution_time or 0.0, 3),
            }
        )
    return rows


# A build of an interval names its start in its session's application_name, so that of the builds
# queued at once the earliest interval goes first (each day's weights start from the day before's).
_INTERVAL_MARK = "from "


@contextmanager
def one_build_at_a_time(url: str | None = None, start: datetime | None = None):
    """Hold the DBT_BUILD lock while inside; if another build holds it, say who and wait for it.

    A session lock on a connection of its own: it is released when the block ends, and by PostgreSQL
    when the process dies (a killed task does not leave the warehouse locked). Of builds waiting at the
    same time, one whose interval starts earlier goes before this one. Yields the seconds waited.
    """
    mark = f"{_INTERVAL_MARK}{start.astimezone(UTC):%Y-%m-%dT%H:%M} " if start else ""
    name = f"routerloop dbt build {mark}pid {os.getpid()} on {socket.gethostname()}"[:63]
    with db.connect(url or db.database_url(), autocommit=True, application_name=name) as conn:
        started = time.monotonic()
        said = False
        while True:
            if not locks.try_session_lock(conn, locks.DBT_BUILD):
                if not said:
                    holders = locks.holders(conn, locks.DBT_BUILD)
                    log.warning("waiting for another dbt build (%s) to finish",
                                "; ".join(map(_describe_holder, holders)) or "it has just finished")
                    said = True
                locks.session_lock(conn, locks.DBT_BUILD)
            earlier = _earlier_waiting_build(conn, mark)
            if earlier is None:
                break
            locks.session_unlock(conn, locks.DBT_BUILD)  # the waiting build takes the lock at once
            log.warning("a build of an earlier interval is waiting (%s): it goes first", earlier)
            said = True
            time.sleep(0.2)
        waited = time.monotonic() - started if said else 0.0
        if said:
            log.warning("the other dbt build finished after %.1f s; this one starts", waited)
        try:
            yield waited
        finally:
            with suppress(Exception):  # on a broken connection, closing it releases the lock
                locks.session_unlock(conn, locks.DBT_BUILD)


def _earlier_waiting_build(conn, mark: str) -> str | None:
    """The application_name of a build queued for the lock whose interval starts before `mark`'s."""
    if not mark:
        return None
    prefix = f"routerloop dbt build {_INTERVAL_MARK}"
    earlier = [name for _, name in locks.queued(conn, locks.DBT_BUILD) if name and name.startswith(prefix)
               and name[len(prefix):len(prefix) + 16] < mark[len(_INTERVAL_MARK):len(_INTERVAL_MARK) + 16]]
    return min(earlier) if earlier else None


def _describe_holder(holder: dict) -> str:
    """`pid 123 on host` of a routerloop build (its application_name), else the PostgreSQL session."""
    name = holder["application_name"] or ""
    prefix = "routerloop dbt build "
    who = name[len(prefix):] if name.startswith(prefix) else f"PostgreSQL backend pid {holder['backend_pid']}"
    if name and not name.startswith(prefix):
        who += f", application {name!r}"
    return f"{who}, connected since {holder['since']:%Y-%m-%d %H:%M:%S %Z}"


def build(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    full_refresh: bool = False,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
    extra_vars: dict | None = None,
    url: str | None = None,
    quiet: bool = False,
    unit_tests: bool | None = None,
) -> dict:
    """`dbt build` for the data interval [start, end); returns ok, invocation_id and per-node results.

    dbt's unit tests check the SQL, not the data, so (as dbt's guide advises for production) the
    scheduled interval runs skip them; builds without an interval (CI, development, full refreshes)
    run them. `unit_tests` forces either way. Raises routerloop.reference.ReferenceNotLoaded when the
    warehouse has no roster (run `routerloop reference load`).
    """
    from routerloop.reference import require_loaded
    from routerloop.warehouse.migrations import migrate
    from routerloop.warehouse.roles import ensure_roles

    args = ["build", "--vars", json.dumps(extra_vars or {})]
    if full_refresh:
        args.append("--full-refresh")
    if not (unit_tests if unit_tests is not None else start is None or full_refresh):
        args += ["--exclude-resource-type", "unit_test"]
    if select:
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    with one_build_at_a_time(url, start=start) as waited:
        started = datetime.now(UTC)
        with db.connect(url or db.database_url()) as conn:
            migrate(conn)  # the audit tables dbt's hooks write to
            require_loaded(conn)  # no roster: every team and agent mart would be empty; say so instead
            ensure_roles(conn)  # the role dbt's grants name must exist
        result = run_dbt(args, url=url, quiet=quiet, start=start, end=end)
        finished = datetime.now(UTC)
    nodes = _node_results(result)
    failed = [n for n in nodes if n["status"] in {"error", "fail", "runtime error"}]
    return {
        "ok": bool(result.success),
        "invocation_id": last_invocation_id(),
        "models_built": sum(1 for n in nodes if n["node"].startswith("model.") and n["status"] == "success"),
        "tests_passed": sum(1 for n in nodes if n["node"].startswith(("test.", "unit_test.")) and n["status"] == "pass"),
        "failed": failed,
        "results": nodes,
        # when this build held the build lock, and how long it waited for another build first
        "lock": {"waited_seconds": round(waited, 3), "started": started.isoformat(), "finished": finished.isoformat()},
    }


def last_invocation_id() -> str | None:
    """The invocation id of the last dbt run in this project's target folder (run_results.json)."""
    run_results = target_path() / "run_results.json"
    try:
        return json.loads(run_results.read_text())["metadata"]["invocation_id"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


def target_path() -> Path:
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else settings().dbt_project_dir / "target"


def parse(url: str | None = None) -> Path:
    """`dbt parse`: writes target/manifest.json, which Cosmos renders the daily DAG from."""
    result = run_dbt(["parse"], url=url, quiet=True)
    if not result.success:
        raise DbtError("dbt parse failed; run `routerloop build` to see the error")
    return target_path() / "manifest.json"


def lint_sql(fix: bool = False) -> bool:
    """sqlfluff (dbt templater) over every model; returns True when clean."""
    os.environ.update(dbt_environment())
    cmd = [sys.executable, "-m", "sqlfluff", "fix" if fix else "lint", "models"]
    if fix:
        cmd.append("--force")
    return subprocess.run(cmd, cwd=settings().dbt_project_dir).returncode == 0


def docs(serve: bool = False, port: int = 8081) -> int:
    """Build the dbt docs site into target/; with serve, serve it on http://127.0.0.1:<port>."""
    result = run_dbt(["docs", "generate"])
    if not result.success:
        return 1
    print(f"dbt docs written to {target_path() / 'index.html'}")
    if serve:
        run_dbt(["docs", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-browser"])
    return 0
