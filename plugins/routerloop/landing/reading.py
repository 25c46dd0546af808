"""Reading a landing file: its lines in chunks (gzip or plain), never the whole file in memory, and the
sha256 and size of its bytes on disk (the ledger's identity of what landed)."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from routerloop.landing.discovery import LandingFile

READ_CHUNK_BYTES = 1 << 20


class Unreadable(Exception):
    """The file's bytes cannot be read as (gzipped) text lines."""


class _HashingReader:
    """File-like wrapper that feeds every byte read into a sha256 (the on-disk bytes, gzip or not)."""

    def __init__(self, raw, hasher):
        self._raw = raw
        self._hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(READ_CHUNK_BYTES):
            pass


class LineReader:
    """Lines of a file in chunks, never the whole file in memory; hashes the on-disk bytes."""

    def __init__(self, file: LandingFile):
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.tail = b""  # after batches(): the last line when the file does not end with a newline

    def batches(self) -> Iterator[list[bytes]]:
        """The complete lines of each read chunk, without their newlines; raises Unreadable."""
        try:
            with open(self.file.path, "rb") as raw:
                self.size = _file_size(raw)
                hashing = _HashingReader(raw, self.sha256)
                stream = gzip.GzipFile(fileobj=hashing, mode="rb") if self.file.gzipped else hashing
                pending: list[bytes] = []
                while chunk := stream.read(READ_CHUNK_BYTES):
                    lines = chunk.split(b"\n")
                    if len(lines) == 1:  # no newline in this chunk: a long line continues
                        pending.append(chunk)
                        continue
                    if pending:
                        pending.append(lines[0])
                        lines[0] = b"".join(pending)
                        pending = []
                    last = lines.pop()
                    if last:
                        pending.append(last)
                    yield lines
                self.tail = b"".join(pending)
                hashing.drain()  # bytes after the gzip stream, if any, belong to the file too
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise Unreadable(f"{type(exc).__name__}: {exc}") from exc


def _file_size(handle) -> int:
    return os.fstat(handle.fileno()).st_size


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file's bytes on disk."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        size = _file_size(handle)
        while chunk := handle.read(READ_CHUNK_BYTES):
            hasher.update(chunk)
    return size, hasher.hexdigest()
