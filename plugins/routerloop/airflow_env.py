"""Run Airflow locally against routerloop: its environment and a `run_airflow` helper (no Airflow import).

Airflow is configured entirely through environment variables, so nothing Airflow writes ends up in
the repository: its home (airflow.cfg, the SQLite metadata database, task logs) is
`settings().airflow_home` (.routerloop/airflow, gitignored) unless a caller passes another one, e.g.
a test's temporary folder. The DAGs and the plugin come straight from the repository's dags/ and
plugins/ folders.

Everything listens on the loopback interface only, and nobody logs in (`local_defaults`). Those are
defaults: the caller's environment overrides them, which is how README exposes the UI deliberately.

SQLite allows one writer at a time, so the executor runs one task at a time (`airflow dags test`
runs tasks in its own process and needs no executor at all). Two Airflow commands writing to the same
metadata database at once can still hit "database is locked": give concurrent runs their own homes.

With `airflow_executor = "celery"` (README, "Deploy and scale out") the metadata lives in PostgreSQL
(`airflow_metadata_url`) and tasks go through a broker to Celery workers (routerloop.airflow_stack starts
both). Either way the metadata database gets routerloop's pools (`pools()`) when it is migrated.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from routerloop import db
from routerloop.config import settings
from routerloop.freshness import dbt_freshness_env

# Written into AIRFLOW_HOME once `airflow db migrate` has succeeded for this Airflow version.
MIGRATED_MARKER = ".routerloop-db-migrated"

LOOPBACK = "127.0.0.1"
# Airflow's own default port of the API server ([api] port).
DEFAULT_API_PORT = "8080"
# A local machine's defaults that the caller's environment may override (see README, "The DAGs").
LOCAL_ONLY_DEFAULTS = {
    # Airflow would listen on 0.0.0.0; with no login below, anyone who reaches the port could run DAGs.
    "AIRFLOW__API__HOST": LOOPBACK,
    # No login on a local machine. Exposing the API server needs users instead (README).
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
}


# Set by routerloop.airflow_stack for each Celery worker it starts: the name its tasks record as their
# hostname (task_hostname), so that task instances tell apart workers that share one machine.
WORKER_NAME_ENV = "ROUTERLOOP_AIRFLOW_WORKER_NAME"


def task_hostname() -> str:
    """Airflow's [core] hostname_callable for the stack's Celery workers: the worker's name, else the FQDN."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def airflow_bin() -> Path:
    """The `airflow` executable of the running virtualenv (the one routerloop is installed in)."""
    beside_python = Path(sys.executable).parent / "airflow"
    if beside_python.exists():
        return beside_python
    found = shutil.which("airflow")
    if found:
        return Path(found)
    raise FileNotFoundError(f"no `airflow` executable next to {sys.executable} or on PATH; run `make install`")


def airflow_env(url: str | None = None, home: Path | None = None, landing: Path | None = None) -> dict[str, str]:
    """The variables that point Airflow at routerloop (only these; merge them over os.environ).

    url: warehouse URL (default: the configured one, starting the embedded server if needed);
    home: AIRFLOW_HOME (default: settings().airflow_home); landing: landing zone the hourly DAG reads.
    """
    from routerloop.privacy import key_env

    s = settings()
    url = url or db.database_url(start=True)
    home = Path(home or s.airflow_home).resolve()
    bin_dir = str(airflow_bin().parent)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(s.root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(s.root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **executor_env(home, s.celery_broker_url),
        # Cosmos (the daily DAG's dbt tasks) would otherwise send usage metrics to a remote endpoint.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW_CONN_ROUTERLOOP_WAREHOUSE": db.airflow_conn_uri(url),
        "ROUTERLOOP_DATABASE_URL": url,
        "ROUTERLOOP_LANDING_DIR": str(Path(landing or s.landing_dir).resolve()),
        # dbt source freshness thresholds, as routerloop.build gives them to dbt (Cosmos' tasks read them).
        **dbt_freshness_env(),
        # dbt's grants and pseudonymization key (Cosmos runs dbt with the task's environment).
        "ROUTERLOOP_ROLE_PREFIX": s.role_prefix,
        **key_env(),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    }


def __getattr__(name: str):
    """`sqlite_connect_args`: what Airflow's SQLAlchemy engine passes to sqlite3.connect (or aiosqlite)
    in the local stack; Airflow imports it by the dotted path given in executor_env."""
    if name == "sqlite_connect_args":
        return {"timeout": settings().airflow_sqlite_busy_timeout_seconds}
    raise AttributeError(name)


def sqlalchemy_url(url: str) -> str:
    """A postgresql:// URL in SQLAlchemy's form for psycopg 3 (the driver routerloop installs)."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// URL: {scheme}://...")
    return f"postgresql+psycopg://{rest}"


def executor_env(home: Path, broker_url: str | None = None) -> dict[str, str]:
    """Metadata database and executor: SQLite and one local task at a time, or PostgreSQL and Celery.

    broker_url: the Celery broker (unset: routerloop.airflow_stack sets it once it has started one).
    """
    s = settings()
    if s.airflow_executor == "local":
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # SQLite allows one writer: the others wait for its lock (sqlite3's 5 s default is too short).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{__name__}.sqlite_connect_args",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": f"{__name__}.sqlite_connect_args",
            # SQLite: one task at a time (see module docstring).
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "1",
        }
    metadata = sqlalchemy_url(s.airflow_metadata_url)
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(s.airflow_parallelism),
        # Task states come back through the metadata database, not through the broker.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(s.celery_worker_concurrency),
        # A worker takes one task at a time from the broker, so queued tasks spread over every worker.
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    }
    if broker_url:
        env["AIRFLOW__CELERY__BROKER_URL"] = broker_url
    return env


def pools() -> dict[str, dict]:
    """routerloop's Airflow pools (config.py), in the form of `airflow pools import`."""
    s = settings()
    return {
        s.airflow_landing_pool: {"slots": s.airflow_landing_pool_slots,
                                 "description": "routerloop landing tasks (the hourly DAG, backfill landing)"},
        s.airflow_dbt_pool: {"slots": s.airflow_dbt_pool_slots,
                             "description": "routerloop dbt builds (the daily DAG's transform, backfill rebuilds)"},
    }


def local_defaults(environ: dict[str, str]) -> dict[str, str]:
    """LOCAL_ONLY_DEFAULTS, plus where tasks reach the execution API: the API server on this machine.

    Airflow derives that URL from [api] base_url, else assumes localhost:8080, so another
    AIRFLOW__API__PORT would leave tasks knocking on the wrong port.
    """
    defaults = dict(LOCAL_ONLY_DEFAULTS)
    if "AIRFLOW__API__BASE_URL" not in environ:
        port = environ.get("AIRFLOW__API__PORT", DEFAULT_API_PORT)
        defaults["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://{LOOPBACK}:{port}/execution/"
    return defaults


def process_env(url: str | None = None, home: Path | None = None, landing: Path | None = None,
                extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of an Airflow process: local defaults < os.environ < airflow_env < extra_env."""
    environ = {**os.environ, **(extra_env or {})}
    return {**local_defaults(environ), **os.environ, **airflow_env(url=url, home=home, landing=landing),
            **(extra_env or {})}


def _airflow_or_raise(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run([str(airflow_bin()), *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"`airflow {' '.join(args)}` failed in {env['AIRFLOW_HOME']} (exit {result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )


def ensure_metadata_db(env: dict[str, str]) -> None:
    """`airflow db migrate` and routerloop's pools, once per AIRFLOW_HOME, metadata database, Airflow
    version and pool settings (serialised by a file lock)."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    marker = home / MIGRATED_MARKER
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # A digest: the metadata URL may carry a password.
    wanted = hashlib.sha256(json.dumps({"airflow": version("apache-airflow"), "metadata": conn, "pools": pools()},
                                       sort_keys=True).encode()).hexdigest()
    sqlite_file = Path(conn.removeprefix("sqlite:///")) if conn.startswith("sqlite:///") else None
    with open(home / ".routerloop-migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == wanted and (sqlite_file is None or sqlite_file.exists()):
            return
        _airflow_or_raise(["db", "migrate"], env)
        pool_file = home / ".routerloop-pools.json"
        pool_file.write_text(json.dumps(pools(), indent=2))
        _airflow_or_raise(["pools", "import", str(pool_file)], env)
        marker.write_text(wanted + "\n")


def run_airflow(
    args: list[str],
    url: str | None = None,
    home: Path | None = None,
    landing: Path | None = None,
    extra_env: dict[str, str] | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run `airflow <args>` with routerloop's environment; the metadata database is created first.

    Returns the completed process (never raises on a non-zero exit: callers check `returncode`).
    With capture=False the output goes straight to the terminal.
    """
    env = process_env(url=url, home=home, landing=landing, extra_env=extra_env)
    ensure_metadata_db(env)
    return subprocess.run(
        [str(airflow_bin()), *args], env=env, text=True, capture_output=capture, timeout=timeout
    )
