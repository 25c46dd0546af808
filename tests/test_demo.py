"""`routerloop demo` (what `make demo` runs) goes through the whole loop and says where the results are.

A short demo (two days, few decisions) in a database and folders of its own: landing -> dbt -> gates
-> export -> report, then the printed summary names the exported version and the report path.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from routerloop import db
from routerloop.config import reload_settings
from routerloop.demo import DEMO_START, generate_telemetry, run_demo

pytestmark = pytest.mark.slow


def test_demo_runs_the_loop_and_prints_the_exported_version_and_the_report(database_url, tmp_path, capsys):
    name = db.url_parts(database_url)["dbname"] + "_demo"
    url = db.create_database(database_url, name)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ROUTERLOOP_DATABASE_URL", url)
            patch.setenv("ROUTERLOOP_STATE_DIR", str(tmp_path / "state"))
            patch.setenv("ROUTERLOOP_EXPORT_DIR", str(tmp_path / "exports"))
            patch.setenv("ROUTERLOOP_REPORT_DIR", str(tmp_path / "reports"))
            patch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt" / "target"))
            patch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt" / "logs"))
            reload_settings()
            try:
                code = run_demo(hours=48, seed=3, decisions_per_hour=60)
            finally:
                reload_settings()
        out = capsys.readouterr().out
        assert code == 0, out[-4000:]

        version = re.search(r"^exported weights version: (\S+) \(published", out, re.MULTILINE)
        report = re.search(r"^report: (\S+\.html)$", out, re.MULTILINE)
        assert version and report, out[-3000:]
        assert Path(report.group(1)).is_file() and Path(report.group(1)).parent == tmp_path / "reports"
        latest = json.loads((tmp_path / "exports" / "routing_weights" / "latest.json").read_text())
        assert latest["manifest"]["weights_version"] == version.group(1)
        assert (tmp_path / "reports" / "data_docs" / "index.html").is_file()
        index = (tmp_path / "reports" / "data_docs" / "index.html").read_text()
        assert "<script" not in index and index.count('<tr class="passed">') >= 10  # opens offline
        assert "routing_weights[" in index  # names routerloop's batches (GX does not record them)

        with db.connect(url, autocommit=True) as conn:
            gates = conn.execute("select count(*), bool_and(success) from audit.gate_results").fetchone()
            current = conn.execute("select distinct weights_version from router.routing_weights").fetchall()
        assert gates[0] >= 10 and gates[1] is True
        assert current == [(version.group(1),)]
    finally:
        db.drop_database(database_url, name)


def test_the_demo_reuses_its_generation_and_otherwise_replaces_only_its_own_files(tmp_path, capsys):
    from routerloop.simulation import generate

    landing = tmp_path / "landing"
    generate_telemetry(landing, hours=3, seed=1, decisions_per_hour=5)
    demo_files = {p: p.read_bytes() for p in landing.rglob("*.jsonl")}
    generate_telemetry(landing, hours=3, seed=1, decisions_per_hour=5)
    assert "reusing it" in capsys.readouterr().out

    generate(out=landing, start=DEMO_START + timedelta(days=7), hours=2, seed=1, decisions_per_hour=5)
    later_files = {p: p.read_bytes() for p in landing.rglob("*.jsonl") if p not in demo_files}
    assert later_files
    generate_telemetry(landing, hours=3, seed=1, decisions_per_hour=5)  # the manifest is the later run's now
    assert "replacing the files of an earlier generation" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in landing.rglob("*.jsonl")} == demo_files | later_files
