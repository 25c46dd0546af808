"""Hostile landing zones: no line or path stops a landing run, and every line is accounted for.

Each case builds a zone holding a clean file (another hour) and something hostile, lands it twice and
checks what must always hold: the run returns a JSON-able summary, every file's lines = loaded +
duplicates + quarantined, the tables agree with the ledger, nothing is lost (a landed file's lines
are all the lines on disk), the clean file lands, whatever was skipped is listed with a reason, and
the second run changes nothing.
"""

from __future__ import annotations

import json
import os
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import test_land
from test_land import HOUR, count, ledger_invariants_hold, line, record, write

from routerloop import cli, contract
from routerloop.landing import land

# test_land's fixtures: a fresh database per test, a connection to it, settings overrides.
warehouse, wconn, setting = test_land.warehouse, test_land.wconn, test_land.setting

S = "router_decisions"
GOOD_HOUR = HOUR + timedelta(hours=5)
HUGE_INT = "7" * 200_000
LONG_ONE = "1." + "0" * 20_000
TINY_ZERO = "0e-999999"


def raw_line(stream: str, i: int, **literals: str) -> bytes:
    """A valid line of `stream` with fields replaced (or added) by raw JSON literals, e.g. huge numbers."""
    values = record(stream, i)
    for name in literals:
        values.pop(name, None)
    text = json.dumps(values)[:-1]
    return (text + "".join(f', "{name}": {literal}' for name, literal in literals.items()) + "}").encode()


def random_id(prefix: str, length: int) -> str:
    rng = random.Random(length)
    return prefix + "".join(rng.choices(string.ascii_letters + string.digits, k=length - len(prefix)))


@dataclass
class Case:
    """Hostile lines among valid ones in one file; `reasons`: the quarantine reasons each hostile line may
    get (empty: it must load); `status`: the file's expected status."""

    hostile: list[bytes]
    reasons: set[str] = field(default_factory=set)
    stream: str = S
    status: str = "loaded"


def c(stream: str = S, reasons: set[str] | None = None, **literals: str) -> Case:
    return Case([raw_line(stream, 900, **literals)], reasons or set(), stream)


REJECTED = {"out_of_range", "rejected_by_database"}
ID_256 = random_id("rd_", contract.MAX_ID_LENGTH)
LINE_CASES = {
    # numbers jsonb refuses, in a contract field and in an unknown extra field
    "tiny zero in a contract field": c(reasons=REJECTED, confidence=TINY_ZERO),
    "1. and 20,000 zeros in a contract field": c(reasons=REJECTED, confidence=LONG_ONE),
    "200,000-digit integer in a contract field": c(reasons=REJECTED, latencyMs=HUGE_INT),
    "tiny zero in an extra field": c(reasons=REJECTED, extra=TINY_ZERO),
    "1. and 20,000 zeros in an extra field": c(reasons=REJECTED, extra=LONG_ONE),
    "200,000-digit integer in an extra field": c(reasons=REJECTED, extra=HUGE_INT),
    "negative tiny zero in an extra field": c(reasons=REJECTED, extra="-0.0e-999999"),
    "huge number nested in an extra object": c(reasons=REJECTED, extra=f'{{"deep": [1, {{"x": {HUGE_INT}}}]}}'),
    "scale one past numeric's limit": c(reasons=REJECTED, extra="1.0e-16383"),
    "exponent overflowing an int": c(reasons=REJECTED, extra="1e99999999999"),
    "tiny zero in outcomeValue": c("decision_outcomes", REJECTED, outcomeValue=TINY_ZERO),
    "1e400 in an extra field (numeric holds it)": c(extra="1e400"),
    "numeric's largest scale in an extra field": c(extra="0." + "0" * 16_382 + "1"),
    "a plain long zero in a contract field": c(confidence="0.000000000000000000000000000000000000000"),
    # ids longer than an index row (and the documented maximum)
    "10 kB decisionId": Case([line(S, 900, decisionId=random_id("rd_", 10_000))], {"bad_id"}),
    "10 kB ticketId": Case([line(S, 900, ticketId=random_id("tk_", 10_000))], {"bad_id"}),
    "decisionId one over the maximum": Case([line(S, 900, decisionId=ID_256 + "x")], {"bad_id"}),
    "decisionId at the maximum": Case([line(S, 900, decisionId=ID_256)]),
    "10 kB slaPolicy (a key string)": Case([line("sla_outcomes", 900, slaPolicy="p" * 10_000)], {"bad_id"},
                                         "sla_outcomes"),
    "10 kB reviewId": Case([line("router_review_queue", 900, reviewId="r" * 10_000)], {"bad_id"},
                           "router_review_queue"),
    # latencyMs: an integer column
    "latencyMs above its maximum": c(reasons={"out_of_range"}, latencyMs=str(contract.INT4_MAX + 1)),
    "latencyMs at its maximum": c(latencyMs=str(contract.INT4_MAX)),
    # text
    "1 MB string in a free-text field": Case([line(S, 900, ruleVersion="v" * 1_000_000)]),
    "10 kB channelId (an id)": Case([line(S, 900, channelId="c" * 10_000)], {"bad_id"}),
    "lone surrogate in an extra field": c(reasons={"invalid_text"}, extra='"\\udc00"'),
    "NUL in an extra key": Case([raw_line(S, 900)[:-1] + b', "a\\u0000b": 1}'], {"invalid_text"}),
    "CRLF line ending": Case([line(S, 900) + b"\r"]),
    "byte order mark": Case([b"\xef\xbb\xbf" + line(S, 900)], {"invalid_json"}),
    "deeply nested extra": Case([raw_line(S, 900, extra="[" * 100_000 + "]" * 100_000)],
                                {"invalid_json", "rejected_by_database"}),
    "blank and whitespace lines": Case([b"", b"   ", b"\t"], {"invalid_json"}),
    "a repeated hostile line": Case([raw_line(S, 900, extra=TINY_ZERO)] * 3, REJECTED),
    "every line hostile": Case([raw_line(S, 900 + i, extra=HUGE_INT) for i in range(3)], REJECTED),
}


def land_twice_and_check(root: Path, url: str) -> tuple:
    """Land `root` twice; check the invariants every case shares; the first run's result."""
    first = land(root, url=url)
    json.dumps(first.to_dict())  # the summary is JSON
    second = land(root, url=url)
    json.dumps(second.to_dict())
    return first, second


def check_accounting(root: Path, url: str, first, second, conn) -> None:
    for result in first.files:
        assert result.lines == result.loaded + result.duplicates + result.quarantined, result
        if result.status in ("loaded", "failed_bad_lines"):
            on_disk = root / result.path
            if on_disk.exists():  # (not a name with escaped bytes)
                assert result.lines == on_disk.read_bytes().count(b"\n"), result.path  # nothing lost
    ledger_invariants_hold(conn)
    good = [f for f in first.files if f.partition_hour == GOOD_HOUR]
    assert [(f.status, f.loaded) for f in good] == [("loaded", 20)]  # the other file lands
    for before, after in zip(first.files, second.files, strict=True):  # a rerun changes nothing
        assert after.status == ("skipped" if before.status in ("loaded", "failed_bad_lines") else before.status)
    assert [(i.path, i.reason) for i in first.ignored] == [(i.path, i.reason) for i in second.ignored]


def zone_with_good_file(root: Path) -> None:
    write(root, S, [line(S, 5000 + i) for i in range(20)], hour=GOOD_HOUR)


@pytest.mark.parametrize("case", list(LINE_CASES.values()), ids=list(LINE_CASES))
def test_a_hostile_line_never_stops_the_run(tmp_path, warehouse, wconn, case):
    zone_with_good_file(tmp_path)
    valid = [line(case.stream, i) for i in range(60)]
    write(tmp_path, case.stream, [*valid[:30], *case.hostile, *valid[30:]])
    first, second = land_twice_and_check(tmp_path, warehouse)
    check_accounting(tmp_path, warehouse, first, second, wconn)
    [hostile] = [f for f in first.files if f.stream == case.stream and f.partition_hour == HOUR]
    assert hostile.status == case.status, hostile
    if case.reasons:
        assert hostile.quarantined == len(case.hostile), hostile
        assert set(hostile.quarantined_by_reason) <= case.reasons, hostile
        stored = {bytes(b) for (b,) in wconn.execute("select raw_bytes from raw.quarantine").fetchall()}
        assert stored == set(case.hostile)  # the exact bytes
    else:
        assert (hostile.loaded, hostile.quarantined) == (60 + len(case.hostile), 0), hostile
    assert first.ok == (case.status == "loaded" and hostile.quarantined / hostile.lines <= 0.05)


def test_rejected_lines_keep_the_database_message(tmp_path, warehouse, wconn):
    """A line only PostgreSQL refuses: reason rejected_by_database, with PostgreSQL's message."""
    write(tmp_path, S, [line(S, i) for i in range(40)] + [raw_line(S, 900, confidence=LONG_ONE)])
    [result] = land(tmp_path, url=warehouse).files
    assert (result.loaded, result.quarantined) == (40, 1)
    reason, message = wconn.execute("select reason, message from raw.quarantine").fetchone()
    if reason == "rejected_by_database":
        assert "numeric" in message
    else:
        assert reason == "out_of_range"


def test_the_end_of_the_calendar_lands(tmp_path, warehouse, wconn):
    zone_with_good_file(tmp_path)
    last = datetime(9999, 12, 31, 23, tzinfo=UTC)
    write(tmp_path, S, [line(S, i) for i in range(10)], hour=last)
    first_hour = tmp_path / "csat_ratings" / "dt=0001-01-01" / "hr=00"  # (strftime does not pad year 1)
    first_hour.mkdir(parents=True)
    (first_hour / "part-0000.jsonl").write_bytes(b"".join(line("csat_ratings", i) + b"\n" for i in range(5)))
    first, second = land_twice_and_check(tmp_path, warehouse)
    check_accounting(tmp_path, warehouse, first, second, wconn)
    assert {(f.partition_hour.year, f.status, f.loaded) for f in first.files} == {
        (1, "loaded", 5), (2026, "loaded", 20), (9999, "loaded", 10)}
    assert count(wconn, "select count(*) from raw.router_decisions where _partition_hour = %s", last) == 10


def test_a_file_name_that_is_not_utf8_lands_under_an_escaped_name(tmp_path, warehouse, wconn):
    zone_with_good_file(tmp_path)
    folder = write(tmp_path, S, [line(S, i) for i in range(10)]).parent
    os.rename(folder / "part-0000.jsonl", os.fsencode(folder) + b"/caf\xe9-\xff.jsonl")
    first, second = land_twice_and_check(tmp_path, warehouse)
    check_accounting(tmp_path, warehouse, first, second, wconn)
    names = {f.path.rsplit("/", 1)[1]: f.loaded for f in first.files}
    assert names == {"caf\\xe9-\\xff.jsonl": 10, "part-0000.jsonl": 20}
    assert count(wconn, "select count(*) from raw.router_decisions where _source_file like %s", "%caf%") == 10


@pytest.mark.parametrize("kind", ["hidden file", "hidden folder", "symlink outside", "broken symlink",
                                  "symlinked folder outside"])
def test_skipped_paths_are_listed_with_a_reason(tmp_path, warehouse, wconn, kind):
    root = tmp_path / "zone"
    zone_with_good_file(root)
    outside = write(tmp_path / "elsewhere", S, [line(S, 700 + i) for i in range(5)])
    folder = root / S / "dt=2026-11-01" / "hr=00"
    folder.mkdir(parents=True)
    if kind == "hidden file":
        (folder / ".part-0001.jsonl").write_bytes(line(S, 1) + b"\n")
        skipped, why = folder / ".part-0001.jsonl", "hidden"
    elif kind == "hidden folder":
        (root / S / ".dt=2026-11-02").mkdir()
        skipped, why = root / S / ".dt=2026-11-02", "hidden"
    elif kind == "symlink outside":
        (folder / "linked.jsonl").symlink_to(outside)
        skipped, why = folder / "linked.jsonl", "outside the landing root"
    elif kind == "broken symlink":
        (folder / "gone.jsonl").symlink_to(tmp_path / "nothing.jsonl")
        skipped, why = folder / "gone.jsonl", "outside the landing root"
    else:
        (root / S / "dt=2026-11-03").symlink_to(outside.parent.parent)
        skipped, why = root / S / "dt=2026-11-03", "outside the landing root"
    first, second = land_twice_and_check(root, warehouse)
    check_accounting(root, warehouse, first, second, wconn)
    assert [(i.path, why in i.reason) for i in first.ignored] == [(skipped.relative_to(root).as_posix(), True)]
    assert count(wconn, "select count(*) from raw.router_decisions") == 20


def test_a_symlink_inside_the_root_lands(tmp_path, warehouse, wconn):
    zone_with_good_file(tmp_path)
    target = write(tmp_path, S, [line(S, i) for i in range(7)], hour=HOUR, name="real.jsonl")
    (target.parent / "alias.jsonl").symlink_to(target)
    first, second = land_twice_and_check(tmp_path, warehouse)
    check_accounting(tmp_path, warehouse, first, second, wconn)
    assert sorted((f.path.rsplit("/", 1)[1], f.loaded, f.duplicates) for f in first.files) == [
        ("alias.jsonl", 7, 0), ("part-0000.jsonl", 20, 0), ("real.jsonl", 0, 7)]
    assert first.ignored == []


def test_a_file_the_database_refuses_whole_is_recorded_and_the_run_goes_on(tmp_path, warehouse, wconn,
                                                                           monkeypatch):
    """A failure in the insert (after the careful staging passed) fails that file alone, in the ledger."""
    import psycopg

    from routerloop.landing import steps

    zone_with_good_file(tmp_path)
    bad = write(tmp_path, S, [line(S, i) for i in range(10)])

    def refuse(point, file, lines_read):
        if point == "inserted" and file.path == bad:
            raise psycopg.errors.DataError("injected refusal")

    monkeypatch.setattr(steps, "_fault_hook", refuse)
    first, second = land_twice_and_check(tmp_path, warehouse)
    check_accounting(tmp_path, warehouse, first, second, wconn)
    failed = [f for f in first.files if f.path.endswith("hr=00/part-0000.jsonl")][0]
    assert failed.status == "failed_rejected" and "injected refusal" in failed.message
    assert not first.ok and "failed_rejected" in first.error
    assert count(wconn, "select count(*) from raw.landed_files where status = 'failed_rejected'") == 2
    monkeypatch.setattr(steps, "_fault_hook", None)
    assert land(tmp_path, url=warehouse).ok  # retried by the next run


def test_the_cli_prints_a_summary_and_fails_for_a_hostile_zone(tmp_path, warehouse, setting, capsys):
    setting("database_url", warehouse)
    zone_with_good_file(tmp_path)
    for i, case in enumerate(LINE_CASES.values()):
        write(tmp_path, case.stream, [line(case.stream, 10 * i + j) for j in range(2)] + case.hostile,
              name=f"case-{i:03d}.jsonl")
    (tmp_path / S / ".hidden.jsonl").write_text("x")
    write(tmp_path, S, [line(S, 9000)], hour=datetime(9999, 12, 31, 23, tzinfo=UTC))
    assert cli.main(["land", "--landing", str(tmp_path), "--quiet"]) == 1  # files over the bad-line limit
    summary = json.loads(capsys.readouterr().out)
    totals = summary["totals"]
    assert totals["lines"] == totals["loaded"] + totals["duplicates"] + totals["quarantined"]
    assert totals["files"] == len(LINE_CASES) + 2
    assert [i["path"] for i in summary["ignored"]] == [f"{S}/.hidden.jsonl"]
    failed = sorted(f["path"] for f in summary["files"] if f["status"] != "loaded")
    # a rerun lands nothing new; the failed files stay failed until re-delivered or acknowledged
    assert cli.main(["land", "--landing", str(tmp_path), "--quiet"]) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["totals"]["by_status"] == {"skipped": len(LINE_CASES) + 2}
    assert sorted(f["path"] for f in again["open_failures"]) == failed
