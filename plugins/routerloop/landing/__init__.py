"""Land the landing zone's JSONL partitions into schema `raw`: validated, deduplicated, exactly once.

What lands: every file `<landing>/<stream>/dt=YYYY-MM-DD/hr=HH/*.jsonl[.gz]` whose partition hour lies
in [start, end), one stream per raw table `raw.<stream>` (routerloop.warehouse.raw), partitioned by day,
with day partitions created on demand (plus `raw_partitions_ahead_days`).

Exactly once, nothing lost:
- one transaction per file: its ledger row, its quarantine rows and its raw rows commit together or
  not at all (steps); when land() returns, every commit of the run is flushed to disk (durability);
- the ledger (`raw.landed_files`) lands a path once: landing it again is a no-op, a file whose bytes
  changed under a landed name is refused, an unreadable file is retried by the next run, and a file
  over the bad-line limit commits but fails the landing (ledger);
- every line is accounted for: lines = loaded + duplicates + quarantined. A line that breaks the
  contract goes to `raw.quarantine` with one reason code and its exact bytes (validation, quarantine);
  a line whose stream key was seen before with the same content is a duplicate: the first line wins
  (dedupe); with other content it is a `conflicting_duplicate`, quarantined (conflicts); a line
  PostgreSQL refuses is `rejected_by_database` and the file's other lines land (steps);
- a failed landing stays failed until re-delivered or acknowledged (failures).

One module per job, in the order a file meets them: discovery (which files), reading (lines, sha256),
validation (msgspec fast path and the classifier of reasons), copy_writer (valid lines, binary COPY to
a staging table), quarantine (bad lines), dedupe (the keys table, one file of a stream at a time),
insert (typed rows into the day partition), conflicts (same key, other content), ledger (statuses),
steps (one file: stage -> dedupe -> insert -> conflicts -> finalize), failures (open failures,
acknowledgements), durability (asynchronous commits per file, one synchronous commit at the end of a
run), run (land(): workers, progress, totals), results (what land() returns).

The costs quoted in the modules were measured on the 2-core development machine with
bench/land_throughput.py and CPU time per line of the Python process and of its PostgreSQL backend,
1M decision lines of ~530 bytes.
"""

from routerloop.landing.discovery import IgnoredPath, LandingFile, discover
from routerloop.landing.results import FAILED_STATUSES, SKIPPED, FileResult, LandingResult, Totals
from routerloop.landing.run import LandingFailed, land, land_or_raise
from routerloop.warehouse.raw import (
    FAILED_BAD_LINES,
    FAILED_REJECTED,
    FAILED_UNREADABLE,
    LOADED,
    REFUSED_CHANGED,
)

__all__ = [
    "FAILED_BAD_LINES",
    "FAILED_REJECTED",
    "FAILED_STATUSES",
    "FAILED_UNREADABLE",
    "LOADED",
    "REFUSED_CHANGED",
    "SKIPPED",
    "FileResult",
    "IgnoredPath",
    "LandingFailed",
    "LandingFile",
    "LandingResult",
    "Totals",
    "discover",
    "land",
    "land_or_raise",
]
