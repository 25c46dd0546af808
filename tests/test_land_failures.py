"""A failed landing stays failed until re-delivered or acknowledged (issue 15, section 4).

Clearing the Airflow task reruns the landing of its hour: the failed file is skipped (it landed), and
the task must still fail with the same message, naming raw.quarantine and the acknowledge command. The
daily sensor must not count the hour as landed.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import test_land
from test_land import HOUR, S, line, rel, write

from routerloop import cli
from routerloop.daily import describe_progress, landing_progress
from routerloop.landing import LandingFailed, land, land_or_raise

# test_land's fixtures: a fresh database per test, a connection to it, settings overrides.
warehouse, wconn, setting = test_land.warehouse, test_land.wconn, test_land.setting
NEXT = HOUR + timedelta(hours=1)


def bad_file(root, name="part-0000.jsonl", hour=HOUR):
    return write(root, S, [line(S, i) for i in range(9)] + [b"bad"], hour=hour, name=name)  # 10 % bad


def hour_of(root, hour, url):
    return land_or_raise(root, url=url, start=hour, end=hour + timedelta(hours=1))


def test_a_failed_file_keeps_failing_its_hour_with_the_same_message(tmp_path, warehouse):
    failed = bad_file(tmp_path)
    with pytest.raises(LandingFailed) as first:
        hour_of(tmp_path, HOUR, warehouse)
    with pytest.raises(LandingFailed) as cleared:  # what clearing the Airflow task does: run it again
        hour_of(tmp_path, HOUR, warehouse)
    assert cleared.value.result.files[0].status == "skipped"
    assert str(cleared.value) == str(first.value)
    message = str(cleared.value)
    assert rel(tmp_path, failed) in message and "failed_bad_lines" in message
    assert "raw.quarantine" in message and "routerloop ledger acknowledge" in message
    assert not cleared.value.retryable  # Airflow fails the task rather than retrying it
    # other hours are not held back
    write(tmp_path, S, [line(S, 100 + i) for i in range(5)], hour=NEXT)
    assert hour_of(tmp_path, NEXT, warehouse).ok


def test_acknowledging_ends_the_failure_and_records_who_when_why(tmp_path, warehouse, wconn, setting, capsys):
    setting("database_url", warehouse)
    failed = bad_file(tmp_path)
    assert cli.main(["land", "--landing", str(tmp_path), "--quiet"]) == 1
    capsys.readouterr()
    assert cli.main(["land", "--landing", str(tmp_path), "--quiet"]) == 1  # still failed
    summary = json.loads(capsys.readouterr().out)
    assert [f["path"] for f in summary["open_failures"]] == [rel(tmp_path, failed)]

    assert cli.main(["ledger", "acknowledge", "no/such/file.jsonl", "--reason", "x"]) == 1
    assert cli.main(["ledger", "acknowledge", rel(tmp_path, failed), "--reason", "known bad export",
                     "--by", "ops@example.com"]) == 0
    capsys.readouterr()
    by, reason, at = wconn.execute(
        "select acknowledged_by, reason, acknowledged_at from raw.ledger_acknowledgements").fetchone()
    assert (by, reason) == ("ops@example.com", "known bad export") and at is not None
    assert hour_of(tmp_path, HOUR, warehouse).ok
    assert cli.main(["ledger", "acknowledge", rel(tmp_path, failed), "--reason", "again"]) == 1  # nothing open


def test_a_redelivery_under_a_new_name_in_a_later_run_ends_the_failure(tmp_path, warehouse):
    bad_file(tmp_path)
    write(tmp_path, S, [line(S, 50)], name="part-0001.jsonl")  # a clean file of the same run is no re-delivery
    assert not land(tmp_path, url=warehouse).ok
    write(tmp_path, S, [line(S, i) for i in range(10)], name="part-0000-fixed.jsonl")
    result = hour_of(tmp_path, HOUR, warehouse)
    assert result.ok and {f.path.rsplit("/", 1)[1]: f.status for f in result.files}["part-0000-fixed.jsonl"] == \
        "loaded"


@pytest.mark.parametrize("kind", ["bad lines", "changed", "rejected"])
def test_every_failed_status_stays_failed(tmp_path, warehouse, monkeypatch, kind):
    import psycopg

    from routerloop.landing import steps

    path = write(tmp_path, S, [line(S, i) for i in range(10)])
    if kind == "bad lines":
        bad_file(tmp_path)
    elif kind == "changed":
        land(tmp_path, url=warehouse)
        path.write_bytes(path.read_bytes() + line(S, 99) + b"\n")
    else:
        def refuse(point, file, lines_read):
            if point == "inserted":
                raise psycopg.errors.DataError("injected refusal")
        monkeypatch.setattr(steps, "_fault_hook", refuse)
    assert not land(tmp_path, url=warehouse).ok
    monkeypatch.setattr(steps, "_fault_hook", None)
    if kind == "rejected":  # retried by the next run: once it lands, the failure ends
        assert land(tmp_path, url=warehouse).ok
    else:
        assert not land(tmp_path, url=warehouse).ok


def test_the_daily_sensor_does_not_count_a_failed_hour_as_landed(tmp_path, warehouse):
    failed = bad_file(tmp_path)
    write(tmp_path, S, [line(S, 100)], hour=NEXT)
    land(tmp_path, url=warehouse)
    progress = landing_progress(HOUR, NEXT + timedelta(hours=1), landing=tmp_path, url=warehouse)
    assert not progress["ready"] and progress["failed_hours"] == [HOUR.isoformat()]
    assert progress["failed_files"] == [rel(tmp_path, failed)]
    assert "hold failed landings" in describe_progress(progress)
    acknowledge_in(warehouse, rel(tmp_path, failed))
    assert landing_progress(HOUR, NEXT + timedelta(hours=1), landing=tmp_path, url=warehouse)["ready"]


def acknowledge_in(url, path) -> None:
    from routerloop import db
    from routerloop.landing.failures import acknowledge

    with db.connect(url, autocommit=True) as conn:
        assert acknowledge(conn, path, "accepted in a test", by="tester")
