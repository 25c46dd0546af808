"""Landing one file, in one transaction: stage -> dedupe -> insert -> finalize.

Its ledger row, its quarantine rows and its raw rows commit together or not at all, so a crash or kill
mid-file leaves nothing behind and a rerun lands it whole. Every line is accounted for: lines = loaded
+ duplicates + quarantined.

When PostgreSQL refuses something the validator passed (a jsonb number it cannot hold, a cast), the
file's transaction rolls back and the file is landed again carefully: its lines are staged batch by
batch in savepoints, each batch's typed values checked, and a refused batch is bisected down to the
lines PostgreSQL refuses, which are quarantined as `rejected_by_database` with its message. Only
that error path pays for it. A file the database still refuses gets a `failed_rejected` ledger row
and the run goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from routerloop.config import settings
from routerloop.landing import conflicts, ledger
from routerloop.landing.copy_writer import SEND_ROWS, Stage, stage_row_head
from routerloop.landing.dedupe import StreamLock, Turn, insert_new_keys, release_sql
from routerloop.landing.discovery import LandingFile
from routerloop.landing.insert import insert_sql, typed_probe_sql
from routerloop.landing.quarantine import QuarantineBuffer
from routerloop.landing.reading import LineReader, Unreadable
from routerloop.landing.results import FileResult
from routerloop.landing.validation import validator
from routerloop.warehouse.raw import partition_name

# Test hook: called as _fault_hook(point, file, lines_read) at "batch" (after each COPY batch was
# handed to PostgreSQL), "deduped" (keys inserted, stream lock held) and "inserted" (raw rows inserted,
# ledger not yet updated, nothing committed).
# Tests raise from it to prove a failure mid-file leaves nothing behind. None in production.
_fault_hook: Callable[[str, LandingFile, int], None] | None = None


def _fault_point(point: str, file: LandingFile, lines_read: int) -> None:
    if _fault_hook is not None:
        _fault_hook(point, file, lines_read)


@dataclass(frozen=True)
class _Staged:
    """A file read to the end: its lines staged or quarantined."""

    lines: int
    staged_rows: int  # valid lines, sent to the staging table
    reasons: Counter[str]  # quarantined lines by reason
    size: int
    sha256: str


def land_file(conn, file: LandingFile, turn: Turn | None = None) -> FileResult:
    """Land one file on `conn` (autocommit, prepared by copy_writer.prepare_connection)."""
    import psycopg

    turn = turn or Turn()
    try:
        try:
            return _land_or_record(conn, file, turn, careful=False)
        except psycopg.Error:
            if conn.broken:
                raise
        try:  # refused by the database: again, line by line where it must
            return _land_or_record(conn, file, turn, careful=True)
        except psycopg.Error as exc:
            if conn.broken:
                raise
            return ledger.record_rejected(conn, file, exc)
    except Exception as exc:
        exc.add_note(f"while landing {file.relative}")
        raise
    finally:
        turn.done()


def _land_or_record(conn, file: LandingFile, turn: Turn, careful: bool) -> FileResult:
    try:
        return _land_new_file(conn, file, turn, careful)
    except ledger.AlreadyLanded:  # skipped, or refused if its bytes changed
        return ledger.compare_with_landed(conn, file, ledger.landed_before(conn, file))
    except Unreadable as exc:
        return ledger.record_unreadable(conn, file, exc)


def _land_new_file(conn, file: LandingFile, turn: Turn, careful: bool = False) -> FileResult:
    with StreamLock(conn, file.stream) as lock, conn.transaction():
        landing = _NewFile(conn, file, file_id=ledger.open_row(conn, file))
        staged = landing.stage_carefully() if careful else landing.stage()
        new_keys = landing.dedupe(staged, turn, lock)
        every_line_is_new = new_keys == staged.staged_rows
        loaded = landing.insert(staged, every_line_is_new)
        conflicting = 0 if every_line_is_new else landing.quarantine_conflicts()
        return landing.finalize(staged, loaded, conflicting)


class _NewFile:
    """The steps of one file's landing transaction; its ledger row is open (status `loading`)."""

    def __init__(self, conn, file: LandingFile, file_id: int):
        self.conn = conn
        self.file = file
        self.file_id = file_id
        # The parameters of the dedupe and insert statements.
        self.params = {"file_id": file_id, "partition_hour": file.partition_hour,
                       "source_file": file.relative}

    def stage(self) -> _Staged:
        """Read and validate every line: valid ones go to the staging table, bad ones to the quarantine."""
        file = self.file
        batch_rows = max(1, settings().land_batch_rows)
        send_rows = min(batch_rows, SEND_ROWS)
        check = validator(file.stream)
        # Bound to locals: this loop runs once per line.
        decode, accepts_decoded, classify = check.decode, check.accepts_decoded, check.classify
        decode_errors = (msgspec.DecodeError, UnicodeDecodeError)  # the latter: msgspec on bad UTF-8
        pack = stage_row_head
        reader = LineReader(file)
        stage = Stage(self.conn)
        quarantine = QuarantineBuffer(self.conn, file, self.file_id, max_rows=batch_rows)
        rows: list[bytes] = []
        line_number = 0
        try:
            for chunk in reader.batches():
                # Hand valid lines to the COPY writer after each read chunk, at most send_rows at once.
                for first in range(0, len(chunk), send_rows):
                    for line in chunk[first: first + send_rows]:
                        line_number += 1
                        try:
                            record = decode(line)
                        except decode_errors:
                            record = None
                        if record is None or not accepts_decoded(record, line):
                            verdict = classify(line)
                            if verdict is not None:
                                quarantine.add(line_number, line, verdict)
                                continue
                        rows.append(pack(2, 4, line_number, len(line) + 1, 1) + line)
                    stage.write(rows)
                    rows.clear()
                    _fault_point("batch", file, line_number)
                    if quarantine.full:
                        stage.close()  # one COPY at a time on a connection
                        quarantine.flush()
            if reader.tail:
                line_number += 1
                verdict = classify(reader.tail, last_without_newline=True)
                if verdict is None:
                    stage.write([pack(2, 4, line_number, len(reader.tail) + 1, 1) + reader.tail])
                else:
                    quarantine.add(line_number, reader.tail, verdict)
            stage.close()
        except BaseException as exc:
            stage.close(exc)
            raise
        quarantine.flush()
        return _Staged(lines=line_number, staged_rows=stage.rows, reasons=quarantine.reasons,
                       size=reader.size, sha256=reader.sha256.hexdigest())

    def stage_carefully(self) -> _Staged:
        """stage() for a file PostgreSQL refused: batches in savepoints, a refused one bisected."""
        file = self.file
        batch_rows = max(1, settings().land_batch_rows)
        check = validator(file.stream)
        reader = LineReader(file)
        quarantine = QuarantineBuffer(self.conn, file, self.file_id, max_rows=batch_rows)
        line_number = staged_rows = 0
        pending: list[tuple[int, bytes]] = []

        def flush() -> None:
            nonlocal staged_rows
            staged_rows += self._stage_checked(pending, quarantine)
            pending.clear()
            quarantine.flush()

        for chunk in reader.batches():
            for line in chunk:
                line_number += 1
                verdict = check.classify(line)
                if verdict is not None:
                    quarantine.add(line_number, line, verdict)
                else:
                    pending.append((line_number, line))
                if len(pending) >= batch_rows:
                    flush()
        if reader.tail:
            line_number += 1
            verdict = check.classify(reader.tail, last_without_newline=True)
            if verdict is None:
                pending.append((line_number, reader.tail))
            else:
                quarantine.add(line_number, reader.tail, verdict)
        flush()
        return _Staged(lines=line_number, staged_rows=staged_rows, reasons=quarantine.reasons,
                       size=reader.size, sha256=reader.sha256.hexdigest())

    def _stage_checked(self, lines: list[tuple[int, bytes]], quarantine: QuarantineBuffer) -> int:
        """Stage `lines` and check their typed values in a savepoint; a refused batch is halved until the
        lines PostgreSQL refuses stand alone and go to the quarantine. How many lines were staged."""
        import psycopg

        if not lines:
            return 0
        try:
            with self.conn.transaction():
                stage = Stage(self.conn)
                try:
                    stage.write([stage_row_head(2, 4, n, len(line) + 1, 1) + line for n, line in lines])
                    stage.close()
                except BaseException as exc:
                    stage.close(exc)
                    raise
                self.conn.execute(typed_probe_sql(self.file.stream),
                                  {"first": lines[0][0], "last": lines[-1][0]}).fetchall()
            return len(lines)
        except psycopg.Error as exc:
            if self.conn.broken:
                raise
            if len(lines) == 1:
                number, line = lines[0]
                quarantine.add(number, line, ("rejected_by_database", ledger.database_message(exc)))
                return 0
            half = len(lines) // 2
            return self._stage_checked(lines[:half], quarantine) + self._stage_checked(lines[half:], quarantine)

    def dedupe(self, staged: _Staged, turn: Turn, lock: StreamLock) -> int:
        """Claim the staged keys that are new, in landing order per stream; how many were new."""
        turn.wait()  # the previous file of this stream has passed its dedupe step (parallel landing)
        new_keys = insert_new_keys(self.conn, self.file.stream, self.params, lock)
        _fault_point("deduped", self.file, staged.lines)
        lock.release(with_sql=release_sql())
        turn.done()
        return new_keys

    def insert(self, staged: _Staged, every_line_is_new: bool) -> int:
        """Insert the typed rows of the lines whose keys this file owns; how many."""
        stream = self.file.stream
        partition = partition_name(stream, self.file.partition_hour.date())
        loaded = self.conn.execute(insert_sql(stream, partition, every_line_is_new), self.params).rowcount
        _fault_point("inserted", self.file, staged.lines)
        return loaded

    def quarantine_conflicts(self) -> int:
        """Quarantine the staged lines whose key is landed with other content (conflicts); how many."""
        messages = conflicts.find(self.conn, self.file.stream, self.params)
        if messages:
            buffer = QuarantineBuffer(self.conn, self.file, self.file_id, max_rows=len(messages))
            conflicts.quarantine(LineReader(self.file), buffer, messages)
        return len(messages)

    def finalize(self, staged: _Staged, loaded: int, conflicting: int = 0) -> FileResult:
        """Close the ledger row with the file's counts and status (the bad-line limit)."""
        reasons = staged.reasons + Counter({conflicts.CONFLICT: conflicting})
        status, message = ledger.verdict(staged.lines, reasons)
        result = FileResult.of(
            self.file, status, file_id=self.file_id, message=message, lines=staged.lines, loaded=loaded,
            duplicates=staged.staged_rows - loaded - conflicting, conflicts=conflicting,
            quarantined=sum(reasons.values()), quarantined_by_reason=dict(sorted(reasons.items())),
        )
        ledger.close_row(self.conn, result, staged.size, staged.sha256)
        return result
