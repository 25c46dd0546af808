"""The landing ledger, raw.landed_files: one row per landing of a file and per refusal.

- The ledger row is inserted first, in the file's transaction, with status `loading` (ON CONFLICT DO
  NOTHING: no look-up first, one round trip less per file); a partial unique index on its path makes a
  concurrent lander of the same file wait, then skip it. Landing a file again is a no-op (`skipped`).
- A file whose bytes (sha256) changed under a landed name is refused (`refused_changed`, recorded in
  its own transaction, `ok` False).
- A file whose quarantined share exceeds `bad_line_limit` still commits (its quarantine rows and its
  valid lines: nothing is lost, and the valid lines are as good as any others) but gets status
  `failed_bad_lines`, so the landing task fails and the broken producer is noticed. Landing it again
  is a no-op like any landed file; the raw gate keeps flagging its ledger row.
- A file that cannot be read (corrupt gzip, I/O error) lands nothing, is recorded as
  `failed_unreadable` and is retried by the next run; so is a file the database refuses even line by
  line (`failed_rejected`, see steps).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import NamedTuple

from routerloop.config import settings
from routerloop.landing.discovery import LandingFile
from routerloop.landing.reading import file_digest
from routerloop.landing.results import SKIPPED, FileResult
from routerloop.warehouse.raw import (
    FAILED_BAD_LINES,
    FAILED_REJECTED,
    FAILED_UNREADABLE,
    LANDED_STATUSES,
    LEDGER,
    LOADED,
    LOADING,
    REFUSED_CHANGED,
)


class AlreadyLanded(Exception):
    """The path has landed: before, or by a concurrent landing that committed while we waited on its row."""


class LandedRow(NamedTuple):
    file_id: int
    size: int
    sha256: str
    status: str
    finished_at: datetime | None  # None while that landing is still in progress


def landed_before(conn, file: LandingFile) -> LandedRow | None:
    """The ledger row of the file's landing, if its path has landed (or is landing right now)."""
    row = conn.execute(
        f"select file_id, size, sha256, status, finished_at from {LEDGER} "
        "where path = %s and status = any(%s) order by file_id desc limit 1",
        (file.relative, list(LANDED_STATUSES)),
    ).fetchone()
    return LandedRow(*row) if row else None


def _record(conn, file: LandingFile, status: str, size: int, sha256: str, message: str) -> int:
    """A ledger row of its own (own transaction) for a file that did not land: it survives."""
    with conn.transaction():
        return conn.execute(
            f"insert into {LEDGER} (path, stream, partition_hour, size, sha256, started_at, finished_at, "
            "status, message) values (%s, %s, %s, %s, %s, clock_timestamp(), clock_timestamp(), %s, %s) "
            "returning file_id",
            (file.relative, file.stream, file.partition_hour, size, sha256, status, message),
        ).fetchone()[0]


def compare_with_landed(conn, file: LandingFile, previous: LandedRow) -> FileResult:
    """Skip a file that landed before with the same bytes; refuse (and record) one whose bytes changed."""
    file_id, size, sha256, status, finished_at = previous
    try:
        now_size, now_sha256 = file_digest(file.path)
    except OSError as exc:  # removed or unreadable since: what landed stays as it was
        message = f"landed before as file {file_id}; cannot be read now to compare ({exc})"
        return FileResult.of(file, SKIPPED, file_id=file_id, previous_status=status, message=message)
    if (now_size, now_sha256) == (size, sha256):
        message = f"landed before as file {file_id} on {finished_at:%Y-%m-%d %H:%M:%S} UTC"
        return FileResult.of(file, SKIPPED, file_id=file_id, previous_status=status, message=message)
    message = (
        f"refused: the file changed since it landed as file {file_id} on {finished_at:%Y-%m-%d %H:%M:%S} UTC "
        f"(size {size} -> {now_size}, sha256 {sha256[:12]} -> {now_sha256[:12]}); landed files are never "
        "rewritten, deliver changes under a new name"
    )
    refused_id = _record(conn, file, REFUSED_CHANGED, now_size, now_sha256, message)
    return FileResult.of(file, REFUSED_CHANGED, file_id=refused_id, message=message)


def _record_failure(conn, file: LandingFile, status: str, message: str) -> FileResult:
    try:
        size, sha256 = file_digest(file.path)
    except OSError:
        size, sha256 = 0, ""
    file_id = _record(conn, file, status, size, sha256, message)
    return FileResult.of(file, status, file_id=file_id, message=message)


def record_unreadable(conn, file: LandingFile, error: Exception) -> FileResult:
    return _record_failure(conn, file, FAILED_UNREADABLE,
                           f"unreadable, nothing landed (retried by the next run): {error}")


def database_message(error: Exception) -> str:
    """PostgreSQL's message of an error (its SQLSTATE and primary text), kept short."""
    sqlstate = getattr(error, "sqlstate", None)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text if len(text) <= 500 else text[:497] + "..."
    return f"{sqlstate}: {text}" if sqlstate else text


def record_rejected(conn, file: LandingFile, error: Exception) -> FileResult:
    """A file the database refused even line by line: nothing landed, recorded, retried by the next run."""
    return _record_failure(conn, file, FAILED_REJECTED, "refused by the database, nothing landed (retried by "
                           f"the next run): {database_message(error)}")


def open_row(conn, file: LandingFile) -> int:
    """Insert the file's `loading` row in the current transaction; its file_id. Raises AlreadyLanded."""
    row = conn.execute(
        f"insert into {LEDGER} (path, stream, partition_hour, size, started_at, status) "
        "values (%s, %s, %s, 0, clock_timestamp(), %s) on conflict do nothing returning file_id",
        (file.relative, file.stream, file.partition_hour, LOADING),
    ).fetchone()
    if row is None:  # the partial unique index on path: a landed (or landing) row exists
        raise AlreadyLanded()
    return row[0]


def verdict(lines: int, reasons: Counter[str]) -> tuple[str, str | None]:
    """A landed file's final status (the bad-line limit), and a message when lines were quarantined."""
    limit = settings().bad_line_limit
    quarantined = sum(reasons.values())
    share = quarantined / lines if lines else 0.0
    status = FAILED_BAD_LINES if share > limit else LOADED
    message = None
    if quarantined:
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        message = f"{quarantined} of {lines} lines ({share:.1%}) quarantined: {detail}"
        if status == FAILED_BAD_LINES:
            message += (f"; over the bad-line limit of {limit:.1%}: its valid lines were "
                        "loaded, the landing fails so the producer gets fixed")
    return status, message


def close_row(conn, result: FileResult, size: int, sha256: str) -> None:
    """Give the file's `loading` row its counts and final status (committed with the file's rows)."""
    conn.execute(
        f"update {LEDGER} set size = %s, sha256 = %s, lines = %s, loaded = %s, duplicates = %s, "
        "quarantined = %s, conflicts = %s, finished_at = clock_timestamp(), status = %s, message = %s "
        "where file_id = %s",
        (size, sha256, result.lines, result.loaded, result.duplicates, result.quarantined, result.conflicts,
         result.status, result.message, result.file_id),
    )
