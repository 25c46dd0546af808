"""Writing quarantined lines: each line that breaks the contract goes to raw.quarantine with its reason
code, a message and its exact bytes, in the transaction of its file."""

from __future__ import annotations

from collections import Counter

from routerloop.landing.discovery import LandingFile
from routerloop.warehouse.raw import QUARANTINE

_FLUSH_BYTES = 16 << 20


def _storable_text(message: str) -> str:
    """A message PostgreSQL can store: no NUL, no unpaired surrogates (both escaped)."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class QuarantineBuffer:
    """The quarantined lines of one file, buffered and written with a binary COPY."""

    def __init__(self, conn, file: LandingFile, file_id: int, max_rows: int):
        self._conn = conn
        self._prefix = (file.stream, file.relative)
        self._file_id = file_id
        self._max_rows = max_rows
        self._rows: list[tuple] = []
        self._bytes = 0
        self.reasons: Counter[str] = Counter()  # every line quarantined so far, by reason

    def add(self, line_number: int, line: bytes, verdict: tuple[str, str]) -> None:
        reason, message = verdict
        self.reasons[reason] += 1
        self._rows.append((*self._prefix, line_number, reason, _storable_text(message), line, self._file_id))
        self._bytes += len(line)

    @property
    def full(self) -> bool:
        return len(self._rows) >= self._max_rows or self._bytes >= _FLUSH_BYTES

    def flush(self) -> None:
        """Write the buffered rows (no other COPY may be open on the connection)."""
        if self._rows:
            with self._conn.cursor().copy(
                f"copy {QUARANTINE} (stream, source_file, line_number, reason, message, raw_bytes, file_id) "
                "from stdin (format binary)"
            ) as copy:
                copy.set_types(["text", "text", "int4", "text", "text", "bytea", "int8"])
                for row in self._rows:
                    copy.write_row(row)
        self._rows.clear()
        self._bytes = 0
