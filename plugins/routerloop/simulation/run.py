"""A run of the generator: the world stepped hour by hour into the landing zone, then the manifest."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from routerloop.simulation.clock import HOUR_MS, iso_ms, to_ms
from routerloop.simulation.faults import FaultInjector
from routerloop.simulation.parameters import PARAMETERS, SimulationParameters
from routerloop.simulation.reference import load_reference
from routerloop.simulation.world import World
from routerloop.simulation.writer import (
    MANIFEST_NAME,
    Outbox,
    PartitionWriter,
    refuse_to_overwrite,
    write_file,
)


def generate(
    out: Path,
    start: datetime,
    hours: int,
    seed: int,
    decisions_per_hour: int = 2000,
    bad_rate: float = 0.0,
    progress: bool = False,
    *,
    parameters: SimulationParameters | None = None,
    overwrite: bool = False,
) -> dict:
    """Write `hours` hours of the six streams from `start` (a whole UTC hour) under `out`.

    Returns the manifest, also written to `<out>/_generator_manifest.json`:
    `streams[s]` = files (including empty ones), lines (every line, bad ones too) and valid (lines that
    pass the contract, re-deliveries included); `injected[s]` = bad lines per REASONS code (codes that
    did not occur are left out); `duplicates[s]` = re-delivered lines (landing keeps valid - duplicates
    rows); `empty_files` = the empty files, relative to `out`.

    Files already under `out` are never deleted, so later hours can be generated next to earlier ones.
    A run refuses (FileExistsError) when a file it would write already exists, unless `overwrite`: then
    it replaces just those files. The manifest describes the latest run and is always replaced.
    Ids are unique for a seed across runs over other hours (see `IdMinter`).
    """
    start = _checked(start, hours, decisions_per_hour, bad_rate)
    params = parameters or PARAMETERS
    reference = load_reference()
    out = Path(out)
    start_ms = to_ms(start)
    faults = FaultInjector(bad_rate, seed, params.recent_lines_kept, empty_hour=hours // 2)
    writer = PartitionWriter(out, faults)
    if not overwrite:
        refuse_to_overwrite(out, writer.targets(start, hours))
    out.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(writer, end_ms=start_ms + hours * HOUR_MS)
    world = World(reference, params, seed, outbox)
    for hour_index in range(hours):
        hour_start_ms = start_ms + hour_index * HOUR_MS
        world.run_hour(hour_start_ms, decisions_per_hour)
        outbox.release_until(hour_start_ms + HOUR_MS)
        hour = start + timedelta(hours=hour_index)
        writer.flush(hour_index, hour)
        if progress and (hour.hour == 23 or hour_index == hours - 1):
            print(
                f"generate: {hour:%Y-%m-%d} done, {hour_index + 1}/{hours} hours, "
                f"{writer.lines_written:,} lines",
                file=sys.stderr,
                flush=True,
            )

    manifest = {
        "seed": seed,
        "start": iso_ms(start_ms),
        "hours": hours,
        "decisions_per_hour": decisions_per_hour,
        "bad_rate": bad_rate,
        "streams": writer.files,
        "injected": {name: dict(sorted(counts.items())) for name, counts in faults.injected.items()},
        "duplicates": faults.duplicates,
        "empty_files": writer.empty_files,
    }
    write_file(out, MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def _checked(start: datetime, hours: int, decisions_per_hour: int, bad_rate: float) -> datetime:
    """`start` in UTC, once the arguments are known to describe a run."""
    if start.tzinfo is None:
        raise ValueError(f"start {start.isoformat()} has no timezone")
    start = start.astimezone(UTC)
    if start != start.replace(minute=0, second=0, microsecond=0):
        raise ValueError(f"start {start.isoformat()} is not a whole hour; partitions are hourly")
    if hours < 1 or decisions_per_hour < 0:
        raise ValueError("hours must be at least 1 and decisions_per_hour at least 0")
    if not 0.0 <= bad_rate < 1.0:
        raise ValueError(f"bad_rate must lie in [0, 1), got {bad_rate}")
    return start
