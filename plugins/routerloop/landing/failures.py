"""Failed landings stay failed until they are dealt with.

A file whose ledger status is a failure (`failed_bad_lines`, `failed_unreadable`, `failed_rejected`,
`refused_changed`) keeps failing every landing of its stream and hour, so clearing the Airflow task
does not erase it, and the daily sensor does not count its hour as landed. The failure ends when:
- the producer re-delivers: a file of the same stream and hour lands cleanly (`loaded`) in a later
  landing run (a new name, or the same path once readable), or
- an operator acknowledges it: `routerloop ledger acknowledge PATH --reason ...` records who, when and
  why in raw.ledger_acknowledgements.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime

from routerloop.warehouse.raw import (
    ACKNOWLEDGEMENTS,
    FAILED_BAD_LINES,
    FAILED_REJECTED,
    FAILED_UNREADABLE,
    LEDGER,
    LOADED,
    REFUSED_CHANGED,
)

LEDGER_FAILURES = (FAILED_BAD_LINES, FAILED_UNREADABLE, FAILED_REJECTED, REFUSED_CHANGED)
WHAT_TO_DO = (
    "its lines are in raw.quarantine (select reason, message from raw.quarantine where source_file = "
    "'<path>'); fix the producer and re-deliver the file under a new name, or accept it with "
    "`routerloop ledger acknowledge <path> --reason '...'`"
)


@dataclass(frozen=True)
class OpenFailure:
    file_id: int
    path: str
    stream: str
    partition_hour: datetime
    status: str
    message: str | None

    def describe(self) -> str:
        return f"{self.path} ({self.status}: {self.message})"


_OPEN = f"""
select f.file_id, f.path, f.stream, f.partition_hour, f.status, f.message
from {LEDGER} as f
where f.status = any(%(failures)s)
  and f.stream = any(%(streams)s)
  and (%(start)s::timestamptz is null or f.partition_hour >= %(start)s)
  and (%(end)s::timestamptz is null or f.partition_hour < %(end)s)
  and not exists (select from {ACKNOWLEDGEMENTS} as a where a.file_id = f.file_id)
  and not exists (
      select from {LEDGER} as later
      where later.stream = f.stream and later.partition_hour = f.partition_hour and later.status = %(loaded)s
        and later.file_id > f.file_id and later.landing_run is distinct from f.landing_run)
order by f.partition_hour, f.path, f.file_id
"""


def open_failures(conn, streams: list[str], start: datetime | None, end: datetime | None) -> list[OpenFailure]:
    """The failed landings of `streams` in [start, end) neither re-delivered nor acknowledged."""
    rows = conn.execute(_OPEN, {"failures": list(LEDGER_FAILURES), "loaded": LOADED, "streams": streams,
                                "start": start, "end": end}).fetchall()
    return [OpenFailure(*row) for row in rows]


def describe(failures: list[OpenFailure]) -> str:
    """The failure message of a landing task: which files, and what to do."""
    shown = "; ".join(f.describe() for f in failures[:5]) + ("; ..." if len(failures) > 5 else "")
    return f"{len(failures)} failed landing(s) not re-delivered nor acknowledged: {shown}. For each: {WHAT_TO_DO}"


def acknowledge(conn, path: str, reason: str, by: str | None = None) -> list[int]:
    """Acknowledge the open failed landings of `path`: record who, when and why. The file_ids acknowledged."""
    if not reason.strip():
        raise ValueError("an acknowledgement needs a reason (--reason)")
    by = by or getpass.getuser()
    with conn.transaction():
        rows = conn.execute(
            f"insert into {ACKNOWLEDGEMENTS} (file_id, acknowledged_by, reason) "
            f"select file_id, %s, %s from {LEDGER} as f where f.path = %s and f.status = any(%s) "
            f"and not exists (select from {ACKNOWLEDGEMENTS} as a where a.file_id = f.file_id) "
            "returning file_id",
            (by, reason, path, list(LEDGER_FAILURES)),
        ).fetchall()
    if not rows:
        raise LookupError(f"no failed landing of {path!r} to acknowledge in {LEDGER} (paths are relative to "
                          "the landing root, as the landing summary prints them)")
    return [file_id for (file_id,) in rows]
