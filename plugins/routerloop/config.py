"""Every runtime setting of routerloop, in one place, with its default.

Two homes, one rule each:
- runtime settings (paths, database, landing limits) are fields of `Settings` below; each can be
  overridden by an environment variable `ROUTERLOOP_<FIELD NAME IN CAPITALS>`;
- analytics settings (windows, k for suppression, thresholds, weight caps) are dbt vars in
  `dbt_project/dbt_project.yml`, because the SQL that uses them lives in dbt. Python code that needs
  one of them (gates, export) reads it from there with `dbt_var()`, never from a copy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

ENV_PREFIX = "ROUTERLOOP_"
# A dbt run's data interval [start, end) reaches dbt in these variables (set by routerloop.build and the
# daily DAG), not as --vars: changed vars make dbt re-parse the whole project, an environment variable
# read at execution time does not (dbt_project/macros/incremental_window.sql).
DBT_INTERVAL_ENV = {"start": "ROUTERLOOP_DBT_START", "end": "ROUTERLOOP_DBT_END"}


class ConfigError(ValueError):
    """A setting that cannot work (said at startup, not at first use)."""


def _default_root() -> Path:
    # plugins/routerloop/config.py -> repository root (the package is installed editable).
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    root: Path = field(default_factory=_default_root)
    # Local state (embedded PostgreSQL, Airflow home, demo landing zone). Never committed.
    state_dir: Path | None = None
    # Landing zone that the hourly DAG reads and `routerloop land` defaults to.
    landing_dir: Path | None = None
    # Where versioned weight exports and their manifests are written.
    export_dir: Path | None = None
    # Where HTML reports and Great Expectations Data Docs are written.
    report_dir: Path | None = None
    # The organisation's roster and experiments (teams, agents, SLA policies, experiments; CSV files
    # documented in reference/README.md), loaded by `routerloop reference load`. Default: the demo's
    # roster in the repository's reference/ folder.
    reference_dir: Path | None = None
    # postgresql:// URL of the warehouse; unset means the embedded server under state_dir/pg.
    database_url: str | None = None
    # A file whose share of quarantined lines exceeds this fails its landing task (after quarantining).
    bad_line_limit: float = 0.05
    # Valid lines sent to PostgreSQL per COPY batch while landing; bounds landing memory.
    land_batch_rows: int = 20_000
    # Database connections landing files in parallel within one `land` call (PostgreSQL does most of
    # the work; one stream's dedupe steps still run one at a time, in file order). Three on two cores:
    # the third keeps both busy while another waits on a round trip or its dedupe turn.
    land_workers: int = 3
    # PostgreSQL temp_buffers of a landing session: a file's staged lines stay in memory up to this.
    land_temp_buffers: str = "64MB"
    # Raw gate freshness: the newest event of a batch is at most this many hours older than its end.
    freshness_max_lag_hours: float = 6.0
    # Stream freshness (routerloop.freshness): a stream whose newest landed event is older than this is
    # stale; the check fails and the notifier is called. Per-stream overrides, e.g.
    # "csat_ratings=360,sla_outcomes=240". `dbt source freshness` gets the same thresholds (one source).
    freshness_stale_after_minutes: int = 120
    freshness_stale_after_minutes_by_stream: str = ""
    # Who hears about stale streams: "log" (default), "webhook" (POSTs JSON to the URL below) or a
    # "module:callable" taking a FreshnessReport. A webhook URL alone selects the webhook notifier.
    freshness_notifier: str = "log"
    freshness_webhook_url: str | None = None
    freshness_webhook_timeout_seconds: float = 10.0
    # Days of raw partitions created ahead of the newest landed day.
    raw_partitions_ahead_days: int = 1
    # Threads used by dbt.
    dbt_threads: int = 4
    # Data interval lookback for incremental dbt models is a dbt var (`lookback_days`).
    # Airflow. The hourly DAG runs on this cron and lands the previous full hour (routerloop.windows).
    hourly_landing_cron: str = "5 * * * *"
    # The daily DAG runs at the end of each UTC day; its data interval is that day. Its first task waits
    # (checking every poke interval, giving up after the timeout) until the hourly DAG landed every hour.
    daily_feedback_cron: str = "0 0 * * *"
    daily_landing_poke_seconds: float = 300.0
    daily_landing_timeout_seconds: float = 6 * 3600.0
    # The dbt manifest `routerloop build --parse` writes, for tools that read a project's manifest. Kept apart
    # from dbt's target/ so that no dbt run rewrites it while a reader reads it.
    dbt_manifest_path: Path | None = None
    # Runs of one DAG in flight at once; bounds warehouse load while catching up or backfilling.
    airflow_max_active_runs: int = 4
    # Retries of tasks that can hit transient errors (gates and dbt tests never retry); the delay is
    # multiplied by the backoff factor after each try, up to the maximum.
    airflow_retries: int = 3
    airflow_retry_delay_seconds: float = 60.0
    airflow_retry_backoff: float = 2.0
    airflow_max_retry_delay_seconds: float = 900.0
    # How long a local Airflow process waits for SQLite's write lock before "database is locked": the
    # scheduler writes often, and a CLI command (`backfill create`, `dags unpause`) must queue behind it.
    airflow_sqlite_busy_timeout_seconds: float = 60.0
    # Airflow pools (created with the metadata database, routerloop.airflow_env), so that landing and dbt
    # never starve each other: a backfill's landing tasks fill at most the landing pool's slots and leave
    # the rest of the executor to dbt, and a long dbt build never holds more than the dbt pool's slots.
    airflow_landing_pool: str = "routerloop_landing"
    airflow_landing_pool_slots: int = 3
    airflow_dbt_pool: str = "routerloop_dbt"
    airflow_dbt_pool_slots: int = 1
    # Executor of `routerloop airflow`: "local" (SQLite metadata, one task at a time) or "celery" (README,
    # "Deploy and scale out"): metadata in PostgreSQL at airflow_metadata_url, a broker at
    # celery_broker_url or, unset, one the stack starts itself on a free loopback port, and
    # celery_workers workers running celery_worker_concurrency tasks each.
    airflow_executor: str = "local"
    airflow_metadata_url: str | None = None
    airflow_parallelism: int = 8
    celery_broker_url: str | None = None
    celery_workers: int = 2
    celery_worker_concurrency: int = 2
    # Security and privacy (README, "Security and privacy").
    # Prefix of the PostgreSQL roles `routerloop db grant` creates: <prefix>_pipeline, _analyst, _router.
    role_prefix: str = "routerloop"
    # Key of the HMAC-SHA256 that pseudonymizes customer and actor ids before they leave raw. Never in
    # the repository: from the environment (ROUTERLOOP_HMAC_KEY, e.g. filled from a secrets backend);
    # unset outside production, a key generated once into state_dir/hmac.key is used.
    hmac_key: str | None = field(default=None, repr=False)
    # Production: a missing hmac_key is an error when the settings are read (at every start).
    production: bool = False
    # Personal columns of raw rows older than this many days are nulled by `routerloop retention`.
    retention_days: int = 90
    # The API (routerloop.api; README, "Security and privacy" > "API"). `routerloop serve` binds this host
    # and port; as an Airflow plugin the app is mounted under api_url_prefix of the Airflow API server.
    api_host: str = "127.0.0.1"
    api_port: int = 8090
    api_url_prefix: str = "/routerloop"
    # Rows per page of the list endpoints: the default, and the most a client may ask for (?limit=).
    api_page_size: int = 200
    api_max_page_size: int = 1000
    # Database connections of one API process (a pool; requests beyond it wait for a free one, up to the timeout).
    api_pool_min_size: int = 1
    api_pool_max_size: int = 8
    api_pool_timeout_seconds: float = 10.0
    # `routerloop simulate` (routerloop.loop): days simulated, decisions per hour (the demo's volume),
    # the first simulated day, and the paired bootstrap resamples of the MTTR quantile differences.
    simulate_days: int = 14
    simulate_decisions_per_hour: int = 500
    simulate_start: str = "2026-11-01"
    simulate_bootstrap: int = 1000

    def __post_init__(self) -> None:
        state = self.state_dir or self.root / ".routerloop"
        object.__setattr__(self, "state_dir", Path(state))
        object.__setattr__(self, "landing_dir", Path(self.landing_dir or state / "landing"))
        object.__setattr__(self, "export_dir", Path(self.export_dir or self.root / "exports"))
        object.__setattr__(self, "reference_dir", Path(self.reference_dir or self.root / "reference"))
        object.__setattr__(self, "report_dir", Path(self.report_dir or self.root / "reports"))
        object.__setattr__(self, "dbt_manifest_path",
                           Path(self.dbt_manifest_path or Path(state) / "dbt" / "manifest.json"))
        if self.production and not self.hmac_key:
            raise ConfigError(
                f"production mode needs {ENV_PREFIX}HMAC_KEY: customer and actor ids cannot be pseudonymized"
                " without it (outside production a local key is generated under the state folder)"
            )
        if not 1 <= self.api_page_size <= self.api_max_page_size:
            raise ConfigError(f"api_page_size {self.api_page_size} must be between 1 and api_max_page_size"
                              f" ({self.api_max_page_size})")
        if self.airflow_executor not in ("local", "celery"):
            raise ConfigError(f"airflow_executor {self.airflow_executor!r}: \"local\" or \"celery\"")
        if self.airflow_executor == "celery" and not self.airflow_metadata_url:
            raise ConfigError(f"airflow_executor celery needs {ENV_PREFIX}AIRFLOW_METADATA_URL (a PostgreSQL database"
                              " for Airflow's metadata: SQLite serves one process at a time)")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", self.role_prefix):  # dbt's grants name roles unquoted
            raise ConfigError(f"role_prefix {self.role_prefix!r}: lower-case letters, digits and _, starting with a letter")

    # Folders of the repository and of the local state, derived from root and state_dir.
    dbt_project_dir = property(lambda self: self.root / "dbt_project")
    expectations_dir = property(lambda self: self.root / "expectations")
    pg_dir = property(lambda self: self.state_dir / "pg")
    airflow_home = property(lambda self: self.state_dir / "airflow")


def _coerce(raw: str, current: object, annotation: str) -> object:
    if "Path" in annotation:
        return Path(raw)
    if isinstance(current, bool):
        return raw.lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    return raw


@cache
def settings() -> Settings:
    """Settings from defaults overridden by ROUTERLOOP_* environment variables (read once)."""
    defaults = Settings()
    overrides: dict[str, object] = {}
    for f in fields(Settings):
        raw = os.environ.get(ENV_PREFIX + f.name.upper())
        if raw not in (None, ""):
            overrides[f.name] = _coerce(raw, getattr(defaults, f.name), str(f.type))
    return Settings(**overrides) if overrides else defaults


def reload_settings() -> Settings:
    """Forget cached settings, e.g. after a test changes the environment."""
    settings.cache_clear()
    dbt_vars.cache_clear()
    return settings()


@cache
def dbt_vars() -> dict:
    """The `vars:` block of dbt_project.yml: the single home of analytics settings."""
    import yaml

    project = yaml.safe_load((settings().dbt_project_dir / "dbt_project.yml").read_text())
    return dict(project.get("vars") or {})


def dbt_var(name: str):
    """One analytics setting from dbt_project.yml; a missing name is a programming error."""
    values = dbt_vars()
    if name not in values:
        raise KeyError(f"dbt var {name!r} is not defined in dbt_project/dbt_project.yml")
    return values[name]
