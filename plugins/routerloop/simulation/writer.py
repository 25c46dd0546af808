"""The landing zone as the simulation writes it: hourly JSONL partitions, and the outbox that feeds them.

Every record is written into the partition of the hour in which it happens
(`<out>/<stream>/dt=YYYY-MM-DD/hr=HH/part-0000.jsonl`). Events later than their decision wait in a
heap keyed by time and are flushed hour by hour, so memory is bounded by the longest delay (a few
days of pending events), not by the number of hours generated. Events after the generated range are
not written. Nothing is ever deleted: `refuse_to_overwrite` guards the files a run would replace.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from routerloop.files import write_atomically
from routerloop.simulation.faults import FaultInjector
from routerloop.simulation.streams import DECISIONS, STREAM_NAMES, encode_line

MANIFEST_NAME = "_generator_manifest.json"
FILE_NAME = "part-0000.jsonl"
EMPTY_FILE_NAME = "part-0001.jsonl"  # the extra, empty file of a partition when bad lines are injected


class PartitionWriter:
    """Collects an hour's lines per stream (through the fault injector) and writes one file each."""

    def __init__(self, out: Path, faults: FaultInjector):
        self.out = str(out)
        self.faults = faults
        self.buffers: list[list[tuple[bytes, str | None]]] = [[] for _ in STREAM_NAMES]  # (line, fault)
        self.files = {name: {"files": 0, "lines": 0, "valid": 0} for name in STREAM_NAMES}
        self.empty_files: list[str] = []  # relative to out
        self.lines_written = 0

    def add(self, stream: int, line: bytes) -> None:
        self.faults.add(self.buffers[stream], stream, line)

    def targets(self, start: datetime, hours: int) -> Iterator[str]:
        """Every file a run of `hours` hours from `start` may write (a partition without lines gets none)."""
        for hour_index in range(hours):
            partition = _partition(start + timedelta(hours=hour_index))
            names = (FILE_NAME, EMPTY_FILE_NAME) if self.faults.wants_empty_file(hour_index) else (FILE_NAME,)
            for stream in STREAM_NAMES:
                for name in names:
                    yield os.path.join(self.out, stream, partition, name)

    def flush(self, hour_index: int, hour: datetime) -> None:
        """Write the lines collected for `hour`, the `hour_index`-th hour of the run."""
        # Plain string paths: pathlib would intern every partition name, a table that only grows.
        partition = _partition(hour)
        for stream, name in enumerate(STREAM_NAMES):
            folder = os.path.join(self.out, name, partition)
            buffer = self.buffers[stream]
            if self.faults.wants_empty_file(hour_index):
                os.makedirs(folder, exist_ok=True)
                write_file(folder, EMPTY_FILE_NAME, b"")
                self.files[name]["files"] += 1
                self.empty_files.append(f"{name}/{partition}/{EMPTY_FILE_NAME}")
            if not buffer:
                continue
            truncated = self.faults.finish_file(stream, buffer)
            data = b"\n".join(line for line, _ in buffer)
            os.makedirs(folder, exist_ok=True)
            write_file(folder, FILE_NAME, data if truncated else data + b"\n")
            counts = self.files[name]
            counts["files"] += 1
            counts["lines"] += len(buffer)
            counts["valid"] += self.faults.count_written(stream, buffer)
            self.lines_written += len(buffer)
            buffer.clear()


class Outbox:
    """Where the world emits records: decisions go straight to the writer (they are made in time order),
    later events wait on a heap until `release_until` passes their time."""

    def __init__(self, writer: PartitionWriter, end_ms: int):
        self.writer = writer
        self.end_ms = end_ms
        self.pending: list[tuple[int, int, int, bytes]] = []  # (time ms, sequence, stream, line)
        self.sequence = 0  # ties in time keep the order of emission

    def emit(self, stream: int, at_ms: int, record: dict) -> None:
        if at_ms >= self.end_ms:
            return  # happens after the generated range: not written
        if stream == DECISIONS:
            self.writer.add(DECISIONS, encode_line(record))
            return
        self.sequence += 1
        heapq.heappush(self.pending, (at_ms, self.sequence, stream, encode_line(record)))

    def release_until(self, end_ms: int) -> None:
        """Hand the writer every pending line that happens before `end_ms`, in time order."""
        pending, add = self.pending, self.writer.add
        while pending and pending[0][0] < end_ms:
            _, _, stream, line = heapq.heappop(pending)
            add(stream, line)


def write_file(folder: str | Path, name: str, data: bytes) -> None:
    """A generated file, never seen half-written; not fsynced: the output can be regenerated."""
    write_atomically(Path(folder, name), data, durable=False)


def refuse_to_overwrite(out: Path, targets: Iterable[str]) -> None:
    """Raise FileExistsError, naming one, when any of `targets` already exists."""
    existing = [path for path in targets if os.path.lexists(path)]
    if existing:
        raise FileExistsError(
            f"{existing[0]} and {len(existing) - 1} more of the files this run would write already exist "
            f"under {out}; refusing to write over them. Choose another folder, or pass overwrite=True "
            "(routerloop generate --overwrite) to replace those files (no other file is deleted)"
        )


def _partition(hour: datetime) -> str:
    return f"dt={hour:%Y-%m-%d}/hr={hour:%H}"
