"""A/B experiments: `experiments.csv` of the reference folder (setting `reference_dir`), loaded into the
warehouse with the rest of the roster by `routerloop reference load` (routerloop.reference).

One row per variant. A variant names either a weight strategy (a key of the dbt var `weight_strategies`)
or a rule version (`v2.3`), so weight A/B tests and rule-version A/B tests share the machinery: the
router stamps each decision with `experimentId` + `variant`, and `marts.ab_results` compares the
variants. Turning an experiment on or off is an edit of `enabled` in that file, then a reference load.

Columns: experiment_id, variant, variant_kind (weight_strategy | rule_version), traffic_share,
is_control, starts_at, ends_at (ISO 8601 with offset; the window is [starts_at, ends_at)),
primary_metric, secondary_metrics and guardrail_metrics (';'-separated; may be empty),
min_sample_per_variant and min_relative_lift (empty -> dbt vars ab_default_*), enabled. Every column
except variant, variant_kind, traffic_share and is_control describes the experiment and must be equal
on all of its rows. The known metrics and their directions are the dbt var `ab_metric_directions`.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from routerloop.config import dbt_var, settings

COLUMNS = (
    "experiment_id", "variant", "variant_kind", "traffic_share", "is_control", "starts_at", "ends_at",
    "primary_metric", "secondary_metrics", "guardrail_metrics", "min_sample_per_variant",
    "min_relative_lift", "enabled",
)
# Columns that describe the experiment, not the variant: equal on every row of an experiment.
EXPERIMENT_LEVEL = (
    "starts_at", "ends_at", "primary_metric", "secondary_metrics", "guardrail_metrics",
    "min_sample_per_variant", "min_relative_lift", "enabled",
)
VARIANT_KINDS = ("weight_strategy", "rule_version")
METRIC_ROLES = ("primary", "secondary", "guardrail")
EXPERIMENT_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RULE_VERSION_RE = re.compile(r"^v\d+(\.\d+)*$")
BOOLEANS = {"true": True, "false": False}


class ExperimentConfigError(ValueError):
    """experiments.csv breaks a rule; the message lists every problem with its file and line."""


class UnknownExperimentError(LookupError):
    """No experiment with that id in experiments.csv."""


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # weight_strategy | rule_version
    traffic_share: float
    is_control: bool


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    variants: tuple[Variant, ...]  # in file order
    starts_at: datetime
    ends_at: datetime  # exclusive
    primary_metric: str
    secondary_metrics: tuple[str, ...]
    guardrail_metrics: tuple[str, ...]
    min_sample_per_variant: int
    min_relative_lift: float
    enabled: bool

    @property
    def kind(self) -> str:
        return self.variants[0].kind

    @property
    def control(self) -> Variant:
        return next(v for v in self.variants if v.is_control)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"experiment {self.experiment_id!r} has no variant {name!r}")

    def metric_roles(self) -> dict[str, str]:
        roles = {self.primary_metric: "primary"}
        roles.update(dict.fromkeys(self.secondary_metrics, "secondary"))
        roles.update(dict.fromkeys(self.guardrail_metrics, "guardrail"))
        return roles

    def is_running(self, at: datetime) -> bool:
        """Enabled and `at` lies in [starts_at, ends_at)."""
        return self.enabled and self.starts_at <= at < self.ends_at

    def assign(self, unit_id: str) -> Variant:
        """Deterministic assignment of a unit (e.g. a ticket id) by its hash bucket over the shares.

        The same unit always gets the same variant (consistent hashing, as the rule-version A/B design
        prescribes), and the buckets follow the configured traffic shares.
        """
        digest = hashlib.sha256(f"{self.experiment_id}:{unit_id}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64
        cumulative = 0.0
        for v in self.variants:
            cumulative += v.traffic_share
            if bucket < cumulative:
                return v
        return self.variants[-1]  # rounding of shares that sum to 1 within the tolerance

    def as_dict(self) -> dict:
        return {
            "experiment_id": self.experiment_id,
            "kind": self.kind,
            "enabled": self.enabled,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "primary_metric": self.primary_metric,
            "secondary_metrics": list(self.secondary_metrics),
            "guardrail_metrics": list(self.guardrail_metrics),
            "metric_directions": {m: metric_directions()[m] for m in self.metric_roles()},
            "min_sample_per_variant": self.min_sample_per_variant,
            "min_relative_lift": self.min_relative_lift,
            "variants": [
                {"variant": v.name, "traffic_share": v.traffic_share, "is_control": v.is_control}
                for v in self.variants
            ],
        }


def experiments_path() -> Path:
    return settings().reference_dir / "experiments.csv"


def metric_directions() -> dict[str, str]:
    """Known A/B metrics -> `lower` or `higher` (the direction that is better), from dbt var ab_metric_directions."""
    return dict(dbt_var("ab_metric_directions"))


def load_experiments(path: Path | None = None) -> dict[str, Experiment]:
    """Read and validate experiments.csv; raise ExperimentConfigError listing every problem."""
    path = Path(path or experiments_path())
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentConfigError(f"{path}: experiments config not found") from None
    reader = csv.DictReader(text.splitlines())
    header = tuple(reader.fieldnames or ())
    if header != COLUMNS:
        raise ExperimentConfigError(
            f"{path}: header must be exactly {','.join(COLUMNS)} (got {','.join(header) or 'nothing'})"
        )
    rows = [(line, row) for line, row in enumerate(reader, start=2)]
    experiments, problems = parse_rows(rows)
    if problems:
        listing = "\n".join(f"  {path.name}:{p}" for p in problems)
        raise ExperimentConfigError(f"{path}: {len(problems)} problem(s):\n{listing}")
    return experiments


def get_experiment(experiment_id: str, path: Path | None = None) -> Experiment:
    experiments = load_experiments(path)
    if experiment_id not in experiments:
        known = ", ".join(sorted(experiments)) or "none"
        raise UnknownExperimentError(f"no experiment {experiment_id!r} in experiments.csv (known: {known})")
    return experiments[experiment_id]


def running_experiments(at: datetime, path: Path | None = None) -> list[Experiment]:
    """Enabled experiments whose window contains `at` (what the router assigns traffic to)."""
    return [e for e in load_experiments(path).values() if e.is_running(at)]


# --------------------------------------------------------------------------- parsing and validation


def parse_rows(rows: list[tuple[int, dict]]) -> tuple[dict[str, Experiment], list[str]]:
    """Experiments from (line number, row) pairs; each problem reads `<line>: <what is wrong>`."""
    problems: list[str] = []
    directions = metric_directions()
    strategies = set(dbt_var("weight_strategies") or {})
    by_id: dict[str, list[tuple[int, dict]]] = {}
    for line, row in rows:
        if None in row or any(v is None for v in row.values()):
            problems.append(f"{line}: expected {len(COLUMNS)} fields")
            continue
        row = {k: v.strip() for k, v in row.items()}
        if not EXPERIMENT_ID_RE.match(row["experiment_id"]):
            problems.append(f"{line}: experiment_id {row['experiment_id']!r} must match {EXPERIMENT_ID_RE.pattern}")
            continue
        by_id.setdefault(row["experiment_id"], []).append((line, row))

    experiments: dict[str, Experiment] = {}
    for experiment_id, group in by_id.items():
        before = len(problems)
        variants = [_variant(line, row, strategies, problems) for line, row in group]
        first_line, first = group[0]
        for line, row in group[1:]:
            differing = [c for c in EXPERIMENT_LEVEL if row[c] != first[c]]
            if differing:
                problems.append(
                    f"{line}: {experiment_id}: {', '.join(differing)} differ from line {first_line}; "
                    "experiment-level columns must be equal on every variant row"
                )
        settings_ = _experiment_settings(first_line, first, directions, problems)
        names = [row["variant"] for _, row in group]
        prefix = f"{first_line}: {experiment_id}:"
        if len(group) < 2:
            problems.append(f"{prefix} needs at least two variants (a control and a treatment)")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"{prefix} duplicate variant(s) {', '.join(duplicates)}")
        if None not in variants:
            controls = [v.name for v in variants if v.is_control]
            if len(controls) != 1:
                problems.append(f"{prefix} needs exactly one control variant (is_control = true), has {len(controls)}")
            total = math.fsum(v.traffic_share for v in variants)
            if abs(total - 1.0) > float(dbt_var("float_tolerance")):
                problems.append(f"{prefix} traffic shares sum to {total:g}, must sum to 1")
            kinds = sorted({v.kind for v in variants})
            if len(kinds) > 1:
                problems.append(f"{prefix} mixes variant kinds {', '.join(kinds)}; an experiment compares one kind")
        if len(problems) == before and settings_ is not None:
            experiments[experiment_id] = Experiment(experiment_id=experiment_id, variants=tuple(variants), **settings_)

    problems += _overlaps(experiments, {eid: group[0][0] for eid, group in by_id.items()})
    return experiments, problems


def _variant(line: int, row: dict, strategies: set[str], problems: list[str]) -> Variant | None:
    prefix = f"{line}: {row['experiment_id']}/{row['variant'] or '?'}:"
    ok = True
    name, kind = row["variant"], row["variant_kind"]
    if not name:
        problems.append(f"{prefix} variant is empty")
        ok = False
    if kind not in VARIANT_KINDS:
        problems.append(f"{prefix} variant_kind {kind!r} must be one of {', '.join(VARIANT_KINDS)}")
        ok = False
    elif kind == "weight_strategy" and name and name not in strategies:
        problems.append(
            f"{prefix} weight strategy {name!r} is not defined in dbt var weight_strategies "
            f"(defined: {', '.join(sorted(strategies)) or 'none'})"
        )
        ok = False
    elif kind == "rule_version" and name and not RULE_VERSION_RE.match(name):
        problems.append(f"{prefix} rule version {name!r} must look like v2.3")
        ok = False
    share = _float(row["traffic_share"])
    if share is None or not 0.0 < share <= 1.0:
        problems.append(f"{prefix} traffic_share {row['traffic_share']!r} must be a number in (0, 1]")
        ok = False
    is_control = BOOLEANS.get(row["is_control"].lower())
    if is_control is None:
        problems.append(f"{prefix} is_control {row['is_control']!r} must be true or false")
        ok = False
    return Variant(name, kind, share, is_control) if ok else None


def _experiment_settings(line: int, row: dict, directions: dict[str, str], problems: list[str]) -> dict | None:
    prefix = f"{line}: {row['experiment_id']}:"
    before = len(problems)
    starts_at, ends_at = _timestamp(row["starts_at"]), _timestamp(row["ends_at"])
    for column, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is None:
            problems.append(f"{prefix} {column} {row[column]!r} must be an ISO 8601 timestamp with an offset")
    if starts_at and ends_at and not starts_at < ends_at:
        problems.append(f"{prefix} starts_at {row['starts_at']} must be before ends_at {row['ends_at']}")

    primary = row["primary_metric"]
    secondary = _metric_list(row["secondary_metrics"])
    guardrail = _metric_list(row["guardrail_metrics"])
    listed = [primary, *secondary, *guardrail]
    unknown = [m for m in listed if m not in directions]
    if not primary:
        problems.append(f"{prefix} primary_metric is empty")
    elif unknown:
        problems.append(
            f"{prefix} unknown metric(s) {', '.join(unknown)} (known: {', '.join(sorted(directions))}, "
            "from dbt var ab_metric_directions)"
        )
    repeated = sorted({m for m in listed if listed.count(m) > 1})
    if repeated:
        problems.append(f"{prefix} metric(s) {', '.join(repeated)} listed more than once; each metric has one role")

    min_sample = _int(row["min_sample_per_variant"], dbt_var("ab_default_min_sample_per_variant"))
    if min_sample is None or min_sample < 2:
        problems.append(f"{prefix} min_sample_per_variant {row['min_sample_per_variant']!r} must be an integer >= 2")
    min_lift = _float(row["min_relative_lift"], dbt_var("ab_default_min_relative_lift"))
    if min_lift is None or min_lift < 0:
        problems.append(f"{prefix} min_relative_lift {row['min_relative_lift']!r} must be a number >= 0")
    enabled = BOOLEANS.get(row["enabled"].lower())
    if enabled is None:
        problems.append(f"{prefix} enabled {row['enabled']!r} must be true or false")
    if len(problems) > before:
        return None
    return {
        "starts_at": starts_at, "ends_at": ends_at, "primary_metric": primary,
        "secondary_metrics": secondary, "guardrail_metrics": guardrail,
        "min_sample_per_variant": min_sample, "min_relative_lift": min_lift, "enabled": enabled,
    }


def _overlaps(experiments: dict[str, Experiment], lines: dict[str, int]) -> list[str]:
    """A decision carries one experimentId: two enabled experiments must not run at the same time."""
    problems = []
    enabled = sorted((e for e in experiments.values() if e.enabled), key=lambda e: e.starts_at)
    for i, a in enumerate(enabled):
        for b in enabled[i + 1:]:
            if b.starts_at < a.ends_at:
                problems.append(
                    f"{lines[b.experiment_id]}: {b.experiment_id}: enabled and overlapping {a.experiment_id} "
                    f"(a decision carries one experimentId; end one before the other starts)"
                )
    return problems


def _metric_list(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(";") if m.strip())


def _timestamp(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _float(text: str, default: float | None = None) -> float | None:
    if text == "" and default is not None:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: str, default: int | None = None) -> int | None:
    if text == "" and default is not None:
        return int(default)
    try:
        return int(text)
    except ValueError:
        return None
