"""Writing files that readers must never see half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Files routerloop publishes hold no secret and may be read by another user (the router, a web server).
PUBLISHED_FILE_MODE = 0o644


def write_atomically(path: Path, data: bytes, mode: int = PUBLISHED_FILE_MODE, durable: bool = True) -> None:
    """Write `data` to `path` so that a reader sees the old content or the new, never a mix.

    The bytes go to a temporary name in the same folder and are renamed over the target. With
    `durable` (the default) the file and then its folder are fsynced, so the new content survives a
    machine crash once this returns; bulk writers whose output can be regenerated may skip that.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # mkstemp creates 0600
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
