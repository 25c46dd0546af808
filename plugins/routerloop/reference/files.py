"""The reference folder: read and validate the organisation's roster and experiments (reference/README.md).

`read_roster(directory)` returns a typed `Roster` or raises `RosterError` listing every problem, each with
the file, the line and the rule it breaks (`teams.csv:4: [duplicate] ...`). Nothing is loaded from a
folder with a problem. The experiments' own rules live in routerloop.experiments and are reused here.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from routerloop import contract, experiments
from routerloop.config import settings

# Column types: how a cell is checked and converted (an empty cell is None).
ID, TEXT, DATE, POSITIVE_INT, SHARE, TIER = "id", "text", "date", "positive integer", "share", "tier"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = True


# File name -> its columns (any order in the file; no other column is allowed).
FILES: dict[str, tuple[Column, ...]] = {
    "teams.csv": (
        Column("team_id", ID), Column("team_name", TEXT), Column("active_from", DATE),
        Column("active_to", DATE, required=False),
    ),
    "agents.csv": (
        Column("agent_id", ID), Column("team_id", ID), Column("active_from", DATE),
        Column("active_to", DATE, required=False),
    ),
    "sla_policies.csv": (
        Column("sla_policy", ID), Column("tier", TIER), Column("first_response_minutes", POSITIVE_INT),
        Column("resolve_minutes", POSITIVE_INT), Column("warn_at_share", SHARE),
    ),
    # Checked by routerloop.experiments (types and rules); every column must be present.
    "experiments.csv": tuple(Column(name, TEXT, required=False) for name in experiments.COLUMNS),
}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1 is the header; 0 when the file as a whole is the problem
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.message}"


class RosterError(ValueError):
    """The reference folder breaks a rule; `problems` lists each with its file, line and rule."""

    def __init__(self, directory: Path, problems: list[Problem]):
        self.directory = directory
        self.problems = problems
        listing = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{directory}: {len(problems)} problem(s), nothing loaded:\n{listing}")


@dataclass
class Roster:
    """The validated folder: typed rows per file (with their line numbers), and the files' digests."""

    directory: Path
    teams: list[dict] = field(default_factory=list)
    agents: list[dict] = field(default_factory=list)  # one row per membership period
    sla_policies: list[dict] = field(default_factory=list)
    experiment_rows: list[dict] = field(default_factory=list)
    experiments: dict[str, experiments.Experiment] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)  # name -> {sha256, rows}

    @property
    def checksum(self) -> str:
        """sha256 over the files' names and digests: equal folders have equal checksums."""
        text = "\n".join(f"{name} {info['sha256']}" for name, info in sorted(self.files.items()))
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict:
        return {
            "teams": len(self.teams),
            "agents": len({a["agent_id"] for a in self.agents}),
            "membership_periods": len(self.agents),
            "sla_policies": len(self.sla_policies),
            "experiments": len(self.experiments),
        }


def read_roster(directory: Path | None = None) -> Roster:
    """Read and validate every file of the reference folder; raise RosterError listing every problem."""
    directory = Path(directory or settings().reference_dir)
    roster = Roster(directory)
    problems: list[Problem] = []
    raw: dict[str, list[tuple[int, dict]]] = {}
    for name, columns in FILES.items():
        rows = _read_csv(directory / name, columns, problems)
        if rows is not None:
            raw[name] = rows
            content = (directory / name).read_bytes()
            roster.files[name] = {"sha256": hashlib.sha256(content).hexdigest(), "rows": len(rows)}
    for name in ("teams.csv", "agents.csv", "sla_policies.csv"):
        typed = [_typed(name, line, row, problems) for line, row in raw.get(name, [])]
        setattr(roster, name.removesuffix(".csv"), [r for r in typed if r is not None])
    _check_teams(roster.teams, problems)
    _check_agents(roster.agents, {t["team_id"] for t in roster.teams}, "teams.csv" in raw, problems)
    _check_sla_policies(roster.sla_policies, problems)
    if "experiments.csv" in raw:
        _check_experiments(roster, raw["experiments.csv"], problems)
    for name in ("teams.csv", "sla_policies.csv"):
        if name in raw and not raw[name]:
            problems.append(Problem(name, 0, "empty", "needs at least one row"))
    if problems:
        raise RosterError(directory, sorted(problems, key=lambda p: (list(FILES).index(p.file), p.line)))
    return roster


# --------------------------------------------------------------------------- reading


def _read_csv(path: Path, columns: tuple[Column, ...], problems: list[Problem]) -> list[tuple[int, dict]] | None:
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        problems.append(Problem(name, 0, "missing_file", f"{path} does not exist"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 0, "not_utf8", f"the file is not UTF-8 ({exc.reason} at byte {exc.start})"))
        return None
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    expected = [c.name for c in columns]
    bad_header = False
    for column in expected:
        if column not in header:
            problems.append(Problem(name, 1, "missing_column", f"column {column!r} is missing (columns: {', '.join(expected)})"))
            bad_header = True
    for column in header:
        if column not in expected:
            problems.append(Problem(name, 1, "unknown_column", f"column {column!r} is not one of {', '.join(expected)}"))
            bad_header = True
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(Problem(name, 1, "duplicate_column", f"column(s) {', '.join(repeated)} appear more than once"))
        bad_header = True
    if bad_header:
        return None
    rows = []
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue  # blank lines are allowed
        if len(fields) != len(header):
            problems.append(Problem(name, line, "field_count", f"{len(fields)} fields, the header has {len(header)}"))
            continue
        rows.append((line, {h: f.strip() for h, f in zip(header, fields, strict=True)}))
    return rows


def _typed(name: str, line: int, row: dict, problems: list[Problem]) -> dict | None:
    """The row with typed values (None for empty cells), or None after recording its problems."""
    typed = {"line": line}
    before = len(problems)
    for column in FILES[name]:
        text = row[column.name]
        if text == "":
            if column.required:
                problems.append(Problem(name, line, "required", f"{column.name} is empty"))
            typed[column.name] = None
            continue
        value = _convert(column.kind, text)
        if value is None:
            problems.append(Problem(name, line, "type", f"{column.name} {text!r} is not {_KIND_TEXT[column.kind]}"))
        typed[column.name] = value
    if len(problems) > before:
        return None
    if "active_to" in typed and typed["active_to"] is not None and typed["active_to"] < typed["active_from"]:
        problems.append(Problem(name, line, "period_order",
                                f"active_to {typed['active_to']} is before active_from {typed['active_from']}"))
        return None
    return typed


_KIND_TEXT = {
    ID: f"an id (at most {contract.MAX_ID_LENGTH} characters)",
    TEXT: "text",
    DATE: "a date YYYY-MM-DD",
    POSITIVE_INT: "a whole number above 0",
    SHARE: "a number strictly between 0 and 1",
    TIER: f"one of {', '.join(contract.TIERS)}",
}


def _convert(kind: str, text: str):
    if kind == ID:
        return text if len(text) <= contract.MAX_ID_LENGTH else None
    if kind == TEXT:
        return text
    if kind == DATE:
        try:
            return date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            return None
    if kind == POSITIVE_INT:
        return int(text) if text.isdigit() and int(text) > 0 else None
    if kind == SHARE:
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) and 0 < value < 1 else None
    if kind == TIER:
        return text if text in contract.TIERS else None
    raise ValueError(f"unknown column kind {kind!r}")


# --------------------------------------------------------------------------- rules across rows


def _first_lines(rows: list[dict], key: str, name: str, problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row[key] in seen:
            problems.append(Problem(name, row["line"], "duplicate", f"{key} {row[key]!r} is already on line {seen[row[key]]}"))
        else:
            seen[row[key]] = row["line"]


def _check_teams(teams: list[dict], problems: list[Problem]) -> None:
    _first_lines(teams, "team_id", "teams.csv", problems)


def _check_agents(agents: list[dict], team_ids: set[str], teams_read: bool, problems: list[Problem]) -> None:
    by_agent: dict[str, list[dict]] = {}
    for row in agents:
        if teams_read and row["team_id"] not in team_ids:
            problems.append(Problem("agents.csv", row["line"], "unknown_team",
                                    f"team_id {row['team_id']!r} of agent {row['agent_id']!r} is not in teams.csv"))
        by_agent.setdefault(row["agent_id"], []).append(row)
    # An agent is in one team at a time: its membership periods must not overlap.
    for agent_id, periods in by_agent.items():
        periods.sort(key=lambda r: r["active_from"])
        for earlier, later in zip(periods, periods[1:], strict=False):
            if earlier["active_to"] is None or later["active_from"] <= earlier["active_to"]:
                until = earlier["active_to"] or "open end"
                problems.append(Problem(
                    "agents.csv", later["line"], "overlapping_periods",
                    f"agent {agent_id!r} from {later['active_from']} overlaps its period on line {earlier['line']}"
                    f" ({earlier['active_from']} to {until}); an agent is in one team at a time",
                ))


def _check_sla_policies(policies: list[dict], problems: list[Problem]) -> None:
    _first_lines(policies, "sla_policy", "sla_policies.csv", problems)
    for row in policies:
        if row["first_response_minutes"] > row["resolve_minutes"]:
            problems.append(Problem("sla_policies.csv", row["line"], "sla_targets",
                                    f"first_response_minutes {row['first_response_minutes']} exceeds resolve_minutes "
                                    f"{row['resolve_minutes']}"))


def _check_experiments(roster: Roster, rows: list[tuple[int, dict]], problems: list[Problem]) -> None:
    parsed, found = experiments.parse_rows(rows)
    for text in found:
        line, _, message = text.partition(": ")
        problems.append(Problem("experiments.csv", int(line), "experiment", message))
    roster.experiments = parsed
    for line, row in rows:
        experiment = parsed.get(row["experiment_id"])
        if experiment is None:
            continue
        variant = experiment.variant(row["variant"])
        roster.experiment_rows.append({
            "line": line,
            "experiment_id": experiment.experiment_id,
            "variant": variant.name,
            "variant_kind": variant.kind,
            "traffic_share": variant.traffic_share,
            "is_control": variant.is_control,
            "starts_at": experiment.starts_at,
            "ends_at": experiment.ends_at,
            "primary_metric": experiment.primary_metric,
            "secondary_metrics": row["secondary_metrics"] or None,
            "guardrail_metrics": row["guardrail_metrics"] or None,
            # empty means the dbt var's default (ab_default_*), as the models read it
            "min_sample_per_variant": int(row["min_sample_per_variant"]) if row["min_sample_per_variant"] else None,
            "min_relative_lift": float(row["min_relative_lift"]) if row["min_relative_lift"] else None,
            "enabled": experiment.enabled,
        })

