"""Finding the files to land: `<landing>/<stream>/dt=YYYY-MM-DD/hr=HH/*.jsonl[.gz]`, in landing order.

Odd paths are reported (IgnoredPath, in the summary's `ignored`), never skipped silently:
- hidden files and folders (names starting with `.`: writers' temporary names) are not landed;
- a symlink is followed when it points inside the landing root, and not landed when it points outside
  it (or nowhere);
- a file name that is not valid UTF-8 lands under its name with the invalid bytes written as `\\xNN`
  (the ledger, quarantine and `_source_file` hold text).
"""

from __future__ import annotations

import os
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
HIDDEN = "hidden (name starts with '.'): not landed"
OUTSIDE = "a symlink pointing outside the landing root (or to nothing): not landed"


def storable_path(relative: str) -> str:
    """A relative path as text PostgreSQL stores: bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def _outside(path: Path, root: Path) -> bool:
    """A symlink (or a path under one) that resolves outside the landing root, or to nothing."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # broken link, loop
        return True
    return not target.is_relative_to(root)


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

    Hidden paths, symlinks out of the landing root and anything else that does not fit the layout are
    reported in the second list, never landed.
    """
    files: list[LandingFile] = []
    ignored: list[IgnoredPath] = []
    real_root = landing.resolve()

    def ignore(path: Path, why: str) -> None:
        ignored.append(IgnoredPath(storable_path(path.relative_to(landing).as_posix()), why))

    def skipped(path: Path) -> bool:
        """Hidden or a symlink out of the root: reported, and True."""
        if path.name.startswith("."):
            ignore(path, HIDDEN)
        elif path.is_symlink() and _outside(path, real_root):
            ignore(path, OUTSIDE)
        else:
            return False
        return True

    for stream in streams:
        root = landing / stream
        if not root.is_dir():
            continue
        if root.is_symlink() and _outside(root, real_root):
            ignore(root, OUTSIDE)
            continue
        for dt_dir in sorted(root.iterdir()):
            if skipped(dt_dir):
                continue
            if not (dt_dir.is_dir() and _DT_RE.match(dt_dir.name)):
                ignore(dt_dir, "not a dt=YYYY-MM-DD partition folder")
                continue
            for hr_dir in sorted(dt_dir.iterdir()):
                if skipped(hr_dir):
                    continue
                hour = _partition_hour(dt_dir.name, hr_dir.name) if hr_dir.is_dir() else None
                if hour is None:
                    ignore(hr_dir, "not a valid dt=YYYY-MM-DD/hr=HH partition")
                    continue
                if (start is not None and hour < start) or (end is not None and hour >= end):
                    continue
                for path in sorted(hr_dir.iterdir()):
                    if skipped(path):
                        continue
                    if path.is_file() and path.name.endswith(contract.FILE_SUFFIXES):
                        relative = storable_path(path.relative_to(landing).as_posix())
                        files.append(LandingFile(path, relative, stream, hour))
                    else:
                        ignore(path, f"not a {' or '.join(contract.FILE_SUFFIXES)} file")
    return files, ignored
