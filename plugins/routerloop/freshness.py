"""Stream freshness: how far each stream's newest landed event lags behind now, and who hears when it is stale.

- Lag of a stream = as_of (default: now) minus the newest event time landed in its raw table (the
  contract's `event_time` of the stream: `createdAt`, `updatedAt`, ... as a typed column). Events
  after as_of are ignored, so a check "as of" a past moment (a backfilled hourly run) sees what had
  landed for then. A stream with nothing landed has no lag and is stale.
- A stream is stale when its lag exceeds its threshold: `freshness_stale_after_minutes` (default 120),
  overridden per stream by `freshness_stale_after_minutes_by_stream` ("csat_ratings=360,...").
- `check()` measures; `check_and_notify()` also calls the notifier when a stream is stale and raises
  `StaleStreams` (the Airflow task and `routerloop freshness` fail on it).
- Notifiers are pluggable (`freshness_notifier`): the log notifier by default, the webhook notifier
  (JSON POST to `freshness_webhook_url`), or any "module:callable" taking the report.
- `dbt source freshness` is configured to the same thresholds: routerloop hands them to dbt in one
  environment variable (DBT_FRESHNESS_ENV, see `dbt_freshness_env`), which the source YAML reads
  (dbt_project/models/staging/_*__sources.yml). `dbt_source_freshness()` runs it.
No Airflow import; psycopg and dbt are imported where used.
"""

from __future__ import annotations

import importlib
import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from routerloop import contract
from routerloop.config import settings

log = logging.getLogger("routerloop.freshness")

# The thresholds reach dbt's source YAML in this variable: {"default": minutes, "<stream>": minutes}.
DBT_FRESHNESS_ENV = "ROUTERLOOP_DBT_FRESHNESS_MINUTES"
DEFAULT_KEY = "default"
# How far before a stream's newest landed partition its newest event is looked for (events sit in the
# partition hour they were delivered in, give or take late deliveries).
_SEARCH_BEFORE_NEWEST_PARTITION = timedelta(days=1)


class StaleStreams(RuntimeError):
    """At least one stream is stale; `report` says which and by how much (the message: one sentence)."""

    def __init__(self, report: FreshnessReport):
        self.report = report
        super().__init__(report.describe())


def thresholds() -> dict[str, int]:
    """Minutes after which each stream is stale (every stream of the contract), from the settings."""
    s = settings()
    minutes = {name: int(s.freshness_stale_after_minutes) for name in contract.STREAMS}
    for item in filter(None, (part.strip() for part in s.freshness_stale_after_minutes_by_stream.split(","))):
        stream, sep, value = item.partition("=")
        stream = stream.strip()
        if not sep or stream not in contract.STREAMS:
            raise ValueError(
                f"freshness_stale_after_minutes_by_stream: {item!r} is not <stream>=<minutes> with a stream of "
                f"{', '.join(contract.STREAMS)}"
            )
        try:
            minutes[stream] = int(value)
        except ValueError:
            raise ValueError(f"freshness_stale_after_minutes_by_stream: {value!r} ({stream}) is not whole minutes") from None
    bad = {k: v for k, v in minutes.items() if v <= 0}
    if bad or s.freshness_stale_after_minutes <= 0:
        raise ValueError(f"freshness thresholds must be positive minutes: {bad or s.freshness_stale_after_minutes}")
    return minutes


def dbt_freshness_env() -> dict[str, str]:
    """The thresholds as dbt's environment (routerloop.build sets it for every dbt call, the Airflow
    environment for Cosmos' tasks): the same value every time, so dbt's partial parse keeps."""
    value = {DEFAULT_KEY: int(settings().freshness_stale_after_minutes), **thresholds()}
    return {DBT_FRESHNESS_ENV: json.dumps(value, sort_keys=True, separators=(",", ":"))}


@dataclass(frozen=True)
class StreamFreshness:
    stream: str
    event_column: str
    newest_event: datetime | None  # None: nothing landed (before as_of)
    stale_after_minutes: int
    as_of: datetime

    @property
    def lag(self) -> timedelta | None:
        return None if self.newest_event is None else self.as_of - self.newest_event

    @property
    def stale(self) -> bool:
        return self.lag is None or self.lag > timedelta(minutes=self.stale_after_minutes)

    def describe(self) -> str:
        if self.newest_event is None:
            return f"{self.stream}: nothing landed"
        minutes = self.lag.total_seconds() / 60
        return (f"{self.stream}: lag {minutes:,.0f} min (newest {self.event_column} "
                f"{self.newest_event:%Y-%m-%d %H:%M} UTC; stale after {self.stale_after_minutes} min)")

    def to_dict(self) -> dict:
        lag = self.lag
        return {
            "stream": self.stream,
            "event_column": self.event_column,
            "newest_event": self.newest_event.isoformat() if self.newest_event else None,
            "lag_minutes": round(lag.total_seconds() / 60, 1) if lag is not None else None,
            "stale_after_minutes": self.stale_after_minutes,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class FreshnessReport:
    as_of: datetime
    streams: list[StreamFreshness] = field(default_factory=list)

    @property
    def stale(self) -> list[StreamFreshness]:
        return [s for s in self.streams if s.stale]

    @property
    def ok(self) -> bool:
        return not self.stale

    def describe(self) -> str:
        """One sentence: which streams are stale and by how much (or that all are fresh)."""
        when = f"as of {self.as_of:%Y-%m-%d %H:%M} UTC"
        if self.ok:
            return f"every stream is fresh {when}"
        return (f"{len(self.stale)} of {len(self.streams)} streams stale {when}: "
                + "; ".join(s.describe() for s in self.stale))

    def to_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "ok": self.ok, "stale": [s.stream for s in self.stale],
                "streams": [s.to_dict() for s in self.streams]}


def _newest_event(conn, stream: contract.Stream, as_of: datetime) -> datetime | None:
    column = stream.field(stream.event_time).column
    table = f"raw.{stream.name}"
    # The newest landed partition first (an index scan), then its events: bounded work on a long history.
    newest_hour = conn.execute(
        f"select max(_partition_hour) from {table} where _partition_hour <= %s", (as_of,)
    ).fetchone()[0]
    if newest_hour is None:
        return None
    return conn.execute(
        f"select max({column}) from {table} where _partition_hour >= %s and _partition_hour <= %s and {column} <= %s",
        (newest_hour - _SEARCH_BEFORE_NEWEST_PARTITION, as_of, as_of),
    ).fetchone()[0]


def check(as_of: datetime | None = None, streams: list[str] | None = None, url: str | None = None) -> FreshnessReport:
    """Each stream's lag as of `as_of` (default now, UTC); no side effects."""
    from routerloop import db

    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    names = streams or list(contract.STREAMS)
    unknown = [s for s in names if s not in contract.STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}; known: {', '.join(contract.STREAMS)}")
    limits = thresholds()
    results = []
    with db.connect(url or db.database_url(), autocommit=True) as conn:
        for name in names:
            stream = contract.STREAMS[name]
            exists = conn.execute("select to_regclass(%s) is not null", (f"raw.{name}",)).fetchone()[0]
            newest = _newest_event(conn, stream, as_of) if exists else None
            results.append(StreamFreshness(name, stream.field(stream.event_time).column,
                                           newest.astimezone(UTC) if newest else None, limits[name], as_of))
    return FreshnessReport(as_of, results)


# --------------------------------------------------------------------------- notifiers

Notifier = Callable[["FreshnessReport"], None]


def log_notifier(report: FreshnessReport) -> None:
    """The default: one ERROR line on the `routerloop.freshness` logger (Airflow's task log shows it)."""
    log.error("routerloop freshness: %s", report.describe())


@dataclass(frozen=True)
class WebhookNotifier:
    """POSTs the report as JSON (`{"text": <sentence>, "report": {...}}`, Slack-compatible) to a URL."""

    url: str
    timeout: float = 10.0

    def payload(self, report: FreshnessReport) -> dict:
        return {"text": f"routerloop freshness: {report.describe()}", "report": report.to_dict()}

    def __call__(self, report: FreshnessReport) -> None:
        body = json.dumps(self.payload(report)).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            if response.status >= 300:
                raise RuntimeError(f"freshness webhook {self.url} answered {response.status}")


def notifier_from_settings() -> Notifier:
    """The configured notifier: a webhook URL selects the webhook; "module:callable" plugs in any other."""
    s = settings()
    kind = s.freshness_notifier.strip()
    if kind == "webhook" or (kind == "log" and s.freshness_webhook_url):
        if not s.freshness_webhook_url:
            raise ValueError("freshness_notifier=webhook needs ROUTERLOOP_FRESHNESS_WEBHOOK_URL")
        return WebhookNotifier(s.freshness_webhook_url, s.freshness_webhook_timeout_seconds)
    if kind == "log":
        return log_notifier
    module, sep, name = kind.partition(":")
    if not sep:
        raise ValueError(f"freshness_notifier {kind!r}: expected log, webhook or module:callable")
    return getattr(importlib.import_module(module), name)


def check_and_notify(as_of: datetime | None = None, streams: list[str] | None = None, url: str | None = None,
                     notifier: Notifier | None = None) -> FreshnessReport:
    """check(); when a stream is stale, call the notifier (then the log, whatever it is) and raise StaleStreams.

    A notifier that fails (webhook unreachable) is logged and does not hide the verdict: StaleStreams
    is raised all the same.
    """
    report = check(as_of=as_of, streams=streams, url=url)
    if report.ok:
        log.info("routerloop freshness: %s", report.describe())
        return report
    notify = notifier or notifier_from_settings()
    try:
        notify(report)
    except Exception as exc:  # the stale verdict matters more than the delivery of the alert
        log.error("routerloop freshness: the notifier %r failed: %s", notify, exc)
    if notify is not log_notifier:
        log_notifier(report)
    raise StaleStreams(report)


# --------------------------------------------------------------------------- dbt source freshness


def dbt_source_freshness(url: str | None = None, raise_on_stale: bool = True,
                         data_interval_end: datetime | None = None) -> dict:
    """`dbt source freshness` with the same thresholds (per stream, on its event-time column).

    Returns {"ok", "sources": [{"source", "status", "max_loaded_at", "age_minutes"}]}; with
    raise_on_stale, a source over its threshold (or a dbt error) raises StaleSources.
    dbt measures against the wall clock only, so a scheduled run passes its `data_interval_end`: a run
    for an interval that ended longer ago than the largest threshold (a backfill, a demo day) skips the
    check (`"skipped"` says why) instead of failing on data that was fresh in its day.
    """
    from routerloop.build import run_dbt

    if data_interval_end is not None:
        limit = timedelta(minutes=max(thresholds().values()))
        behind = datetime.now(UTC) - data_interval_end
        if behind > limit:
            reason = (f"the interval ended {behind.total_seconds() / 3600:,.1f} h ago, more than the largest "
                      f"threshold ({limit.total_seconds() / 60:.0f} min): dbt can only measure against now")
            log.info("routerloop freshness: dbt source freshness skipped: %s", reason)
            return {"ok": True, "skipped": reason, "sources": []}

    result = run_dbt(["source", "freshness"], url=url, quiet=True)
    sources = []
    for r in getattr(result.result, "results", None) or []:
        node = getattr(r, "node", None)
        if node is None or not node.unique_id.startswith("source."):
            continue  # the project's on-run-start/end hooks
        age = getattr(r, "age", None)
        max_loaded_at = getattr(r, "max_loaded_at", None)
        sources.append({
            "source": node.unique_id,
            "status": str(r.status),
            "max_loaded_at": max_loaded_at.isoformat() if max_loaded_at else None,
            "age_minutes": round(age / 60, 1) if age is not None else None,
        })
    summary = {"ok": bool(result.success) and all(s["status"] in ("pass", "warn") for s in sources),
               "sources": sources}
    if raise_on_stale and not summary["ok"]:
        bad = [f"{s['source']} ({s['status']}, age {s['age_minutes']} min)" for s in sources
               if s["status"] not in ("pass", "warn")]
        raise StaleSources(f"dbt source freshness: {len(bad)} source(s) stale or failing: {', '.join(bad) or 'dbt failed'}")
    return summary


class StaleSources(RuntimeError):
    """`dbt source freshness` found a source over its threshold (or could not run)."""
