"""Gate results: what a quality gate decided about a batch, as recorded in `audit.gate_results`.

routerloop.gates writes them; routerloop.export reads the newest result of a day's weights before it
publishes them. Both meet here, so neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

WEIGHTS_SUITE = "marts_routing_weights"
# An expectation of this severity (GX's `severity`, set per expectation in expectations/*.json) is
# reported when it fails but does not fail its gate; any other severity does.
WARNING_SEVERITIES = ("warning", "info")


def weights_batch_id(as_of_date: date) -> str:
    """The batch name under which the weights gate records a day's weights."""
    return f"routing_weights[{as_of_date.isoformat()}]"


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str  # the GX expectation type, e.g. expect_column_values_to_be_in_set
    kwargs: dict
    observed: object  # the observed value, or the unexpected count and examples
    severity: str = "critical"  # GX's severity: critical fails the gate, warning and info only report

    @property
    def is_warning(self) -> bool:
        return self.severity in WARNING_SEVERITIES


@dataclass(frozen=True)
class GateResult:
    id: int  # audit.gate_results.gate_result_id
    suite: str
    batch: str
    success: bool  # no failed expectation of severity critical (warnings do not fail a gate)
    statistics: dict = field(default_factory=dict)
    failed_expectations: list[FailedExpectation] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    data_docs_path: str | None = None

    @property
    def warnings(self) -> list[FailedExpectation]:
        """The failed expectations that only warn (the gate passed in spite of them)."""
        return [f for f in self.failed_expectations if f.is_warning]

    def summary(self) -> dict:
        """The few fields a scheduler shows for a gate (its XCom value)."""
        return {"id": self.id, "suite": self.suite, "batch": self.batch, "success": self.success,
                "warnings": len(self.warnings)}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RecordedGate:
    """A recorded verdict on a batch, as the export checks it."""

    id: int
    suite: str
    batch: str
    success: bool
    batch_sha256: str | None


_RECORDED = "select gate_result_id, suite, batch, success, batch_sha256 from audit.gate_results"


def record(conn, *, suite: str, batch: str, success: bool, statistics: dict,
           failed_expectations: list[FailedExpectation], parameters: dict, data_docs_path: str | None,
           batch_sha256: str | None) -> GateResult:
    """Append a validation to audit.gate_results and return it with its id."""
    failed = [asdict(f) for f in failed_expectations]
    gate_result_id = conn.execute(
        """
        insert into audit.gate_results
            (suite, batch, success, statistics, failed_expectations, parameters, data_docs_path, batch_sha256)
        values (%s, %s, %s, %s, %s, %s, %s, %s) returning gate_result_id
        """,
        (suite, batch, success, json.dumps(statistics, default=str), json.dumps(failed, default=str),
         json.dumps(parameters, default=str), data_docs_path, batch_sha256),
    ).fetchone()[0]
    return GateResult(id=gate_result_id, suite=suite, batch=batch, success=success, statistics=statistics,
                      failed_expectations=list(failed_expectations), parameters=parameters,
                      data_docs_path=data_docs_path)


def latest(conn, suite: str, batch_id: str) -> RecordedGate | None:
    """The newest gate result for this suite and batch, if any."""
    row = conn.execute(
        f"{_RECORDED} where suite = %s and batch = %s order by validated_at desc, gate_result_id desc limit 1",
        (suite, batch_id),
    ).fetchone()
    return RecordedGate(*row) if row else None


def get(conn, gate_result_id: int) -> RecordedGate | None:
    """The gate result with this id, if any."""
    row = conn.execute(f"{_RECORDED} where gate_result_id = %s", (gate_result_id,)).fetchone()
    return RecordedGate(*row) if row else None


def weights_gate_id(summaries: list[dict], as_of_date: date) -> int:
    """The id of the weights gate result of `as_of_date` among a marts gate run's summaries (its XCom)."""
    batch_id = weights_batch_id(as_of_date)
    ids = [s["id"] for s in summaries if s["suite"] == WEIGHTS_SUITE and s["batch"] == batch_id]
    if len(ids) != 1:
        raise ValueError(f"the marts gate run reported {len(ids)} {WEIGHTS_SUITE} results for {batch_id}, not one")
    return ids[0]
