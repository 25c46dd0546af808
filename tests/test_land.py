"""routerloop.landing against a real PostgreSQL: every line accounted for, exactly once, nothing half-written.

Each test lands into a fresh database of its own (the ledger identifies files by their path relative
to the landing root, so tests must not share one). Files are written here line by line, so every
expected count is known exactly; the last test reconciles a generated landing zone with the
generator's manifest.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routerloop import cli, db
from routerloop.config import reload_settings, settings
from routerloop.contract import REASONS, STREAMS
from routerloop.landing import (
    FileResult,
    LandingFailed,
    LandingResult,
    land,
    land_or_raise,
    steps,
    validation,
)
from routerloop.warehouse.migrations import migrate
from routerloop.warehouse.raw import ensure_partitions

HOUR = datetime(2026, 11, 1, 0, tzinfo=UTC)
DROP = object()  # an override that removes the field


# --------------------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def warehouse(database_url):
    """A fresh database for one test, on the session's server."""
    name = f"{db.url_parts(database_url)['dbname']}_land_{secrets.token_hex(3)}"
    url = db.create_database(database_url, name)
    yield url
    db.drop_database(database_url, name)


@pytest.fixture
def wconn(warehouse):
    with db.connect(warehouse, autocommit=True) as connection:
        yield connection


@pytest.fixture
def setting(monkeypatch):
    """Override runtime settings through their environment variables for one test."""

    def set_(name: str, value) -> None:
        monkeypatch.setenv(f"ROUTERLOOP_{name.upper()}", str(value))
        reload_settings()

    yield set_
    monkeypatch.undo()
    reload_settings()


def record(stream: str, i: int, **overrides) -> dict:
    """A valid record of `stream` whose key depends on i; overrides replace fields (DROP removes)."""
    values = {}
    for f in STREAMS[stream].fields:
        if f.kind == "string":
            value = f"{f.prefix or f.name + '_'}{i:06d}"
        elif f.kind == "timestamp":
            value = "2026-11-01T00:30:00.000Z"
        elif f.kind == "enum":
            value = f.values[0]
        elif f.kind == "number":
            value = 0.25 if f.maximum == 1 else 12.5
        elif f.kind == "integer":
            value = 4 if f.maximum else 120
        elif f.kind == "boolean":
            value = True
        else:
            value = ["topic:billing", "after_hours"]
        values[f.name] = value
    for name, value in overrides.items():
        if value is DROP:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def line(stream: str, i: int, **overrides) -> bytes:
    return json.dumps(record(stream, i, **overrides), ensure_ascii=False).encode()


def write(root: Path, stream: str, lines: list[bytes], hour: datetime = HOUR, name: str = "part-0000.jsonl",
          trailing_newline: bool = True) -> Path:
    folder = root / stream / f"dt={hour:%Y-%m-%d}" / f"hr={hour:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    path = folder / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def one(result: LandingResult) -> FileResult:
    assert len(result.files) == 1, result.files
    return result.files[0]


def accounted(file_result: FileResult) -> bool:
    return file_result.lines == file_result.loaded + file_result.duplicates + file_result.quarantined


def count(conn, sql: str, *params) -> int:
    return conn.execute(sql, params).fetchone()[0]


def ledger_invariants_hold(conn) -> None:
    """Every landed file: lines = loaded + duplicates + quarantined, and the tables agree with the ledger."""
    rows = conn.execute(
        "select file_id, stream, lines, loaded, duplicates, quarantined from raw.landed_files "
        "where status in ('loaded', 'failed_bad_lines')"
    ).fetchall()
    for file_id, stream, lines, loaded, duplicates, quarantined in rows:
        assert lines == loaded + duplicates + quarantined, file_id
        assert count(conn, f"select count(*) from raw.{stream} where _file_id = %s", file_id) == loaded
        assert count(conn, "select count(*) from raw.quarantine where file_id = %s", file_id) == quarantined


# --------------------------------------------------------------------------- reasons


def test_one_line_per_reason_code_gives_exact_counts(tmp_path, warehouse, wconn):
    s = "router_decisions"
    bad = {
        "not_utf8": line(s, 1, channelId="@@").replace(b"@@", b"caf\xe9"),
        "invalid_json": b'{"decisionId": "rd_000002",',
        "missing_field": line(s, 3, createdAt=None),
        "wrong_type": line(s, 4, confidence="high"),
        "bad_enum": line(s, 5, predictedTier="T5"),
        "out_of_range": line(s, 6, confidence=1.25),
        "bad_timestamp": line(s, 7, createdAt="2026-11-01T00:30:00"),
        "bad_id": line(s, 8, decisionId="000008"),
        "invalid_text": line(s, 9, channelId="sl\u0000ack"),
    }
    valid = [line(s, 100 + i) for i in range(200)]
    lines = [*valid[:100], *bad.values(), line(s, 100), *valid[100:], line(s, 400)[:25]]  # + duplicate, cut line
    path = write(tmp_path, s, lines, trailing_newline=False)

    result = land(tmp_path, url=warehouse)
    f = one(result)
    assert f.quarantined_by_reason == {reason: 1 for reason in REASONS}
    assert (f.lines, f.loaded, f.duplicates, f.quarantined) == (211, 200, 1, 10)
    assert accounted(f) and f.status == "loaded" and result.ok
    assert result.totals.quarantined_by_reason == f.quarantined_by_reason

    stored = dict(wconn.execute(
        "select line_number, reason from raw.quarantine where source_file = %s", (rel(tmp_path, path),)
    ).fetchall())
    assert stored == {101 + i: reason for i, reason in enumerate(bad)} | {211: "truncated_line"}
    assert count(wconn, "select count(*) from raw.quarantine where message = ''") == 0
    assert count(wconn, "select count(*) from raw.router_decisions") == 200
    ledger_invariants_hold(wconn)


# Edge cases: line -> expected reason (None: it loads). Every accepted line must also be storable by
# PostgreSQL, which landing it proves.
S = "router_decisions"
EDGE_CASES = [
    (b"", "invalid_json"),
    (b"   \t", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'"a string"', "invalid_json"),
    (line(S, 1)[:-1] + b', "confidence": NaN}', "invalid_json"),
    (line(S, 2)[:-1] + b",}", "invalid_json"),
    (b"\xef\xbb\xbf" + line(S, 3), "invalid_json"),  # a BOM is not JSON
    (line(S, 4, decisionId=DROP), "missing_field"),
    (line(S, 5, reasonTags=None), "missing_field"),
    (line(S, 6, decisionId=DROP, confidence="x"), "missing_field"),  # first rule broken wins
    (line(S, 7, confidence="0.5"), "wrong_type"),
    (line(S, 8, latencyMs=1.5), "wrong_type"),
    (line(S, 9, reasonTags=["a", 1]), "wrong_type"),
    (line(S, 10, predictedTier=5), "wrong_type"),
    (line(S, 11, createdAt=20261101), "wrong_type"),
    (line(S, 12, confidence=True), "wrong_type"),
    (line(S, 13, predictedTier="T5", confidence=2), "bad_enum"),
    (line(S, 14, confidence=-0.1), "out_of_range"),
    (line(S, 15, latencyMs=-1), "out_of_range"),
    (line(S, 16, latencyMs=2**31), "out_of_range"),  # beyond the integer column
    (line(S, 17, confidence=0.5).replace(b"0.5", b"1e-400"), "out_of_range"),  # underflows a double
    (line(S, 18, confidence=0.5).replace(b"0.5", b"1e400"), "out_of_range"),
    (line(S, 19)[:-1] + b', "extra": 1e999999}', "out_of_range"),  # beyond jsonb's numeric
    (line(S, 20, createdAt="2026-11-01 00:30:00"), "bad_timestamp"),
    (line(S, 21, createdAt="2026-02-30T00:30:00Z"), "bad_timestamp"),
    (line(S, 22, createdAt="yesterday"), "bad_timestamp"),
    (line(S, 23, createdAt="2026-11-01T00:30:00+16:00"), "bad_timestamp"),  # PostgreSQL refuses it
    (line(S, 24, createdAt="01/11/2026 00:30"), "bad_timestamp"),
    (line(S, 25, decisionId=""), "bad_id"),
    (line(S, 26, decisionId="rd_"), "bad_id"),
    (line(S, 27, teamId=""), "bad_id"),
    (line(S, 28, conversationId="a\u0000b"), "invalid_text"),
    (line(S, 29)[:-1] + b', "extra": {"note": "x\\u0000y"}}', "invalid_text"),
    (line(S, 30)[:-1] + b', "a\\u0000b": 1}', "invalid_text"),  # in a key
    (line(S, 31)[:-1] + b', "extra": "\\ud800"}', "invalid_text"),  # unpaired surrogate
    (line(S, 32, channelId="x").replace(b'"x"', b'"\xff\xfe"'), "not_utf8"),
    # accepted
    (line(S, 40, confidence=0.5).replace(b"0.5", b"5e-324"), None),  # smallest double
    (line(S, 41, confidence=0), None),
    (line(S, 42, confidence=0.5).replace(b"0.5", b"0.0e5"), None),
    (line(S, 43, latencyMs=2**31 - 1), None),
    (line(S, 44)[:-1] + b', "extra": 1e400}', None),  # jsonb keeps numbers a double cannot hold
    (line(S, 45, createdAt="2026-11-01T02:30:00+02:00"), None),
    (line(S, 46, createdAt="2026-11-01T00:30:00+15:59"), None),
    (line(S, 47, createdAt="2026-11-01 00:30:00Z"), None),
    (line(S, 48, createdAt="2026-11-01t00:30:00.123456789z"), None),
    (line(S, 49, conversationId="caf\u00e9 \U0001f600 \\ \" \t"), None),
    (json.dumps(record(S, 50, conversationId="caf\u00e9 \U0001f600")).encode(), None),  # \u escapes
    (line(S, 51) + b"\r", None),  # CRLF line end
    (line(S, 52).replace(b", ", b",\t"), None),  # tabs between tokens
    (line(S, 53, conversationId="x\u0000y").replace(b"x\\u0000y", b"x\\\\u0000y"), None),  # backslash, not NUL
    (line(S, 54, extra={"nested": [1, {"deep": None}]}), None),  # unknown fields are kept
    (line(S, 55, conversationId=None, agentId=DROP, reasonTags=[]), None),
    (line(S, 56)[:-1] + b', "decisionId": "rd_000057"}', None),  # repeated JSON key: the last one counts
]


def test_edge_cases_get_their_reason_and_accepted_lines_store(tmp_path, warehouse, wconn):
    path = write(tmp_path, S, [data for data, _ in EDGE_CASES])
    f = one(land(tmp_path, url=warehouse))
    assert accounted(f) and f.duplicates == 0

    stored = dict(wconn.execute(
        "select line_number, reason from raw.quarantine where source_file = %s", (rel(tmp_path, path),)
    ).fetchall())
    expected = {n: reason for n, (_, reason) in enumerate(EDGE_CASES, 1) if reason}
    assert stored == expected
    loaded = {n for (n,) in wconn.execute("select _line_number from raw.router_decisions").fetchall()}
    assert loaded == {n for n, (_, reason) in enumerate(EDGE_CASES, 1) if reason is None}
    assert wconn.execute(
        "select decision_id from raw.router_decisions where _line_number = %s", (len(EDGE_CASES),)
    ).fetchone() == ("rd_000057",)


@pytest.mark.parametrize(
    ("stream", "overrides", "reason"),
    [
        ("router_feedback", {"needsReview": "yes"}, "wrong_type"),
        ("router_feedback", {"needsReview": None}, "missing_field"),
        ("router_feedback", {"source": "survey"}, "bad_enum"),
        ("router_feedback", {"latencyFromDecisionSec": -12.5}, "out_of_range"),
        ("router_feedback", {"feedbackId": "fb_1"}, "bad_id"),
        ("router_review_queue", {"severity": "critical"}, "bad_enum"),
        ("router_review_queue", {"updatedAt": "2026-11-01"}, "bad_timestamp"),
        ("decision_outcomes", {"outcomePositive": "yes"}, "wrong_type"),
        ("decision_outcomes", {"decisionId": ""}, "bad_id"),
        ("sla_outcomes", {"tier": 2}, "wrong_type"),
        ("sla_outcomes", {"resolvedAt": "soon"}, "bad_timestamp"),
        ("csat_ratings", {"rating": 4.0}, "wrong_type"),
        ("csat_ratings", {"rating": 6}, "out_of_range"),
        ("csat_ratings", {"customerId": None}, "missing_field"),
    ],
)
def test_every_stream_applies_its_own_rules(tmp_path, warehouse, stream, overrides, reason):
    write(tmp_path, stream, [line(stream, 1), line(stream, 2, **overrides)])
    f = one(land(tmp_path, url=warehouse))
    assert (f.loaded, f.quarantined_by_reason) == (1, {reason: 1})


def test_quarantine_keeps_the_exact_bytes_even_when_not_utf8(tmp_path, warehouse, wconn):
    latin1 = line(S, 1, channelId="@").replace(b'"@"', b'"caf\xe9 \xff\xfe"')
    cut = "na\u00efve".encode()[:3]  # ends inside a two-byte character
    with_cr = b'{"broken": \r'
    path = write(tmp_path, S, [latin1, with_cr, line(S, 2), b'{"decisionId": "' + cut], trailing_newline=False)
    f = one(land(tmp_path, url=warehouse))
    assert f.quarantined_by_reason == {"not_utf8": 1, "invalid_json": 1, "truncated_line": 1}
    rows = dict(wconn.execute(
        "select line_number, raw_bytes from raw.quarantine where source_file = %s", (rel(tmp_path, path),)
    ).fetchall())
    assert rows == {1: latin1, 2: with_cr, 4: b'{"decisionId": "' + cut}


# --------------------------------------------------------------------------- files


def test_gzip_files_land_like_plain_ones(tmp_path, warehouse, wconn):
    lines = [line(S, i) for i in range(50)] + [b"not json"]
    write(tmp_path, S, lines, name="part-0000.jsonl.gz")
    write(tmp_path, S, [line(S, i) for i in range(50, 60)], name="part-0001.jsonl")
    result = land(tmp_path, url=warehouse)
    gz = next(f for f in result.files if f.path.endswith(".gz"))
    assert (gz.lines, gz.loaded, gz.quarantined, gz.status) == (51, 50, 1, "loaded")
    assert count(wconn, "select count(*) from raw.router_decisions") == 60
    # the ledger's sha256 and size are those of the bytes on disk (compressed)
    path = tmp_path / gz.path
    size, sha = wconn.execute("select size, sha256 from raw.landed_files where path = %s", (gz.path,)).fetchone()
    assert size == path.stat().st_size and len(sha) == 64


def test_an_empty_file_lands_with_zero_lines(tmp_path, warehouse, wconn):
    write(tmp_path, S, [])
    f = one(land(tmp_path, url=warehouse))
    assert (f.lines, f.loaded, f.status) == (0, 0, "loaded")
    assert wconn.execute("select lines, status from raw.landed_files").fetchall() == [(0, "loaded")]


def test_a_valid_last_line_without_newline_loads(tmp_path, warehouse):
    write(tmp_path, S, [line(S, 1), line(S, 2)], trailing_newline=False)
    f = one(land(tmp_path, url=warehouse))
    assert (f.lines, f.loaded, f.quarantined) == (2, 2, 0)


def test_landing_again_is_a_no_op(tmp_path, warehouse, wconn):
    write(tmp_path, S, [line(S, i) for i in range(20)] + [b"bad"])
    first = land(tmp_path, url=warehouse)
    before = wconn.execute(
        "select (select count(*) from raw.router_decisions), (select count(*) from raw.quarantine), "
        "(select count(*) from raw.landed_files)"
    ).fetchone()
    second = land(tmp_path, url=warehouse)
    after = wconn.execute(
        "select (select count(*) from raw.router_decisions), (select count(*) from raw.quarantine), "
        "(select count(*) from raw.landed_files)"
    ).fetchone()
    assert before == after == (20, 1, 1)
    assert one(first).status == "loaded"
    f = one(second)
    assert (f.status, f.lines, f.loaded, f.previous_status) == ("skipped", 0, 0, "loaded")
    assert second.ok and second.totals.by_status == {"skipped": 1}


def test_a_changed_file_is_refused_and_the_refusal_recorded(tmp_path, warehouse, wconn):
    path = write(tmp_path, S, [line(S, i) for i in range(10)])
    assert land(tmp_path, url=warehouse).ok
    path.write_bytes(path.read_bytes() + line(S, 99) + b"\n")

    result = land(tmp_path, url=warehouse)
    f = one(result)
    assert not result.ok and f.status == "refused_changed"
    assert "changed" in f.message and rel(tmp_path, path) in result.error
    assert count(wconn, "select count(*) from raw.router_decisions") == 10  # nothing of the new bytes
    ledger = wconn.execute("select status, lines from raw.landed_files order by file_id").fetchall()
    assert ledger == [("loaded", 10), ("refused_changed", 0)]

    with pytest.raises(LandingFailed, match="refused_changed") as failure:
        land_or_raise(tmp_path, url=warehouse)
    assert failure.value.result.files[0].status == "refused_changed"
    assert count(wconn, "select count(*) from raw.landed_files where status = 'refused_changed'") == 2


def test_unreadable_gzip_lands_nothing_and_is_retried(tmp_path, warehouse, wconn):
    path = write(tmp_path, S, [line(S, i) for i in range(2000)], name="part-0000.jsonl.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short: gzip cannot finish
    result = land(tmp_path, url=warehouse)
    assert not result.ok and one(result).status == "failed_unreadable"
    assert count(wconn, "select count(*) from raw.router_decisions") == 0
    assert count(wconn, "select count(*) from raw.quarantine") == 0

    path.write_bytes(data)  # redelivered whole: the next run lands it
    again = land(tmp_path, url=warehouse)
    assert again.ok and one(again).loaded == 2000


def test_files_outside_the_layout_are_reported_not_landed(tmp_path, warehouse):
    write(tmp_path, S, [line(S, 1)])
    (tmp_path / S / "dt=2026-11-01" / "hr=00" / "notes.txt").write_text("hello")
    (tmp_path / S / "dt=2026-11-01" / "hr=00" / ".part-0001.jsonl.tmp").write_text("in progress")
    (tmp_path / S / "dt=2026-11-01" / "hr=24").mkdir()
    (tmp_path / S / "2026-11-01").mkdir()
    result = land(tmp_path, url=warehouse)
    assert result.ok and len(result.files) == 1
    assert sorted(i.path for i in result.ignored) == [
        f"{S}/2026-11-01", f"{S}/dt=2026-11-01/hr=00/.part-0001.jsonl.tmp", f"{S}/dt=2026-11-01/hr=00/notes.txt",
        f"{S}/dt=2026-11-01/hr=24",
    ]  # hidden files too: nothing is skipped silently


def test_memory_stays_bounded_whatever_the_file_size(tmp_path, warehouse, setting):
    import tracemalloc

    setting("land_batch_rows", 2000)
    path = write(tmp_path, S, [line(S, i) for i in range(80_000)])
    assert path.stat().st_size > 40 * 2**20
    tracemalloc.start()
    try:
        f = one(land(tmp_path, url=warehouse))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f.loaded == 80_000
    # a read chunk, one batch of rows and the COPY writer's bounded queue: far less than the file
    assert peak < 32 * 2**20, f"peak Python allocations {peak / 2**20:.0f} MB"


# --------------------------------------------------------------------------- duplicates


def test_a_repeated_key_loads_once_and_the_first_line_wins(tmp_path, warehouse, wconn):
    """A re-delivery (the same record) is a duplicate; the same key with other content is a conflict
    (issue 15: it was counted as a duplicate before): quarantined, and the first line still wins."""
    first = write(tmp_path, S, [line(S, 1, channelId="first"), line(S, 2), line(S, 1, channelId="second"),
                                line(S, 2)])
    later = write(tmp_path, S, [line(S, 1, channelId="third"), line(S, 3), line(S, 1, channelId="first")],
                  hour=HOUR + timedelta(hours=1))
    result = land(tmp_path, url=warehouse)
    assert [(f.loaded, f.duplicates, f.conflicts, f.quarantined) for f in result.files] == [
        (2, 1, 1, 1), (1, 1, 1, 1)]
    assert all(accounted(f) for f in result.files)
    assert wconn.execute(
        "select channel_id, _source_file, _line_number from raw.router_decisions where decision_id = 'rd_000001'"
    ).fetchall() == [("first", rel(tmp_path, first), 1)]
    quarantined = wconn.execute(
        "select source_file, line_number, reason, message, raw_bytes from raw.quarantine order by quarantine_id"
    ).fetchall()
    assert [(path, n, reason) for path, n, reason, _, _ in quarantined] == [
        (rel(tmp_path, first), 3, "conflicting_duplicate"), (rel(tmp_path, later), 1, "conflicting_duplicate")]
    assert bytes(quarantined[1][4]) == line(S, 1, channelId="third")
    assert f"rd_000001 is already landed with different content, as line 1 of {rel(tmp_path, first)}" \
        in quarantined[1][3]
    assert wconn.execute("select conflicts from raw.landed_files order by file_id").fetchall() == [(1,), (1,)]
    ledger_invariants_hold(wconn)


def test_the_same_record_spelled_differently_is_a_re_delivery(tmp_path, warehouse):
    """Contract fields compare as stored (instants, numbers), extra fields as JSON: order and spacing
    never matter; a different extra field does."""
    original = record(S, 1, confidence=0.5, extra={"a": 1, "b": [1, 2]})
    respelled = {key: original[key] for key in reversed(original)}
    respelled.update(createdAt="2026-11-01T01:30:00.000+01:00", confidence=0.50, extra={"b": [1, 2], "a": 1.0})
    other_extra = dict(original, extra={"a": 2, "b": [1, 2]})
    write(tmp_path, S, [json.dumps(original).encode(), json.dumps(respelled, indent=None, separators=(" ,", " : "))
                        .encode(), json.dumps(other_extra).encode()])
    f = one(land(tmp_path, url=warehouse))
    assert (f.loaded, f.duplicates, f.conflicts) == (1, 1, 1)


def test_conflicts_count_toward_the_bad_line_limit(tmp_path, warehouse, wconn):
    write(tmp_path, S, [line(S, i) for i in range(20)])
    write(tmp_path, S, [line(S, i, channelId="changed") if i < 3 else line(S, i) for i in range(20)],
          hour=HOUR + timedelta(hours=1))
    result = land(tmp_path, url=warehouse)
    second = result.files[1]
    assert (second.status, second.loaded, second.duplicates, second.conflicts) == ("failed_bad_lines", 0, 17, 3)
    assert not result.ok and result.totals.conflicts == 3
    assert "3 conflicting_duplicate" in second.message


def test_a_newer_state_is_not_a_conflict_but_the_same_state_changed_is(tmp_path, warehouse):
    stream = "router_review_queue"
    write(tmp_path, stream, [
        line(stream, 1, updatedAt="2026-11-01T00:30:00Z", status="open", resolvedAt=None),
        line(stream, 1, updatedAt="2026-11-01T00:45:00Z", status="resolved",
             resolvedAt="2026-11-01T00:45:00Z"),  # a newer state: its own key
        line(stream, 1, updatedAt="2026-11-01T00:30:00Z", status="resolved",
             resolvedAt="2026-11-01T00:30:00Z"),  # the same state rewritten: a conflict
    ])
    f = one(land(tmp_path, url=warehouse))
    assert (f.loaded, f.duplicates, f.conflicts) == (2, 0, 1)


def test_composite_keys_compare_timestamps_as_instants(tmp_path, warehouse, wconn):
    stream = "router_review_queue"
    lines = [
        line(stream, 1, updatedAt="2026-11-01T00:30:00Z"),
        line(stream, 1, updatedAt="2026-11-01T01:30:00+01:00"),  # the same instant: the same state
        line(stream, 1, updatedAt="2026-11-01T00:45:00Z"),  # a later state of the same item
    ]
    write(tmp_path, stream, lines)
    f = one(land(tmp_path, url=warehouse))
    assert (f.loaded, f.duplicates) == (2, 1)


@pytest.mark.parametrize("workers", [1, 3])
def test_parallel_files_keep_the_first_landed_copy_in_file_order(tmp_path, warehouse, wconn, setting, workers):
    setting("land_workers", workers)
    for h in range(6):  # every file repeats keys of every earlier file, with its own content: conflicts
        write(tmp_path, S, [line(S, i, channelId=f"h{h}") for i in range(h * 10, h * 10 + 30)],
              hour=HOUR + timedelta(hours=h))
    result = land(tmp_path, url=warehouse)
    assert [f.loaded for f in result.files] == [30, 10, 10, 10, 10, 10]
    assert [(f.duplicates, f.conflicts) for f in result.files] == [(0, 0)] + [(0, 20)] * 5
    owners = dict(wconn.execute("select decision_id, channel_id from raw.router_decisions").fetchall())
    assert all(owners[f"rd_{i:06d}"] == f"h{max(0, i // 10 - 2)}" for i in range(80))
    ledger_invariants_hold(wconn)


def test_concurrent_landings_of_the_same_zone_land_each_file_once(tmp_path, warehouse, wconn):
    for h in range(4):
        write(tmp_path, S, [line(S, h * 1000 + i) for i in range(300)] + [line(S, 0)],
              hour=HOUR + timedelta(hours=h))
    results: list[LandingResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(land(tmp_path, url=warehouse))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    statuses = Counter(f.status for r in results for f in r.files)
    assert statuses == {"loaded": 4, "skipped": 8}
    assert count(wconn, "select count(*) from raw.router_decisions") == 4 * 300
    assert sum(r.totals.duplicates for r in results) == 4  # rd_000000: once more in every file
    assert count(wconn, "select count(*) from raw.landed_files") == 4
    ledger_invariants_hold(wconn)


# --------------------------------------------------------------------------- failures leave nothing behind


@pytest.mark.parametrize("point", ["batch", "deduped", "inserted"])
def test_an_error_mid_file_leaves_nothing_of_it_and_a_rerun_completes(
    tmp_path, warehouse, wconn, setting, monkeypatch, point
):
    setting("land_batch_rows", 5)
    done = write(tmp_path, S, [line(S, i) for i in range(10)])
    broken = write(tmp_path, S, [line(S, 100 + i) for i in range(40)] + [b"bad"] * 2,
                   hour=HOUR + timedelta(hours=1))

    def explode(at: str, file, lines_read: int) -> None:
        if at == point and file.relative == rel(tmp_path, broken) and lines_read >= 20:
            raise RuntimeError("injected failure")

    monkeypatch.setattr(steps, "_fault_hook", explode)
    with pytest.raises(RuntimeError, match="injected failure"):
        land(tmp_path, url=warehouse)

    source = rel(tmp_path, broken)
    assert count(wconn, "select count(*) from raw.router_decisions where _source_file = %s", source) == 0
    assert count(wconn, "select count(*) from raw.router_decisions_keys where _line_number > 10") == 0
    assert count(wconn, "select count(*) from raw.quarantine where source_file = %s", source) == 0
    assert count(wconn, "select count(*) from raw.landed_files where path = %s", source) == 0
    assert count(wconn, "select count(*) from raw.router_decisions where _source_file = %s",
                 rel(tmp_path, done)) == 10  # the file before it committed on its own
    assert count(wconn, "select count(*) from pg_locks where locktype = 'advisory' and database = "
                        "(select oid from pg_database where datname = current_database())") == 0

    monkeypatch.setattr(steps, "_fault_hook", None)
    result = land(tmp_path, url=warehouse)
    assert [f.status for f in result.files] == ["skipped", "loaded"]
    assert (result.files[1].loaded, result.files[1].quarantined) == (40, 2)
    ledger_invariants_hold(wconn)


def test_a_line_postgresql_refuses_despite_validation_is_quarantined_and_the_rest_lands(
    tmp_path, warehouse, wconn, monkeypatch
):
    """The safety net under the validator: were it to pass a line jsonb refuses, that line alone is
    quarantined as rejected_by_database with PostgreSQL's message, and the file's other lines land."""
    write(tmp_path, S, [line(S, i) for i in range(3000)] + [b"{not json"] + [line(S, 5000 + i) for i in range(10)])
    monkeypatch.setattr(validation.Validator, "classify", lambda self, line, last_without_newline=False: None)
    f = one(land(tmp_path, url=warehouse))
    assert (f.status, f.loaded, f.quarantined_by_reason) == ("loaded", 3010, {"rejected_by_database": 1})
    raw_bytes, message = wconn.execute("select raw_bytes, message from raw.quarantine").fetchone()
    assert bytes(raw_bytes) == b"{not json" and "invalid input syntax for type json" in message
    ledger_invariants_hold(wconn)
    monkeypatch.undo()
    assert one(land(tmp_path, url=warehouse)).status == "skipped"


KILLED_CHILD = """
import sys, time
from pathlib import Path
from routerloop.landing import land, steps

def hang(point, file, lines_read):
    if point == "inserted":
        Path(sys.argv[3]).write_text("inserted")
        time.sleep(600)

steps._fault_hook = hang
land(Path(sys.argv[1]), url=sys.argv[2])
"""


def test_a_killed_landing_leaves_nothing_and_a_rerun_completes(tmp_path, warehouse, wconn):
    landing, signal_file = tmp_path / "landing", tmp_path / "signal"
    write(landing, S, [line(S, i) for i in range(500)] + [b"oops"])
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED_CHILD), str(landing), warehouse,
                              str(signal_file)])
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert child.poll() is None, "the landing process ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # rows are inserted but not committed: kill the process the hard way
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)

    result = land(landing, url=warehouse)  # waits for the server to roll the dead session back
    f = one(result)
    assert (f.status, f.loaded, f.quarantined) == ("loaded", 500, 1)
    assert count(wconn, "select count(*) from raw.landed_files") == 1
    ledger_invariants_hold(wconn)


# --------------------------------------------------------------------------- limits, windows, values


def test_over_the_bad_line_limit_the_file_lands_and_fails(tmp_path, warehouse, wconn):
    over = write(tmp_path, S, [line(S, i) for i in range(9)] + [b"bad"])  # 10 % bad
    under = write(tmp_path, S, [line(S, 100 + i) for i in range(99)] + [b"bad"], hour=HOUR + timedelta(hours=1))
    result = land(tmp_path, url=warehouse)
    by_path = {f.path: f for f in result.files}
    assert by_path[rel(tmp_path, over)].status == "failed_bad_lines"
    assert by_path[rel(tmp_path, under)].status == "loaded"
    assert not result.ok and "bad-line limit" in result.error
    # nothing is lost: the failing file's valid lines and its quarantine rows are committed
    assert count(wconn, "select count(*) from raw.router_decisions") == 9 + 99
    assert count(wconn, "select count(*) from raw.quarantine") == 2
    assert wconn.execute("select status from raw.landed_files order by path").fetchall() == [
        ("failed_bad_lines",), ("loaded",)
    ]
    # for Airflow tasks: the same outcome as an exception carrying the summary
    write(tmp_path, S, [b"bad"] * 2, hour=HOUR + timedelta(hours=2))
    with pytest.raises(LandingFailed, match="bad-line limit") as failure:
        land_or_raise(tmp_path, url=warehouse, start=HOUR + timedelta(hours=2))
    assert failure.value.result.files[0].quarantined == 2


def test_the_limit_is_a_setting(tmp_path, warehouse, setting):
    setting("bad_line_limit", 0.2)
    write(tmp_path, S, [line(S, i) for i in range(9)] + [b"bad"])
    assert land(tmp_path, url=warehouse).ok


def test_only_partitions_in_the_window_land(tmp_path, warehouse, wconn):
    for h in range(4):
        write(tmp_path, S, [line(S, h * 100 + i) for i in range(5)], hour=HOUR + timedelta(hours=h))
    result = land(tmp_path, url=warehouse, start=HOUR + timedelta(hours=1), end=HOUR + timedelta(hours=3))
    assert [f.partition_hour for f in result.files] == [HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)]
    hours = [h for (h,) in wconn.execute(
        "select distinct _partition_hour from raw.router_decisions order by 1").fetchall()]
    assert hours == [HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)]
    assert land(tmp_path, url=warehouse, start=HOUR, end=HOUR).files == []
    rest = land(tmp_path, url=warehouse)  # the whole zone: two new, two skipped
    assert Counter(f.status for f in rest.files) == {"loaded": 2, "skipped": 2}


def test_streams_filter_and_argument_checks(tmp_path, warehouse):
    write(tmp_path, S, [line(S, 1)])
    write(tmp_path, "csat_ratings", [line("csat_ratings", 1)])
    result = land(tmp_path, streams=["csat_ratings"], url=warehouse)
    assert [f.stream for f in result.files] == ["csat_ratings"]
    with pytest.raises(ValueError, match="unknown stream"):
        land(tmp_path, streams=["nope"], url=warehouse)
    with pytest.raises(ValueError, match="no timezone"):
        land(tmp_path, start=datetime(2026, 11, 1), url=warehouse)
    with pytest.raises(FileNotFoundError):
        land(tmp_path / "missing", url=warehouse)


def test_typed_columns_hold_the_contract_values(tmp_path, warehouse, wconn):
    lines = {
        "router_decisions": line(S, 1, createdAt="2026-11-01T02:30:00.250+02:00", confidence=1,
                                 reasonTags=["topic:billing", "vip \"customer\""], agentId=None,
                                 latencyMs=DROP, surprise={"kept": True}),
        "router_feedback": line("router_feedback", 1, needsReview=False, expectedTier=None),
        "router_review_queue": line("router_review_queue", 1, resolvedAt="2026-11-01T05:00:00-03:00"),
        "decision_outcomes": line("decision_outcomes", 1, outcomePositive=None, outcomeValue=0),
        "sla_outcomes": line("sla_outcomes", 1, resolvedAt=DROP),
        "csat_ratings": line("csat_ratings", 1, rating=5),
    }
    for stream, data in lines.items():
        write(tmp_path, stream, [data])
    assert land(tmp_path, url=warehouse).ok

    row = wconn.execute(
        "select created_at, confidence, reason_tags, agent_id, latency_ms, _raw, _source_file, "
        "_line_number, _partition_hour, _file_id, _loaded_at, pg_typeof(created_at)::text "
        "from raw.router_decisions"
    ).fetchone()
    assert row[0] == datetime(2026, 11, 1, 0, 30, 0, 250000, tzinfo=UTC)
    assert row[1] == 1.0 and row[2] == ["topic:billing", 'vip "customer"'] and row[3] is None and row[4] is None
    assert row[5]["surprise"] == {"kept": True} and row[5]["decisionId"] == "rd_000001"
    assert row[6] == f"{S}/dt=2026-11-01/hr=00/part-0000.jsonl" and row[7] == 1 and row[8] == HOUR
    assert row[9] is not None and row[10] is not None and row[11] == "timestamp with time zone"

    assert wconn.execute("select needs_review, expected_tier from raw.router_feedback").fetchone() == (False, None)
    assert wconn.execute("select resolved_at from raw.router_review_queue").fetchone() == (
        datetime(2026, 11, 1, 8, tzinfo=UTC),)
    assert wconn.execute("select outcome_positive, outcome_value from raw.decision_outcomes").fetchone() == (
        None, 0.0)
    assert wconn.execute("select resolved_at from raw.sla_outcomes").fetchone() == (None,)
    assert wconn.execute("select rating, pg_typeof(rating)::text from raw.csat_ratings").fetchone() == (
        5, "integer")
    # every contract field has its snake_case column, typed as the contract says
    for stream in STREAMS.values():
        columns = dict(wconn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = %s", (stream.name,)
        ).fetchall())
        for f in stream.fields:
            assert columns[f.column] == {"string": "text", "enum": "text", "timestamp": "timestamp with time zone",
                                         "number": "double precision", "integer": "integer",
                                         "boolean": "boolean", "string_array": "ARRAY"}[f.kind], f.column


def test_tables_are_partitioned_by_day_with_partitions_made_on_demand(tmp_path, warehouse, wconn):
    write(tmp_path, S, [line(S, 1)], hour=datetime(2026, 11, 1, 23, tzinfo=UTC))
    write(tmp_path, S, [line(S, 2)], hour=datetime(2026, 11, 2, 0, tzinfo=UTC))
    assert land(tmp_path, url=warehouse).ok
    partitions = [name for (name,) in wconn.execute(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'raw.router_decisions'::regclass order by 1"
    ).fetchall()]
    ahead = settings().raw_partitions_ahead_days
    expected = [f"router_decisions_p202611{d:02d}" for d in range(1, 3 + ahead)]
    assert partitions == expected
    assert wconn.execute(
        "select decision_id, tableoid::regclass::text from raw.router_decisions order by 1"
    ).fetchall() == [("rd_000001", "raw.router_decisions_p20261101"), ("rd_000002", "raw.router_decisions_p20261102")]
    strategy = wconn.execute(
        "select partstrat from pg_partitioned_table where partrelid = 'raw.router_decisions'::regclass"
    ).fetchone()
    assert strategy == ("r",)
    # the dedupe index: a primary key on the stream key
    assert wconn.execute(
        "select pg_get_indexdef(indexrelid) from pg_index where indrelid = 'raw.router_decisions_keys'::regclass "
        "and indisprimary"
    ).fetchone()[0].endswith("(decision_id)")


def test_schema_and_partition_creation_are_idempotent_under_concurrency(warehouse, wconn):
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with db.connect(warehouse, autocommit=True) as conn:
                migrate(conn)
                ensure_partitions(conn, S, {HOUR.date(), (HOUR + timedelta(days=1)).date()})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    migrate(wconn)  # and once more, when everything exists
    tables = {name for (name,) in wconn.execute(
        "select tablename from pg_tables where schemaname = 'raw'").fetchall()}
    assert {"landed_files", "quarantine", *STREAMS, *(f"{s}_keys" for s in STREAMS)} <= tables
    assert {"router_decisions_p20261101", "router_decisions_p20261102"} <= tables
    # a column the contract has but the table lacks (a field added later) is added, nullable
    wconn.execute("alter table raw.router_decisions drop column weights_version")
    migrate(wconn)
    assert wconn.execute(
        "select is_nullable from information_schema.columns where table_schema = 'raw' "
        "and table_name = 'router_decisions' and column_name = 'weights_version'"
    ).fetchone() == ("YES",)
    # the composite type the typed insert reads string arrays through: made again when a raw schema from
    # before it lacks it, and given an attribute it lacks
    arrays_type = "select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace " \
                  "where n.nspname = 'raw' and t.typname = 'router_decisions_arrays'"
    wconn.execute("drop type raw.router_decisions_arrays")
    migrate(wconn)
    assert wconn.execute(arrays_type).fetchone() == (1,)
    wconn.execute('alter type raw.router_decisions_arrays drop attribute "reasonTags"')
    migrate(wconn)
    assert wconn.execute(
        "select (jsonb_populate_record(null::raw.router_decisions_arrays, %s::jsonb)).\"reasonTags\"",
        ('{"reasonTags": ["a", "b \\"c\\""]}',),
    ).fetchone() == (["a", 'b "c"'],)


def test_cli_exit_code_follows_ok(tmp_path, warehouse, setting, capsys):
    setting("database_url", warehouse)
    write(tmp_path, S, [line(S, 1)])
    assert cli.main(["land", "--landing", str(tmp_path), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["loaded"] == 1
    write(tmp_path, S, [b"bad"] * 3, hour=HOUR + timedelta(hours=1))
    assert cli.main(["land", "--landing", str(tmp_path), "--start", "2026-11-01T01:00Z"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["files"][0]["status"] == "failed_bad_lines"
    assert "land:" in captured.err  # progress goes to stderr


# --------------------------------------------------------------------------- reconciliation


@pytest.fixture(scope="module")
def generated_zone(tmp_path_factory) -> Path:
    from routerloop.simulation import generate

    out = tmp_path_factory.mktemp("generated_bad")
    generate(out=out, start=HOUR, hours=12, seed=5, decisions_per_hour=120, bad_rate=0.05)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_a_generated_zone_reconciles_with_the_generator_manifest(generated_zone, warehouse, wconn, setting,
                                                                  workers):
    setting("land_workers", workers)
    manifest = json.loads((generated_zone / "_generator_manifest.json").read_text())
    result = land(generated_zone, url=warehouse)
    by_stream = result.totals.by_stream
    for stream in STREAMS:
        got = by_stream[stream]
        assert got.quarantined_by_reason == manifest["injected"][stream], stream
        assert got.duplicates == manifest["duplicates"][stream], stream
        assert got.lines == manifest["streams"][stream]["lines"], stream
        assert got.loaded == manifest["streams"][stream]["valid"] - manifest["duplicates"][stream], stream
        assert got.files == manifest["streams"][stream]["files"], stream
        quarantined = dict(wconn.execute(
            "select reason, count(*) from raw.quarantine where stream = %s group by reason", (stream,)
        ).fetchall())
        assert quarantined == manifest["injected"][stream], stream
        assert count(wconn, f"select count(*) from raw.{stream}") == got.loaded
    assert all(accounted(f) for f in result.files)
    empty = {f.path: f for f in result.files if f.path in set(manifest["empty_files"])}
    assert len(empty) == len(manifest["empty_files"]) and all(
        (f.lines, f.status) == (0, "loaded") for f in empty.values())
    ledger_invariants_hold(wconn)
