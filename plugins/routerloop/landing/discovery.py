"""Finding the files to land: `<landing>/<stream>/dt=YYYY-MM-DD/hr=HH/*.jsonl[.gz]`, in landing order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from routerloop import contract


@dataclass(frozen=True)
class LandingFile:
    path: Path  # absolute
    relative: str  # posix path relative to the landing root: the ledger's identity of the file
    stream: str
    partition_hour: datetime  # UTC

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


@dataclass(frozen=True)
class IgnoredPath:
    """A path in the landing zone that does not fit its layout: reported, never landed."""

    path: str  # relative to the landing root
    reason: str


_DT_RE, _HR_RE = contract.PARTITION_RE


def _partition_hour(dt_name: str, hr_name: str) -> datetime | None:
    dt_match, hr_match = _DT_RE.match(dt_name), _HR_RE.match(hr_name)
    if not (dt_match and hr_match):
        return None
    try:
        day = date.fromisoformat(dt_match.group(1))
        return datetime(day.year, day.month, day.day, int(hr_match.group(1)), tzinfo=UTC)
    except ValueError:  # dt=2026-02-30 or hr=24
        return None


def discover(
    landing: Path, streams: list[str], start: datetime | None = None, end: datetime | None = None
) -> tuple[list[LandingFile], list[IgnoredPath]]:
    """Files to land, in landing order (stream, hour, name), and what was ignored and why.

    Hidden files (writers' temporary names) are skipped silently; anything else that does not fit the
    layout is reported in the second list, never landed.
    """
    files: list[LandingFile] = []
    ignored: list[IgnoredPath] = []

    def ignore(path: Path, why: str) -> None:
        ignored.append(IgnoredPath(path.relative_to(landing).as_posix(), why))

    for stream in streams:
        root = landing / stream
        if not root.is_dir():
            continue
        for dt_dir in sorted(root.iterdir()):
            if dt_dir.name.startswith("."):
                continue
            if not (dt_dir.is_dir() and _DT_RE.match(dt_dir.name)):
                ignore(dt_dir, "not a dt=YYYY-MM-DD partition folder")
                continue
            for hr_dir in sorted(dt_dir.iterdir()):
                if hr_dir.name.startswith("."):
                    continue
                hour = _partition_hour(dt_dir.name, hr_dir.name) if hr_dir.is_dir() else None
                if hour is None:
                    ignore(hr_dir, "not a valid dt=YYYY-MM-DD/hr=HH partition")
                    continue
                if (start is not None and hour < start) or (end is not None and hour >= end):
                    continue
                for path in sorted(hr_dir.iterdir()):
                    if path.name.startswith("."):
                        continue
                    if path.is_file() and path.name.endswith(contract.FILE_SUFFIXES):
                        files.append(LandingFile(path, path.relative_to(landing).as_posix(), stream, hour))
                    else:
                        ignore(path, f"not a {' or '.join(contract.FILE_SUFFIXES)} file")
    return files, ignored
