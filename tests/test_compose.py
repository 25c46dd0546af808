"""docker-compose.airflow.yml, checked offline (no Docker engine here nor in CI): it parses, every mounted
host path and every referenced file exists, the service graph is complete and acyclic, every long-running
service has a healthcheck, and every secret comes from .env (listed in the committed .env.example)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from routerloop.config import settings

ROOT = settings().root
COMPOSE = ROOT / "docker-compose.airflow.yml"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker"}
# The repository folders every Airflow service mounts (the list), and where they land.
MOUNTED_FOLDERS = {"dags", "plugins", "dbt_project", "expectations", "exports", "reference"}
ONE_SHOT = {"airflow-init"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _host_paths(service: dict) -> list[str]:
    paths = []
    for volume in service.get("volumes", []):
        source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
        if source.startswith((".", "/")):
            paths.append(source)
    return paths


def _depends_on(service: dict) -> dict:
    depends = service.get("depends_on") or {}
    return {name: {} for name in depends} if isinstance(depends, list) else depends


def test_the_stack_has_every_component(services):
    assert AIRFLOW_SERVICES | ONE_SHOT | {"postgres", "redis"} <= set(services)
    worker = services["airflow-worker"]
    # `--scale airflow-worker=N` needs replicas without a fixed name or host port
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["celery", "worker"]
    for name in AIRFLOW_SERVICES | ONE_SHOT:
        env = services[name]["environment"]
        assert env["ROUTERLOOP_AIRFLOW_EXECUTOR"] == "celery"
        # metadata and warehouse: one server, two databases
        assert env["ROUTERLOOP_AIRFLOW_METADATA_URL"].endswith("@postgres:5432/airflow")
        assert env["ROUTERLOOP_DATABASE_URL"].endswith("@postgres:5432/warehouse")
        assert "@redis:6379/" in env["ROUTERLOOP_CELERY_BROKER_URL"]


def test_every_mounted_path_and_referenced_file_exists(services):
    for name, service in services.items():
        for path in _host_paths(service):
            assert (ROOT / path).exists(), f"{name} mounts {path}, which does not exist"
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), f"{name}: no {build['dockerfile']}"
        for env_file in [service["env_file"]] if isinstance(service.get("env_file"), str) else service.get(
                "env_file", []):
            assert env_file == ".env" and (ROOT / ".env.example").is_file()
    for name in AIRFLOW_SERVICES | ONE_SHOT:
        mounted = {Path(p).name for p in _host_paths(services[name])}
        assert mounted >= MOUNTED_FOLDERS, f"{name} mounts {mounted}"
    dockerfile = (ROOT / services["airflow-init"]["build"]["dockerfile"]).read_text()
    for copied in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / copied).exists(), copied


def test_the_service_graph_is_complete_and_acyclic(services):
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            assert target in services, f"{name} depends on {target}, which is no service"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy: no healthcheck"
    for name in AIRFLOW_SERVICES:
        assert _depends_on(services[name])["airflow-init"] == {"condition": "service_completed_successfully"}
    assert _depends_on(services["airflow-init"])["postgres"] == {"condition": "service_healthy"}
    order, visiting = [], set()

    def visit(name: str) -> None:
        assert name not in visiting, f"dependency cycle through {name}"
        if name in order:
            return
        visiting.add(name)
        for target in _depends_on(services[name]):
            visit(target)
        visiting.remove(name)
        order.append(name)

    for name in services:
        visit(name)
    assert order.index("postgres") < order.index("airflow-init") < order.index("airflow-scheduler")


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        assert check and check["test"], f"{name} has no healthcheck"


def test_secrets_come_from_env_and_env_example_lists_them(services):
    text = COMPOSE.read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(?::-[^}]*)?\}", text))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert referenced <= set(example), f"not in .env.example: {referenced - set(example)}"
    assert all(value == "change-me" for key, value in example.items()
               if re.search("PASSWORD|SECRET|KEY", key)), "a committed example holds a real secret"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    # no literal password anywhere in the compose file
    assert not re.search(r"(?i)password\s*[:=]\s*(?!\$)\w", text)
