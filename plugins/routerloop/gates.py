"""Great Expectations quality gates: suites are data (expectations/*.json), this module only runs them.

A gate = one suite validated against one batch (a query over the warehouse) through the GX Core 1.x
API: an ephemeral context, a PostgreSQL data source, a query asset, a validation definition and a
checkpoint that also updates Data Docs (settings().report_dir / "data_docs"). Every run appends a row to
`audit.gate_results`; the export refuses a weights version without a passing row.

Thresholds are not written into the suites: they are `$PARAMETER`s filled here from the one place they
live (config.settings() or the dbt vars), so a changed cap or limit never drifts from the gate.
Raw suites are generated from routerloop.contract (`routerloop gates write-suites`); a test keeps the
committed JSON equal to what the contract implies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from routerloop import contract, data_docs, db
from routerloop.config import dbt_var, settings
from routerloop.gate_results import WEIGHTS_SUITE, FailedExpectation, GateResult, record, weights_batch_id
from routerloop.warehouse.migrations import migrate
from routerloop.weight_rows import day_is_built, mart_digest

log = logging.getLogger(__name__)

RAW_SUITE_PREFIX = "raw_"
LANDING_FILES_SUITE = "raw_landed_files"
AB_RESULTS_SUITE = "marts_ab_results"
AB_SHARES_SUITE = "marts_ab_shares"
REFERENCE_GAPS_SUITE = "marts_reference_gaps"
DATA_DOCS_SITE = "routerloop"
GX_LOGGER = "great_expectations"
# The dbt models that say which rows a day of the marts must hold (the gates expect exactly those).
WEIGHT_KEYS_RELATION = "intermediate.int_routing_weight_keys_enumerated"
EXPERIMENT_WINDOWS_RELATION = "intermediate.int_experiment_windows_reported"

class GateFailed(RuntimeError):
    """Suites failed. The message's first line is one sentence naming them; the failed expectations with
    their observed values follow, one per line (the line a scheduler shows first is the summary)."""

    def __init__(self, failed: list[GateResult], validated: int | None = None):
        self.failed = failed
        self.summary = summarise_failures(failed, validated)
        lines = [self.summary]
        for result in failed:
            lines.append(f"gate {result.suite} failed for batch {result.batch} (gate_result_id {result.id}):")
            lines += [f"  - {f.expectation} {f.kwargs}: observed {f.observed}" for f in result.failed_expectations]
        super().__init__("\n".join(lines))


def summarise_warnings(results: list[GateResult]) -> str | None:
    """One sentence naming the gates that passed with warnings and what they observed (None: no warnings)."""
    warned = [r for r in results if r.warnings]
    if not warned:
        return None
    parts = "; ".join(
        f"{r.suite} on {r.batch}: " + ", ".join(f"{w.expectation} observed {w.observed}" for w in r.warnings)
        for r in warned
    )
    return f"{len(warned)} quality gate suite{'' if len(warned) == 1 else 's'} passed with warnings: {parts}."


def summarise_failures(failed: list[GateResult], validated: int | None = None) -> str:
    """One sentence: how many suites failed, which ones on which batch, and how many expectations each."""
    def count(n: int) -> str:
        return f"{n} failed expectation{'' if n == 1 else 's'}"

    suites = "; ".join(f"{r.suite} on {r.batch} ({count(len(r.failed_expectations))})" for r in failed)
    out_of = f" of {validated}" if validated is not None else ""
    plural = "" if (validated or len(failed)) == 1 else "s"  # "1 of 7 suites", "1 suite"
    return (f"{len(failed)}{out_of} quality gate suite{plural} failed: {suites}. "
            "Observed values below and in audit.gate_results.")


@dataclass(frozen=True)
class Batch:
    suite: str
    batch_id: str  # what this batch is, e.g. "router_decisions[2026-11-01T00:00,2026-11-02T00:00)"
    query: str
    parameters: dict
    # Digest of the data the batch stands for, recorded with the result (the export compares it).
    fingerprint: str | None = None


# --------------------------------------------------------------------------- suites as data


def suite_path(name: str) -> Path:
    return settings().expectations_dir / f"{name}.json"


def load_suite(name: str) -> dict:
    path = suite_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite {name!r} at {path}")
    return json.loads(path.read_text())


def _expectation(kind: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


def raw_suite(stream_name: str) -> dict:
    """The raw-batch suite a stream's contract implies: columns, keys, enums, ranges, freshness."""
    stream = contract.STREAMS[stream_name]
    columns = [f.column for f in stream.fields]
    expectations = [
        _expectation("expect_table_columns_to_match_set", column_set=columns, exact_match=False),
        _expectation("expect_table_row_count_to_be_between", min_value=1),
    ]
    key_columns = [stream.field(k).column for k in stream.key]
    if len(key_columns) == 1:
        expectations.append(_expectation("expect_column_values_to_be_unique", column=key_columns[0]))
    else:
        expectations.append(_expectation("expect_compound_columns_to_be_unique", column_list=key_columns))
    for f in stream.fields:
        if f.required:
            expectations.append(_expectation("expect_column_values_to_not_be_null", column=f.column))
        if f.kind == "enum":
            expectations.append(_expectation("expect_column_values_to_be_in_set", column=f.column, value_set=list(f.values)))
        if f.minimum is not None or f.maximum is not None:
            expectations.append(
                _expectation("expect_column_values_to_be_between", column=f.column,
                             min_value=f.minimum, max_value=f.maximum)
            )
    expectations.append(
        _expectation("expect_column_max_to_be_between", column=stream.field(stream.event_time).column,
                     min_value={"$PARAMETER": "freshness_min"})
    )
    return {
        "name": RAW_SUITE_PREFIX + stream_name,
        "expectations": expectations,
        "meta": {"generated_from": "routerloop.contract", "stream": stream_name},
    }


def landed_files_suite() -> dict:
    """Per batch of landed files: every file landed cleanly and under the bad-line limit."""
    return {
        "name": LANDING_FILES_SUITE,
        "expectations": [
            _expectation("expect_column_values_to_be_in_set", column="status", value_set=["loaded"]),
            _expectation("expect_column_max_to_be_between", column="quarantine_rate",
                         max_value={"$PARAMETER": "bad_line_limit"}),
            _expectation("expect_column_pair_values_to_be_equal", column_A="lines", column_B="accounted_lines"),
        ],
        "meta": {"generated_from": "routerloop.contract"},
    }


def generated_suites() -> dict[str, dict]:
    suites = {RAW_SUITE_PREFIX + name: raw_suite(name) for name in contract.STREAMS}
    suites[LANDING_FILES_SUITE] = landed_files_suite()
    return suites


def write_suites() -> list[Path]:
    """(Re)write the contract-derived suites into expectations/."""
    written = []
    for name, suite in generated_suites().items():
        path = suite_path(name)
        path.write_text(json.dumps(suite, indent=2) + "\n")
        written.append(path)
    return written


# --------------------------------------------------------------------------- batches


def raw_batches(start: datetime, end: datetime) -> list[Batch]:
    """One batch per stream plus the ledger batch, for partitions whose hour lies in [start, end)."""
    window = f"[{start.isoformat()},{end.isoformat()})"
    interval = f"_partition_hour >= '{start.isoformat()}' and _partition_hour < '{end.isoformat()}'"
    lag_hours = settings().freshness_max_lag_hours
    freshness_min = (end.timestamp() - lag_hours * 3600)
    batches = [
        Batch(
            suite=RAW_SUITE_PREFIX + name,
            batch_id=f"{name}{window}",
            query=f"select * from raw.{name} where {interval}",
            parameters={"freshness_min": datetime.fromtimestamp(freshness_min, tz=start.tzinfo).isoformat()},
        )
        for name in contract.STREAMS
    ]
    batches.append(
        Batch(
            suite=LANDING_FILES_SUITE,
            batch_id=f"landed_files{window}",
            # The newest ledger row of each path: an unreadable file that landed on a later try passes.
            query=(
                "select distinct on (path) path, stream, status, lines,"
                " loaded + duplicates + quarantined as accounted_lines,"
                " case when lines > 0 then quarantined::float8 / lines else 0 end as quarantine_rate"
                f" from raw.landed_files where partition_hour >= '{start.isoformat()}'"
                f" and partition_hour < '{end.isoformat()}' order by path, file_id desc"
            ),
            parameters={"bad_line_limit": settings().bad_line_limit},
        )
    )
    return batches


def weights_batch(as_of_date: date, url: str | None = None) -> Batch:
    """Every strategy x team x tier of the day, with its change against the version the router has now."""
    with db.connect(url or db.database_url()) as conn:
        migrate(conn)
        fingerprint = mart_digest(conn, as_of_date)
    base = float(dbt_var("weights_base"))
    cap = float(dbt_var("weights_step_cap"))
    day = as_of_date.isoformat()
    # The exported version may be several days older than the candidate: the cap compounds per day
    # between the two as-of dates (at least one day, e.g. when a day is re-gated after its export).
    query = f"""
        with grid as (
            select strategy, team_id, tier from {WEIGHT_KEYS_RELATION}
        ),
        current_export as (
            select w.strategy, w.team_id, w.tier, w.weight as exported_weight,
                greatest(1, '{day}'::date - v.as_of_date) as days_since_export
            from router.routing_weights as w
            inner join router.weight_versions as v on w.weights_version = v.weights_version
        ),
        candidate as (
            select * from marts.routing_weights where as_of_date = '{day}'::date
        ),
        compared as (
            select
                grid.strategy, grid.team_id, grid.tier,
                candidate.weight,
                -- a JSON null or an empty object explains nothing: count it as missing
                nullif(nullif(candidate.rationale, 'null'::jsonb), '{{}}'::jsonb) as rationale,
                case when candidate.as_of_date is null
                    then grid.strategy || '/' || grid.team_id || '/' || grid.tier end as missing_row,
                coalesce(candidate.weight / nullif(current_export.exported_weight, 0), 1.0) as change_ratio,
                coalesce(current_export.days_since_export, 1) as days_since_export
            from grid
            left join candidate using (strategy, team_id, tier)
            left join current_export using (strategy, team_id, tier)
        )
        select
            *,
            greatest(
                change_ratio - power(1 + {cap}, days_since_export),
                power(1 - {cap}, days_since_export) - change_ratio,
                0
            ) as cap_excess
        from compared
    """
    return Batch(
        suite=WEIGHTS_SUITE,
        batch_id=weights_batch_id(as_of_date),
        query=query,
        fingerprint=fingerprint,
        parameters={
            "weight_floor": float(dbt_var("weights_floor_ratio")) * base,
            "weight_ceiling": float(dbt_var("weights_ceiling_ratio")) * base,
            "float_tolerance": float(dbt_var("float_tolerance")),
        },
    )


def ab_batches(as_of_date: date) -> list[Batch]:
    """A/B results of the day: p-values and verdicts per row, and per experiment x metric the variants'
    traffic shares (present for every experiment that reports that day, summing to 1, one control)."""
    day = as_of_date.isoformat()
    tolerance = float(dbt_var("float_tolerance"))
    # The experiments whose reporting window holds the day must report; a missing one shows as a null
    # share_sum.
    shares = f"""
        with expected as (
            select experiment_id
            from {EXPERIMENT_WINDOWS_RELATION}
            where '{day}'::date between first_date and last_date
        ),
        reported as (
            select
                experiment_id, metric,
                sum(traffic_share) as share_sum,
                sum(case when is_control then 1 else 0 end) as controls
            from marts.ab_results
            where as_of_date = '{day}'::date
            group by experiment_id, metric
        )
        select coalesce(reported.experiment_id, expected.experiment_id) as experiment_id,
            reported.metric, reported.share_sum, reported.controls
        from expected
        full outer join reported on expected.experiment_id = reported.experiment_id
    """
    return [
        Batch(
            suite=AB_RESULTS_SUITE,
            batch_id=f"ab_results[{day}]",
            query=f"select * from marts.ab_results where as_of_date = '{day}'::date",
            parameters={},
        ),
        Batch(
            suite=AB_SHARES_SUITE,
            batch_id=f"ab_shares[{day}]",
            query=shares,
            parameters={"share_sum_min": 1 - tolerance, "share_sum_max": 1 + tolerance},
        ),
    ]


# --------------------------------------------------------------------------- running


def data_docs_dir() -> Path:
    return settings().report_dir / "data_docs"


def validate(batch: Batch, url: str | None = None) -> GateResult:
    """Validate one batch with its suite; record it in audit.gate_results; return the result."""
    url = url or db.database_url()
    with warnings.catch_warnings(), _gx_logs_warnings_only():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        from great_expectations.checkpoint import UpdateDataDocsAction

        context = _context()
        source = context.data_sources.add_postgres(
            name="warehouse", connection_string=url.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        # GX accepts only queries that start with SELECT; batches may start with a CTE.
        asset = source.add_query_asset(name=batch.suite, query=f"SELECT * FROM ({batch.query}) AS gate_batch")
        batch_definition = asset.add_batch_definition_whole_table(name=batch.batch_id)
        suite = context.suites.add(gx.ExpectationSuite(**_suite_kwargs(load_suite(batch.suite))))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch_definition, suite=suite, name=f"{batch.suite}:{batch.batch_id}")
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name=batch.suite, validation_definitions=[definition],
                          actions=[UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE])])
        )
        run = checkpoint.run(expectation_parameters=batch.parameters)
    validation = next(iter(run.run_results.values()))
    data_docs.make_offline(data_docs_dir(), validation_results_dir(), run, batch.batch_id)
    failed = [
        FailedExpectation(
            expectation=r.expectation_config.type,
            kwargs={k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            observed=_observed(r.result),
            severity=str(getattr(r.expectation_config.severity, "value", r.expectation_config.severity)),
        )
        for r in validation.results
        if not r.success
    ]
    # GX counts any failed expectation against the run; a gate fails only on critical ones.
    success = all(f.is_warning for f in failed)
    with db.connect(url) as conn:
        migrate(conn)
        result = record(
            conn, suite=batch.suite, batch=batch.batch_id, success=success,
            statistics=dict(validation.statistics), failed_expectations=failed, parameters=batch.parameters,
            data_docs_path=str(data_docs_dir() / "index.html"), batch_sha256=batch.fingerprint,
        )
    verdict = "passed" if result.success else "FAILED"
    if result.warnings:
        verdict += f" with {len(result.warnings)} warning(s)"
    log.info("gate %s %s: %s", batch.suite, batch.batch_id, verdict)
    return result


@contextlib.contextmanager
def _gx_logs_warnings_only():
    """Keep GX's INFO lines out of the logs while it runs; its warnings and errors still show.

    Importing GX logs "Skipping registering function ..." at INFO once per function of its public API
    (over 200 lines in a task log), and some of its modules set their own loggers to INFO.
    """
    saved: dict[logging.Logger, int] = {}

    def warnings_only(logger: logging.Logger) -> None:
        saved.setdefault(logger, logger.level)
        logger.setLevel(max(logger.level, logging.WARNING))

    warnings_only(logging.getLogger(GX_LOGGER))
    import great_expectations  # noqa: F401  (creates its loggers; the INFO lines of the import are now dropped)

    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith(GX_LOGGER + ".") and isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            warnings_only(logger)
    try:
        yield
    finally:
        for logger, level in saved.items():
            logger.setLevel(level)


def validation_results_dir() -> Path:
    return settings().report_dir / "gx_validation_results"


def _context():
    """An ephemeral GX context whose validation results persist on disk, so Data Docs list every run.

    Suites, validation definitions and checkpoints stay in memory (the suites' home is expectations/);
    only the results (and the Data Docs site built from them) accumulate in settings().report_dir.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    config = DataContextConfig(
        store_backend_defaults=defaults,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        data_docs_sites={
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir())},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    config.stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(validation_results_dir())},
    }
    return gx.get_context(mode="ephemeral", project_config=config)


def _suite_kwargs(suite: dict) -> dict:
    import great_expectations as gx

    expectations = [
        gx.expectations.registry.get_expectation_impl(e["type"])(
            **e["kwargs"], meta=e.get("meta") or {}, severity=e.get("severity", "critical")
        )
        for e in suite["expectations"]
    ]
    return {"name": suite["name"], "expectations": expectations, "meta": suite.get("meta") or {}}


def _observed(result: dict):
    if "observed_value" in result:
        return result["observed_value"]
    return {k: result[k] for k in ("unexpected_count", "partial_unexpected_list") if k in result}


def run_gates(batches: list[Batch], url: str | None = None, raise_on_failure: bool = True) -> list[GateResult]:
    """Validate every batch (all of them, so one report shows every failure), then fail if any failed."""
    results = [validate(b, url=url) for b in batches]
    failed = [r for r in results if not r.success]
    warned = summarise_warnings(results)
    if warned:
        log.warning("%s", warned)
    if failed and raise_on_failure:
        raise GateFailed(failed, validated=len(results))
    return results


def gate_raw(start: datetime, end: datetime, url: str | None = None,
             raise_on_failure: bool = True) -> list[GateResult]:
    return run_gates(raw_batches(start, end), url=url, raise_on_failure=raise_on_failure)


def ab_gate_batches(as_of_date: date, url: str | None = None) -> list[Batch]:
    """The A/B batches of the day as the marts gate validates them: with `min_rows`, 1 for a day the
    marts do not hold (so an empty day fails instead of passing with nothing to check), else 0 (a
    built day without a running experiment has no A/B rows, rightly)."""
    min_rows = _min_rows(as_of_date, url)
    return [replace(b, parameters={**b.parameters, "min_rows": min_rows}) for b in ab_batches(as_of_date)]


def _min_rows(as_of_date: date, url: str | None = None) -> int:
    """1 for a day the marts do not hold (a suite must not pass with nothing to check), else 0."""
    with db.connect(url or db.database_url()) as conn:
        return 0 if day_is_built(conn, as_of_date) else 1


def reference_gaps_batch(as_of_date: date, url: str | None = None) -> Batch:
    """The ids telemetry names and the roster does not know (marts.reference_gaps), seen in a span that
    holds the day (first_seen before its end, last_seen after its start). Its suite only warns about them:
    a new team or hire must not stop the loop, but it must be visible (an unknown team gets no routing
    weight). Like the A/B suites it fails a day the marts do not hold (`min_rows`)."""
    day = as_of_date.isoformat()
    return Batch(
        suite=REFERENCE_GAPS_SUITE,
        batch_id=f"reference_gaps[{day}]",
        query=(
            "select kind, id, kind || ':' || id as unknown_id, seen_rows, first_seen, last_seen"
            " from marts.reference_gaps"
            f" where first_seen < '{day}'::date + 1 and last_seen >= '{day}'::date"
        ),
        parameters={"min_rows": _min_rows(as_of_date, url)},
    )


def gate_marts(as_of_date: date, url: str | None = None, raise_on_failure: bool = True) -> list[GateResult]:
    batches = [weights_batch(as_of_date, url=url), *ab_gate_batches(as_of_date, url=url),
               reference_gaps_batch(as_of_date, url=url)]
    return run_gates(batches, url=url, raise_on_failure=raise_on_failure)
