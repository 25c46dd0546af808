"""From a scheduler's data interval to the whole hours a run lands (no Airflow import).

The hourly DAG runs at minute 5 of every hour on a cron *data interval* timetable, so the run at
05:05 carries the interval [04:05, 05:05). Landing works on whole partition hours, so the interval is
widened/narrowed to hour boundaries by flooring both ends: [04:00, 05:00), the previous full hour.
Flooring is monotonic, so consecutive intervals map to consecutive windows: no hour is landed twice
and none is skipped, whatever the cron minute, and a longer interval (a manual run over a day) maps to
every whole hour it spans.
"""

from __future__ import annotations

from datetime import UTC, datetime


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour containing `moment` (which must carry a timezone)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no timezone; data intervals are timezone-aware")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_window(data_interval_start: datetime, data_interval_end: datetime) -> tuple[datetime, datetime]:
    """The landing window [start, end) in whole UTC hours for a data interval.

    Both ends are floored to the hour. An interval within a single hour yields an empty window
    (start == end), which lands nothing.
    """
    if data_interval_end < data_interval_start:
        raise ValueError(
            f"data interval ends ({data_interval_end.isoformat()}) before it starts "
            f"({data_interval_start.isoformat()})"
        )
    return floor_hour(data_interval_start), floor_hour(data_interval_end)

