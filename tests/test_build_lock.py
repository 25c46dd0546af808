"""One dbt build at a time (issue 15 §1): two daily builds started at the same moment serialise.

`airflow backfill create` ignores a DAG's max_active_runs, so two days of router_feedback_daily can
reach dbt together; routerloop.build.build holds the DBT_BUILD advisory lock for the whole build. Two
processes call the daily DAG's own entry point (routerloop.daily.build_day) for consecutive days; the
test holds the lock while they start, so both are queued on it and then released at the same moment.
Their marts must equal those of the same two days built one after the other in another database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import DEMO_START, fresh_database, marts_checksums, pointed_at

from routerloop import db
from routerloop.build import one_build_at_a_time
from routerloop.config import reload_settings
from routerloop.daily import build_day
from routerloop.landing import land
from routerloop.warehouse import locks

pytestmark = pytest.mark.slow

FIRST, SECOND, THIRD = (DEMO_START + timedelta(days=n) for n in range(3))
# Columns that say which run wrote a row and when, not what the data is.
RUN_COLUMNS = frozenset({("weight_adjustment_log", "run_id"), ("weight_adjustment_log", "logged_at")})

# The daily DAG's transform task, in a process of its own with its own dbt artifact folders.
BUILD_DAY = r"""
import json, sys
from datetime import datetime
from routerloop.daily import build_day
result = build_day(datetime.fromisoformat(sys.argv[1]), datetime.fromisoformat(sys.argv[2]))
print(json.dumps({"day": sys.argv[1], "lock": result["lock"]}))
"""


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    from routerloop.simulation import generate

    out = tmp_path_factory.mktemp("lock_landing")
    generate(out=out, start=DEMO_START, hours=72, seed=15, decisions_per_hour=40, bad_rate=0.0)
    return out


def _first_day_built(url, landing, work) -> None:
    """Three days landed, the first one built: the state before the next two days' runs."""
    from routerloop.reference import load as load_reference

    with pointed_at(url, work):
        load_reference(url=url)  # the roster, as the daily DAG's load_reference task loads it before dbt
        assert land(landing=landing, start=FIRST, end=THIRD + timedelta(days=1), url=url, progress=False).ok
        build_day(FIRST, SECOND, url=url)


def _start_build(day: datetime, url: str, work) -> subprocess.Popen:
    """The build in a process of its own; its output goes to files (dbt's log would fill a pipe)."""
    env = {**os.environ, "ROUTERLOOP_DATABASE_URL": url,
           "DBT_TARGET_PATH": str(work / f"target-{day:%d}"), "DBT_LOG_PATH": str(work / f"logs-{day:%d}")}
    end = day + timedelta(days=1)
    with open(work / f"out-{day:%d}", "w") as out, open(work / f"err-{day:%d}", "w") as err:
        build = subprocess.Popen([sys.executable, "-c", BUILD_DAY, day.isoformat(), end.isoformat()], env=env,
                                 stdout=out, stderr=err, text=True)
    build.outputs = (work / f"out-{day:%d}", work / f"err-{day:%d}")
    return build


def _finish(build: subprocess.Popen, timeout: float = 900) -> tuple[int, str, str]:
    returncode = build.wait(timeout)
    return returncode, *(path.read_text() for path in build.outputs)


@pytest.fixture
def one_key(monkeypatch):
    """One pseudonymization key for every build of the test: each state folder would otherwise generate
    its own, and the pseudonyms (which staging also orders by) would differ between the databases."""
    monkeypatch.setenv("ROUTERLOOP_HMAC_KEY", "build-lock-test-key")
    reload_settings()
    yield
    monkeypatch.undo()
    reload_settings()


def test_two_daily_builds_started_together_run_one_after_the_other(database_url, landing, tmp_path, one_key):
    with fresh_database(database_url, "lock_together") as together, \
            fresh_database(database_url, "lock_in_turn") as in_turn:
        _first_day_built(together, landing, tmp_path / "together")
        with one_build_at_a_time(together), db.connect(together, autocommit=True) as watch:
            builds = [_start_build(day, together, tmp_path) for day in (SECOND, THIRD)]
            deadline = time.monotonic() + 300
            while len(locks.waiters(watch, locks.DBT_BUILD)) < 2:  # both queued behind this test
                assert time.monotonic() < deadline, "the builds never queued for the build lock"
                assert all(b.poll() is None for b in builds), [_finish(b) for b in builds]
                time.sleep(0.2)
        outputs = [_finish(b) for b in builds]  # released together just now
        assert [code for code, _, _ in outputs] == [0, 0], [err[-3000:] for _, _, err in outputs]
        for _, _, stderr in outputs:
            assert f"waiting for another dbt build (pid {os.getpid()} on" in stderr
        runs = sorted((json.loads(out.strip().splitlines()[-1]) for _, out, _ in outputs),
                      key=lambda r: r["lock"]["started"])
        # they held the lock one after the other: the second started once the first had finished
        assert runs[0]["lock"]["finished"] <= runs[1]["lock"]["started"]

        # the same two days, one after the other, in the order the lock let them run
        _first_day_built(in_turn, landing, tmp_path / "in_turn")
        with pointed_at(in_turn, tmp_path / "in_turn"):
            for run in runs:
                day = datetime.fromisoformat(run["day"])
                build_day(day, day + timedelta(days=1), url=in_turn)
        expected = marts_checksums(in_turn, ignore=RUN_COLUMNS)
        assert expected["routing_weights"][0] > 0 and len(expected) >= 10
        got = marts_checksums(together, ignore=RUN_COLUMNS)
        assert got == expected


def test_a_second_build_says_whom_it_waits_for(database_url, tmp_path):
    with fresh_database(database_url, "lock_wait") as url, one_build_at_a_time(url) as waited:
        assert waited == 0.0
        build = _start_build(datetime(2026, 11, 1, tzinfo=UTC), url, tmp_path)
        with db.connect(url, autocommit=True) as watch:
            deadline = time.monotonic() + 300
            while not locks.waiters(watch, locks.DBT_BUILD):
                assert time.monotonic() < deadline and build.poll() is None, _finish(build)
                time.sleep(0.2)
            holders = locks.holders(watch, locks.DBT_BUILD)
        build.kill()
        _, _, stderr = _finish(build)
    assert [h["application_name"] for h in holders] == [f"routerloop dbt build pid {os.getpid()} on {os.uname()[1]}"]
    assert f"waiting for another dbt build (pid {os.getpid()} on {os.uname()[1]}, connected since" in stderr
