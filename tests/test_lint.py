"""The code base is lint-clean: ruff over the Python, sqlfluff (dbt templater, /.sqlfluff) over the dbt models."""

from __future__ import annotations

import os
import subprocess
import sys

from routerloop.config import settings


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=settings().root, env=env, capture_output=True, text=True)


def test_python_is_ruff_clean():
    result = _run([sys.executable, "-m", "ruff", "check", "plugins", "dags", "tests", "bench"])
    assert result.returncode == 0, f"ruff found problems:\n{result.stdout}\n{result.stderr}"


def test_dbt_models_are_sqlfluff_clean(database_url, tmp_path):
    # `routerloop lint-sql` is what `make lint` runs; the dbt templater compiles every model against the
    # session database, with its artifacts in a private target path.
    env = {
        **os.environ,
        "ROUTERLOOP_DATABASE_URL": database_url,
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = _run([sys.executable, "-m", "routerloop", "lint-sql"], env=env)
    assert result.returncode == 0, f"sqlfluff found problems:\n{result.stdout}\n{result.stderr}"
