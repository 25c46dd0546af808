"""What a landing returns: one FileResult per file, Totals, and the LandingResult of a whole run.

to_dict() gives the JSON summary `routerloop land` prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime

from routerloop.landing.discovery import IgnoredPath, LandingFile
from routerloop.landing.failures import OpenFailure, describe
from routerloop.warehouse.raw import FAILED_BAD_LINES, FAILED_REJECTED, FAILED_UNREADABLE, REFUSED_CHANGED

# A status of summaries only (never in the ledger): the file had landed before, nothing was done.
SKIPPED = "skipped"
FAILED_STATUSES = (FAILED_BAD_LINES, FAILED_UNREADABLE, REFUSED_CHANGED, FAILED_REJECTED)


@dataclass(frozen=True, kw_only=True)
class FileResult:
    """What landing did with one file. lines = loaded + duplicates + quarantined; conflicts (lines reusing
    a landed key with other content) are quarantined, and counted apart from true re-deliveries."""

    path: str  # relative to the landing root
    stream: str
    partition_hour: datetime
    lines: int = 0
    loaded: int = 0
    duplicates: int = 0  # re-deliveries
    quarantined: int = 0
    conflicts: int = 0  # of quarantined: reason conflicting_duplicate
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    status: str
    message: str | None = None
    file_id: int  # its ledger row (for a skipped file: the row of the landing it repeats)
    previous_status: str | None = None  # skipped files only: the status of that landing

    @classmethod
    def of(cls, file: LandingFile, status: str, **values) -> FileResult:
        return cls(path=file.relative, stream=file.stream, partition_hour=file.partition_hour, status=status,
                   **values)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["partition_hour"] = self.partition_hour.isoformat()
        if self.previous_status is None:
            del values["previous_status"]
        return values


@dataclass(frozen=True, kw_only=True)
class Totals:
    files: int = 0
    lines: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    conflicts: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_stream: dict[str, Totals] | None = None  # the run's totals only, in the order streams landed

    @classmethod
    def of(cls, results: list[FileResult], by_stream: bool = True) -> Totals:
        reasons: Counter[str] = Counter()
        for result in results:
            reasons.update(result.quarantined_by_reason)
        streams: dict[str, list[FileResult]] = {}
        for result in results:
            streams.setdefault(result.stream, []).append(result)
        return cls(
            files=len(results),
            lines=sum(r.lines for r in results),
            loaded=sum(r.loaded for r in results),
            duplicates=sum(r.duplicates for r in results),
            quarantined=sum(r.quarantined for r in results),
            conflicts=sum(r.conflicts for r in results),
            quarantined_by_reason=dict(sorted(reasons.items())),
            by_status=dict(sorted(Counter(r.status for r in results).items())),
            by_stream={s: cls.of(rs, by_stream=False) for s, rs in streams.items()} if by_stream else None,
        )

    def to_dict(self) -> dict:
        values = asdict(self)
        if self.by_stream is None:
            del values["by_stream"]
        else:
            values["by_stream"] = {stream: totals.to_dict() for stream, totals in self.by_stream.items()}
        return values


@dataclass(frozen=True, kw_only=True)
class LandingResult:
    """A landing run. `ok` is False when a file of the window is failed in the ledger (now or in an earlier
    run: too many bad lines, changed after landing, unreadable, refused by the database) and was neither
    re-delivered nor acknowledged (routerloop.landing.failures); `error` then names them and what to do."""

    ok: bool
    error: str | None
    files: list[FileResult]
    totals: Totals
    ignored: list[IgnoredPath]  # paths that do not fit the landing layout, or skipped on purpose
    open_failures: list[OpenFailure] = field(default_factory=list)

    @classmethod
    def of(cls, files: list[FileResult], ignored: list[IgnoredPath],
           open_failures: list[OpenFailure] | None = None) -> LandingResult:
        failed = [f for f in files if f.status in FAILED_STATUSES]
        open_failures = open_failures or []
        error = None
        if open_failures:
            error = describe(open_failures)
        elif failed:  # (open_failures includes them when the run looked them up)
            error = f"{len(failed)} of {len(files)} files did not land cleanly: " + "; ".join(
                f"{f.path} ({f.status}: {f.message})" for f in failed[:5]
            ) + ("; ..." if len(failed) > 5 else "")
        return cls(ok=not failed and not open_failures, error=error, files=files, totals=Totals.of(files),
                   ignored=ignored, open_failures=open_failures)

    @property
    def retryable(self) -> bool:
        """Not ok only because files could not be read: a later try may read them. Too many bad lines, or
        a landed file that changed, no retry can fix."""
        failed = {f.status for f in self.files if f.status in FAILED_STATUSES}
        failed |= {f.status for f in self.open_failures}
        return failed == {FAILED_UNREADABLE}

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "error": self.error,
            "files": [f.to_dict() for f in self.files],
            "totals": self.totals.to_dict(),
            "ignored": [asdict(i) for i in self.ignored],
            "open_failures": [{**asdict(f), "partition_hour": f.partition_hour.isoformat()}
                              for f in self.open_failures],
        }
