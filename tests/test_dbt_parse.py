"""A run's data interval must not cost dbt a full re-parse of the project.

dbt keeps a partial parse (target/partial_parse.msgpack) and throws it away whenever --vars change, so
an interval passed as vars made every hourly or daily run parse the whole project again (about 10 s
here). routerloop passes the interval in the environment, read only while executing
(dbt_project/macros/incremental_window.sql). `dbt parse` writes perf_info.json, which counts the files it parsed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from routerloop.build import run_dbt

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_new_interval_keeps_dbt_partial_parse(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))

    def files_parsed(*args: str, **interval) -> int:
        result = run_dbt(["parse", *args], url=database_url, quiet=True, **interval)
        assert result.success
        return json.loads((tmp_path / "target" / "perf_info.json").read_text())["parsed_path_count"]

    assert files_parsed(start=DAY, end=DAY + timedelta(hours=1)) > 0  # nothing saved yet: a full parse
    assert files_parsed(start=DAY + timedelta(hours=1), end=DAY + timedelta(hours=2)) == 0
    assert files_parsed() == 0  # no interval (a full refresh) either
    # What the environment avoids, so this check can tell: a changed var re-parses everything.
    assert files_parsed("--vars", json.dumps({"start": DAY.isoformat()})) > 0
