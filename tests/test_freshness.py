"""Stream freshness: each stream's lag (as_of minus its newest landed event), stale over its threshold, the
notifiers (log, webhook on a loopback HTTP server), the CLI's exit status, and dbt source freshness on the
same thresholds."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import DEMO_START, fresh_database, pointed_at

from routerloop import freshness
from routerloop.cli import main
from routerloop.config import reload_settings
from routerloop.contract import STREAMS

HOURS = 6
NEWEST_HOUR_END = DEMO_START + timedelta(hours=HOURS)


@pytest.fixture(scope="module")
def landed_url(database_url, small_landing, tmp_path_factory):
    """The first HOURS hours of the small landing zone, landed into a database of their own."""
    from routerloop.landing import land

    with fresh_database(database_url, "fresh") as url:
        result = land(landing=small_landing, end=NEWEST_HOUR_END, url=url)
        assert result.ok, result.error
        yield url


@pytest.fixture
def settings_env(monkeypatch):
    """Set ROUTERLOOP_* settings for one test."""
    def set_(**values):
        for name, value in values.items():
            monkeypatch.setenv(f"ROUTERLOOP_{name.upper()}", str(value))
        reload_settings()
    yield set_
    monkeypatch.undo()
    reload_settings()


def _newest_events(url) -> dict[str, datetime]:
    from routerloop import db

    with db.connect(url) as conn:
        return {name: conn.execute(f"select max({s.field(s.event_time).column}) from raw.{name}").fetchone()[0]
                for name, s in STREAMS.items()}


def test_lag_is_as_of_minus_the_newest_landed_event_per_stream(landed_url):
    newest = _newest_events(landed_url)
    assert all(newest.values()), "every stream has landed events in the first hours"
    as_of = NEWEST_HOUR_END + timedelta(minutes=5)
    report = freshness.check(as_of=as_of, url=landed_url)
    assert [s.stream for s in report.streams] == list(STREAMS)
    for s in report.streams:
        assert s.newest_event == newest[s.stream]
        assert s.lag == as_of - newest[s.stream]
        assert s.event_column == STREAMS[s.stream].field(STREAMS[s.stream].event_time).column
    assert report.ok, report.describe()


def test_events_after_as_of_are_ignored(landed_url):
    as_of = DEMO_START + timedelta(hours=2, minutes=5)
    for s in freshness.check(as_of=as_of, url=landed_url).streams:
        assert s.newest_event is None or s.newest_event <= as_of


def test_over_two_hours_a_stream_is_stale_and_per_stream_overrides_apply(landed_url, settings_env):
    newest = _newest_events(landed_url)
    oldest_newest = min(newest.values())
    as_of = oldest_newest + timedelta(minutes=121)  # the stream with the oldest newest event is 121 min late
    report = freshness.check(as_of=as_of, url=landed_url)
    late = {name for name, t in newest.items() if as_of - t > timedelta(minutes=120)}
    assert late and {s.stream for s in report.stale} == late
    assert not report.ok and "stale after 120 min" in report.describe()

    settings_env(freshness_stale_after_minutes_by_stream=",".join(f"{name}=180" for name in late))
    assert freshness.check(as_of=as_of, url=landed_url).ok
    settings_env(freshness_stale_after_minutes=60, freshness_stale_after_minutes_by_stream="")
    assert {s.stream for s in freshness.check(as_of=as_of, url=landed_url).stale} >= late


def test_a_stream_with_nothing_landed_is_stale(database_url):
    with fresh_database(database_url, "empty") as url:
        report = freshness.check(as_of=NEWEST_HOUR_END, url=url)
    assert len(report.stale) == len(STREAMS)
    assert "nothing landed" in report.describe()


def test_bad_thresholds_are_refused(settings_env):
    settings_env(freshness_stale_after_minutes_by_stream="nonsense=5")
    with pytest.raises(ValueError, match="not <stream>=<minutes>"):
        freshness.thresholds()
    settings_env(freshness_stale_after_minutes_by_stream="csat_ratings=soon")
    with pytest.raises(ValueError, match="whole minutes"):
        freshness.thresholds()
    settings_env(freshness_stale_after_minutes_by_stream="csat_ratings=0")
    with pytest.raises(ValueError, match="positive"):
        freshness.thresholds()


def test_log_notifier_is_the_default(landed_url, caplog):
    stale_as_of = NEWEST_HOUR_END + timedelta(hours=3)
    with caplog.at_level(logging.ERROR, logger="routerloop.freshness"), \
            pytest.raises(freshness.StaleStreams) as raised:
        freshness.check_and_notify(as_of=stale_as_of, url=landed_url)
    assert len(raised.value.report.stale) == len(STREAMS)
    assert str(raised.value).startswith(f"{len(STREAMS)} of {len(STREAMS)} streams stale as of")
    assert any("streams stale" in r.getMessage() for r in caplog.records)
    # fresh: no notification, no exception
    caplog.clear()
    assert freshness.check_and_notify(as_of=NEWEST_HOUR_END, url=landed_url).ok
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, dict]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    _Recorder.received = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/routerloop", _Recorder.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_webhook_notifier_posts_the_report_as_json(landed_url, webhook_server, settings_env):
    url, received = webhook_server
    settings_env(freshness_webhook_url=url, freshness_stale_after_minutes_by_stream="csat_ratings=100000")
    assert isinstance(freshness.notifier_from_settings(), freshness.WebhookNotifier)
    as_of = NEWEST_HOUR_END + timedelta(hours=3)
    with pytest.raises(freshness.StaleStreams):
        freshness.check_and_notify(as_of=as_of, url=landed_url)
    assert len(received) == 1
    path, headers, payload = received[0]
    assert path == "/hooks/routerloop" and headers["Content-Type"] == "application/json"
    assert payload["text"].startswith(f"routerloop freshness: {len(STREAMS) - 1} of {len(STREAMS)} streams stale")
    report = payload["report"]
    assert report["as_of"] == as_of.isoformat() and report["ok"] is False
    assert report["stale"] == [s for s in STREAMS if s != "csat_ratings"]
    newest = _newest_events(landed_url)
    for stream in report["streams"]:
        assert stream["newest_event"] == newest[stream["stream"]].astimezone(UTC).isoformat()
        assert stream["lag_minutes"] == round((as_of - newest[stream["stream"]]).total_seconds() / 60, 1)
        assert stream["stale"] is (stream["stream"] != "csat_ratings")
    assert {s["stream"]: s["stale_after_minutes"] for s in report["streams"]}["csat_ratings"] == 100000

    # fresh streams post nothing
    assert freshness.check_and_notify(as_of=NEWEST_HOUR_END, url=landed_url).ok
    assert len(received) == 1


def test_an_unreachable_webhook_does_not_hide_the_verdict(landed_url, settings_env, caplog):
    settings_env(freshness_webhook_url="http://127.0.0.1:9/nowhere", freshness_webhook_timeout_seconds=2)
    with caplog.at_level(logging.ERROR, logger="routerloop.freshness"), pytest.raises(freshness.StaleStreams):
        freshness.check_and_notify(as_of=NEWEST_HOUR_END + timedelta(hours=3), url=landed_url)
    messages = [r.getMessage() for r in caplog.records]
    assert any("notifier" in m and "failed" in m for m in messages)
    assert any("streams stale" in m for m in messages)  # the log notifier still says it


def test_cli_exit_status(landed_url, tmp_path, capsys):
    with pointed_at(landed_url, tmp_path):
        assert main(["freshness", "--as-of", NEWEST_HOUR_END.isoformat()]) == 0
        assert json.loads(capsys.readouterr().out)["ok"] is True
        later = (NEWEST_HOUR_END + timedelta(hours=3)).isoformat()
        assert main(["freshness", "--as-of", later, "--no-notify", "--stream", "router_decisions"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["stale"] == ["router_decisions"] and [s["stream"] for s in out["streams"]] == ["router_decisions"]


def test_dbt_source_freshness_uses_the_same_thresholds(landed_url, tmp_path, settings_env):
    # Measured against the wall clock, so the landed November events are days old: stale at 120 minutes,
    # fresh under a threshold of ten years for csat_ratings.
    settings_env(freshness_stale_after_minutes_by_stream="csat_ratings=5256000")
    env = json.loads(freshness.dbt_freshness_env()[freshness.DBT_FRESHNESS_ENV])
    assert env == {"default": 120, **{s: 120 for s in STREAMS}, "csat_ratings": 5256000}
    with pointed_at(landed_url, tmp_path):
        settings_env(freshness_stale_after_minutes_by_stream="csat_ratings=5256000")
        summary = freshness.dbt_source_freshness(raise_on_stale=False)
        with pytest.raises(freshness.StaleSources, match="stale or failing"):
            freshness.dbt_source_freshness()
    statuses = {s["source"].rsplit(".", 1)[-1]: s["status"] for s in summary["sources"]}
    # the ledger's files finished landing moments ago: fresh
    assert statuses == {**{s: "error" for s in STREAMS}, "csat_ratings": "pass", "landed_files": "pass"}
    assert summary["ok"] is False
    # dbt measured each stream on its event time, as routerloop.freshness does
    newest = _newest_events(landed_url)
    for source in summary["sources"]:
        name = source["source"].rsplit(".", 1)[-1]
        if name in STREAMS:
            assert datetime.fromisoformat(source["max_loaded_at"]) == newest[name]


def test_dbt_source_freshness_skips_an_interval_older_than_its_thresholds():
    summary = freshness.dbt_source_freshness(data_interval_end=datetime.now(UTC) - timedelta(hours=3))
    assert summary["ok"] is True and summary["sources"] == [] and "ended 3.0 h ago" in summary["skipped"]
