"""land(): discover the files of a window, make sure their tables and partitions exist, land each file,
and sum up.

PostgreSQL does ~20-24 us of the ~28 us of CPU per line (a durable server, hourly files), so
`land_workers` connections land files in parallel, one connection per worker thread. Their commits are
asynchronous, and the run ends with one synchronous commit (durability). Per stream, each file's dedupe
step waits for the previous file's (dedupe.Turn): that file was submitted earlier, so it is always
running or done, and no worker waits on a file that has not started.
"""

from __future__ import annotations

import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

from routerloop import contract, db
from routerloop.config import settings
from routerloop.landing.copy_writer import prepare_connection
from routerloop.landing.dedupe import Turn
from routerloop.landing.discovery import LandingFile, discover
from routerloop.landing.durability import commit_asynchronously, make_durable
from routerloop.landing.failures import open_failures
from routerloop.landing.results import SKIPPED, FileResult, LandingResult
from routerloop.landing.steps import land_file
from routerloop.warehouse.migrations import migrate
from routerloop.warehouse.raw import LOADED, ensure_partitions


class LandingFailed(RuntimeError):
    """Landing finished but not cleanly (bad-line limit exceeded, changed or unreadable files).

    `result` is the LandingResult land() returned; what landed stays landed. `retryable`: whether a
    later try may succeed (only unreadable files failed).
    """

    def __init__(self, result: LandingResult):
        self.result = result
        self.retryable = result.retryable
        super().__init__(result.error or "landing failed")


def _check_window(start: datetime | None, end: datetime | None) -> None:
    for name, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"{name} {moment.isoformat()} has no timezone")
    if start is not None and end is not None and end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")


def _stream_names(streams: list[str] | None) -> list[str]:
    if not streams:
        return list(contract.STREAMS)
    unknown = [s for s in streams if s not in contract.STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}; known: {', '.join(contract.STREAMS)}")
    return [s for s in contract.STREAMS if s in streams]  # contract order, no repeats


def _partition_days(files: list[LandingFile]) -> dict[str, set[date]]:
    """The day partitions each stream needs: its files' days, plus `raw_partitions_ahead_days`."""
    ahead = max(0, settings().raw_partitions_ahead_days)
    days: dict[str, set[date]] = {}
    for file in files:
        days.setdefault(file.stream, set()).add(file.partition_hour.date())
    for stream_days in days.values():
        newest = max(stream_days)
        ahead_here = min(ahead, (date.max - newest).days)  # dt=9999-12-31 has no days ahead
        stream_days.update(newest + timedelta(days=i) for i in range(1, ahead_here + 1))
    return days


def _say(message: str) -> None:
    print(f"land: {message}", file=sys.stderr, flush=True)


class _Progress:
    """Progress on stderr: about every 5 % of the files, and every file that did not land cleanly."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total
        self.every = max(1, total // 20)
        self.done = 0
        self.lines = 0
        self.lock = threading.Lock()

    def __call__(self, result: FileResult) -> None:
        if not self.enabled:
            return
        with self.lock:
            self.done += 1
            self.lines += result.lines
            if result.status not in (LOADED, SKIPPED):
                _say(f"{result.status}: {result.path}: {result.message}")
            if self.done % self.every == 0 or self.done == self.total:
                _say(f"{self.done}/{self.total} files, {self.lines:,} lines")


def _prepare(conn, run_id: str) -> None:
    prepare_connection(conn, run_id)
    commit_asynchronously(conn)  # until make_durable() at the end of the run (durability)


def _land_all(conn, url: str, files: list[LandingFile], progress: _Progress) -> list[FileResult]:
    workers = max(1, min(settings().land_workers, len(files)))
    run_id = str(uuid.uuid4())
    if workers == 1:
        _prepare(conn, run_id)
        results = []
        for file in files:
            results.append(land_file(conn, file))
            progress(results[-1])
        return results
    return _land_in_parallel(url, files, progress, workers, run_id)


def _land_in_parallel(
    url: str, files: list[LandingFile], progress: _Progress, workers: int, run_id: str
) -> list[FileResult]:
    turns: list[Turn] = []
    last_of_stream: dict[str, Turn] = {}
    for file in files:
        previous = last_of_stream.get(file.stream)
        turns.append(Turn(previous.finished if previous else None))
        last_of_stream[file.stream] = turns[-1]

    local = threading.local()
    connections = []
    connections_lock = threading.Lock()

    def work(index: int) -> FileResult:
        if not hasattr(local, "conn"):
            local.conn = db.connect(url, autocommit=True)
            with connections_lock:
                connections.append(local.conn)
            _prepare(local.conn, run_id)
        result = land_file(local.conn, files[index], turns[index])
        progress(result)
        return result

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="routerloop-land")
    try:
        futures = [executor.submit(work, i) for i in range(len(files))]
        return [future.result() for future in futures]
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        for turn in turns:  # release files waiting for a failed predecessor, so workers can finish
            turn.done()
        raise
    finally:
        executor.shutdown(wait=True)
        for connection in connections:
            connection.close()


def land(
    landing: Path,
    streams: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: bool = False,
    url: str | None = None,
) -> LandingResult:
    """Land every partition of `streams` (default: all) whose hour lies in [start, end) into schema raw.

    `ok` is False while a file of the window is failed in the ledger (it exceeded the bad-line limit,
    changed after landing, could not be read or was refused by the database, in this run or an
    earlier one) and was neither re-delivered nor acknowledged (routerloop.landing.failures);
    everything else that could land has landed. Database errors (and anything unexpected)
    raise: the file in progress rolls back whole.
    """
    landing = Path(landing)
    names = _stream_names(streams)
    _check_window(start, end)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing zone {landing} does not exist or is not a folder")
    files, ignored = discover(landing, names, start, end)
    url = url or db.database_url()
    report = _Progress(progress, len(files))
    if progress:
        window = f"[{start.isoformat() if start else '-inf'}, {end.isoformat() if end else '+inf'})"
        _say(f"{len(files)} files of {', '.join(names)} in {window} from {landing}")
        for item in ignored:
            _say(f"ignored {item.path}: {item.reason}")

    with db.connect(url, autocommit=True) as conn:
        migrate(conn)
        for stream, days in _partition_days(files).items():
            ensure_partitions(conn, stream, days)
        results = _land_all(conn, url, files, report)
        make_durable(conn, [r.file_id for r in results if r.status != SKIPPED])
        failures = open_failures(conn, names, start, end)
    return LandingResult.of(results, ignored, failures)


def land_or_raise(*args, **kwargs) -> LandingResult:
    """land(...), raising LandingFailed (with the result) when it is not ok: what Airflow tasks call."""
    result = land(*args, **kwargs)
    if not result.ok:
        raise LandingFailed(result)
    return result
