"""Simulated time: epoch milliseconds throughout (integers are fast and exact), ISO text on output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SECOND_MS = 1_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_hour_prefixes: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds -> `2026-11-22T13:05:10.123Z` (the hour prefix is cached: this runs a lot)."""
    hour, rest = divmod(ms, HOUR_MS)
    prefix = _hour_prefixes.get(hour)
    if prefix is None:
        if len(_hour_prefixes) > 4096:  # bounded, whatever the range
            _hour_prefixes.clear()
        prefix = _hour_prefixes[hour] = (EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:")
    minute, rest = divmod(rest, MINUTE_MS)
    second, milli = divmod(rest, SECOND_MS)
    return f"{prefix}{minute:02d}:{second:02d}.{milli:03d}Z"


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)
