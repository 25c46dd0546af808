"""The reference folder: validation (file, line, rule), atomic loads, membership history, the CLI, and the
marts attributing an agent to the team of the date after the roster changed."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from conftest import fresh_database, pointed_at

from routerloop import cli, reference
from routerloop.config import settings
from routerloop.reference import store

OPEN = store.OPEN_END


def roster_copy(tmp_path: Path, name: str = "roster") -> Path:
    """A copy of the demo's reference folder to edit."""
    folder = tmp_path / name
    shutil.copytree(settings().reference_dir, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def rows(folder: Path, file: str) -> list[dict]:
    with (folder / file).open(newline="") as handle:
        return list(csv.DictReader(handle))


def write(folder: Path, file: str, records: list[dict], header: list[str] | None = None) -> None:
    header = header or list(records[0])
    with (folder / file).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


def edit(folder: Path, file: str, change) -> None:
    records = rows(folder, file)
    header = list(records[0])
    result = change(records)  # edits in place, or returns the new list of rows
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        records = result
    write(folder, file, records, header)


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(reference.RosterError) as caught:
        reference.read_roster(folder)
    assert "nothing loaded" in str(caught.value)
    return [str(p) for p in caught.value.problems]


# --------------------------------------------------------------------------- validation


def test_the_shipped_roster_is_valid():
    roster = reference.read_roster()
    assert roster.summary() == {"teams": 6, "agents": 36, "membership_periods": 36, "sla_policies": 4,
                                "experiments": 1}
    assert set(roster.files) == set(reference.FILES)
    assert (settings().reference_dir / "README.md").exists()


def _duplicate_team(records):
    records.append(dict(records[0]))


def _overlap(records):
    # ag_billing_01 (line 2, open since 2026-01-01) gets a second period from 2026-06-01: line 38
    records.append({**records[0], "team_id": "team_platform", "active_from": "2026-06-01"})


BAD_CASES = {
    "duplicate team": ("teams.csv", _duplicate_team, "teams.csv:8: [duplicate] team_id 'team_billing' is already on line 2"),
    "overlapping periods": ("agents.csv", _overlap, "agents.csv:38: [overlapping_periods] agent 'ag_billing_01'"),
    "agent of an unknown team": (
        "agents.csv", lambda r: r[2].update(team_id="team_nowhere"),
        "agents.csv:4: [unknown_team] team_id 'team_nowhere' of agent 'ag_billing_03' is not in teams.csv",
    ),
    "active_to before active_from": (
        "agents.csv", lambda r: r[0].update(active_to="2025-12-31"),
        "agents.csv:2: [period_order] active_to 2025-12-31 is before active_from 2026-01-01",
    ),
    "a date that is not one": (
        "teams.csv", lambda r: r[1].update(active_from="01/02/2026"),
        "teams.csv:3: [type] active_from '01/02/2026' is not a date YYYY-MM-DD",
    ),
    "a required cell empty": ("teams.csv", lambda r: r[0].update(team_name=""), "teams.csv:2: [required] team_name is empty"),
    "a tier outside T1..T4": (
        "sla_policies.csv", lambda r: r[0].update(tier="T9"), "sla_policies.csv:2: [type] tier 'T9' is not one of T1, T2"
    ),
    "first response after resolution": (
        "sla_policies.csv", lambda r: r[3].update(first_response_minutes="5000"),
        "sla_policies.csv:5: [sla_targets] first_response_minutes 5000 exceeds resolve_minutes 4320",
    ),
    "experiment shares not summing to 1": (
        "experiments.csv", lambda r: r[1].update(traffic_share="0.4"),
        "experiments.csv:2: [experiment] exp_weights_2026_11: traffic shares sum to 0.9, must sum to 1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_each_broken_rule_is_named_with_its_file_and_line(tmp_path, case):
    file, change, expected = BAD_CASES[case]
    folder = roster_copy(tmp_path)
    edit(folder, file, change)
    found = problems_of(folder)
    assert any(p.startswith(expected) for p in found), found


def test_header_and_file_problems(tmp_path):
    folder = roster_copy(tmp_path)
    records = rows(folder, "teams.csv")
    write(folder, "teams.csv", [{**r, "region": "eu"} for r in records],
          ["team_id", "team_name", "active_from", "region"])  # active_to missing, region unknown
    (folder / "sla_policies.csv").unlink()
    (folder / "agents.csv").write_text((folder / "agents.csv").read_text() + "ag_x,team_billing\n")
    found = problems_of(folder)
    assert "teams.csv:1: [missing_column] column 'active_to' is missing" in found[0]
    assert any(p.startswith("teams.csv:1: [unknown_column] column 'region'") for p in found)
    assert any(p.startswith("agents.csv:38: [field_count] 2 fields, the header has 4") for p in found)
    assert any(p.startswith("sla_policies.csv:0: [missing_file]") for p in found)


def test_every_problem_is_listed_at_once(tmp_path):
    folder = roster_copy(tmp_path)
    edit(folder, "agents.csv", lambda r: [r[0].update(active_from="soon"), r[5].update(team_id="team_x")])
    edit(folder, "teams.csv", _duplicate_team)
    found = problems_of(folder)
    assert [p.split(" ")[0] for p in found] == ["teams.csv:8:", "agents.csv:2:", "agents.csv:7:"]


# --------------------------------------------------------------------------- history arithmetic


def test_an_in_place_move_changes_only_the_days_from_the_load_on():
    previous = {"ag": [("team_a", date(2026, 1, 1), OPEN, 1)]}
    moved = {"ag": [("team_b", date(2026, 1, 1), OPEN)]}
    assert reference.merge_timeline(previous, moved, date(2026, 11, 15)) == {
        "ag": [("team_a", date(2026, 1, 1), date(2026, 11, 14)), ("team_b", date(2026, 11, 15), OPEN)]
    }


def test_a_new_agent_or_period_fills_days_no_earlier_load_covered():
    previous = {"ag": [("team_a", date(2026, 3, 1), OPEN, 1)]}
    new = {
        "ag": [("team_c", date(2026, 1, 1), date(2026, 2, 28)), ("team_a", date(2026, 3, 1), OPEN)],
        "hire": [("team_b", date(2026, 11, 1), OPEN)],  # hired before the load that first names them
    }
    assert reference.merge_timeline(previous, new, date(2026, 12, 1)) == {
        "ag": [("team_c", date(2026, 1, 1), date(2026, 2, 28)), ("team_a", date(2026, 3, 1), OPEN)],
        "hire": [("team_b", date(2026, 11, 1), OPEN)],
    }


def test_an_agent_removed_from_the_file_keeps_the_past_only():
    previous = {"gone": [("team_a", date(2026, 1, 1), OPEN, 1)]}
    assert reference.merge_timeline(previous, {}, date(2026, 6, 1)) == {
        "gone": [("team_a", date(2026, 1, 1), date(2026, 5, 31))]
    }


# --------------------------------------------------------------------------- loading


@pytest.fixture
def empty_warehouse(database_url, tmp_path):
    with fresh_database(database_url, "ref") as url, pointed_at(url, tmp_path):
        yield url


def snapshot(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"select * from reference.{table} order by 1, 2, 3").fetchall()
            for table in ("teams", "agents", "agent_memberships", "sla_policies", "experiments", "loads")
        }


def test_load_replaces_the_snapshot_and_logs_who_when_and_what(empty_warehouse, tmp_path):
    loaded = reference.load(url=empty_warehouse, loaded_by="ops@example.com")
    assert loaded["loaded"] and loaded["teams"] == 6 and loaded["membership_history_periods"] == 36
    again = reference.load(url=empty_warehouse)
    assert not again["loaded"] and again["reason"] == f"unchanged since load {loaded['load_id']}"
    folder = roster_copy(tmp_path)
    edit(folder, "teams.csv", lambda r: r[0].update(team_name="Billing & payments"))
    reference.load(folder, url=empty_warehouse)
    state = snapshot(empty_warehouse)
    assert state["teams"][1][:2] == ("team_billing", "Billing & payments")  # sorted: team_accounts first
    assert len(state["teams"]) == 6 and len(state["experiments"]) == 2
    loads = state["loads"]
    assert [row[2] for row in loads][0] == "ops@example.com" and len(loads) == 2
    files = loads[-1][5]
    assert set(files) == set(reference.FILES) and files["agents.csv"]["rows"] == 36


def test_a_failed_load_leaves_the_previous_snapshot_intact(empty_warehouse, tmp_path, monkeypatch):
    reference.load(url=empty_warehouse)
    before = snapshot(empty_warehouse)
    # An invalid folder: nothing is written.
    broken = roster_copy(tmp_path, "broken")
    edit(broken, "agents.csv", _overlap)
    with pytest.raises(reference.RosterError):
        reference.load(broken, url=empty_warehouse)
    assert snapshot(empty_warehouse) == before
    # A valid folder whose load fails half-way (after teams and agents were replaced): rolled back.
    changed = roster_copy(tmp_path, "changed")
    edit(changed, "teams.csv", lambda r: r[0].update(team_name="Renamed"))
    edit(changed, "agents.csv", lambda r: r[0].update(team_id="team_platform"))
    replace = store._replace

    def failing(conn, table, *args, **kwargs):
        if table == "sla_policies":
            raise RuntimeError("the connection dropped")
        return replace(conn, table, *args, **kwargs)

    monkeypatch.setattr(store, "_replace", failing)
    with pytest.raises(RuntimeError, match="connection dropped"):
        reference.load(changed, url=empty_warehouse)
    assert snapshot(empty_warehouse) == before


def test_a_team_the_history_names_cannot_be_deleted(empty_warehouse, tmp_path):
    reference.load(url=empty_warehouse, effective_from=date(2026, 11, 1))
    before = snapshot(empty_warehouse)
    gone = roster_copy(tmp_path)
    edit(gone, "teams.csv", lambda r: [t for t in r if t["team_id"] != "team_general"])
    edit(gone, "agents.csv", lambda r: [{**a, "team_id": "team_billing"} if a["team_id"] == "team_general" else a for a in r])
    with pytest.raises(reference.RosterError, match=r"teams.csv:0: \[team_in_history\] team 'team_general'"):
        reference.load(gone, url=empty_warehouse, effective_from=date(2026, 12, 1))
    assert snapshot(empty_warehouse) == before
    # Retired by active_to instead, it loads; a correction of the past may drop it altogether.
    edit(gone, "teams.csv", lambda r: r.append(
        {"team_id": "team_general", "team_name": "General", "active_from": "2026-01-01", "active_to": "2026-11-30"}))
    assert reference.load(gone, url=empty_warehouse, effective_from=date(2026, 12, 1))["loaded"]


def test_a_warehouse_built_with_the_old_seeds_converges(empty_warehouse):
    """Before migration 10, dbt seeds created reference.teams etc. with the same columns: loads replace them."""
    with psycopg.connect(empty_warehouse, autocommit=True) as conn:
        conn.execute(
            "create schema reference;"
            " create table reference.teams (team_id text, team_name text, active_from date, active_to date);"
            " insert into reference.teams values ('team_old', 'Old', '2026-01-01', null)"
        )
    assert reference.load(url=empty_warehouse)["loaded"]
    state = snapshot(empty_warehouse)
    assert len(state["teams"]) == 6 and "team_old" not in {row[0] for row in state["teams"]}


def test_an_empty_warehouse_refuses_to_build(empty_warehouse, capsys):
    from routerloop.build import build

    with pytest.raises(reference.ReferenceNotLoaded, match="run `routerloop reference load`"):
        build(url=empty_warehouse, quiet=True)
    assert cli.main(["build"]) == 1
    assert "run `routerloop reference load`" in capsys.readouterr().err


def test_cli_validate_load_show(empty_warehouse, tmp_path, capsys):
    assert cli.main(["reference", "validate"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    broken = roster_copy(tmp_path)
    edit(broken, "teams.csv", _duplicate_team)
    assert cli.main(["reference", "validate", "--dir", str(broken)]) == 1
    assert "teams.csv:8: [duplicate]" in capsys.readouterr().err
    assert cli.main(["reference", "load", "--dir", str(broken)]) == 1
    capsys.readouterr()

    assert cli.main(["reference", "load", "--by", "cli-test"]) == 0
    assert json.loads(capsys.readouterr().out)["loaded"] is True
    moved = roster_copy(tmp_path, "moved")
    edit(moved, "agents.csv", lambda r: r[0].update(team_id="team_platform"))
    assert cli.main(["reference", "load", "--dir", str(moved), "--effective-from", "2026-11-02"]) == 0
    capsys.readouterr()

    assert cli.main(["reference", "show", "--agent", "ag_billing_01", "--as-of", "2026-11-01"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(m["team_id"], m["valid_from"], m["valid_to"]) for m in shown["memberships"]] == [
        ("team_billing", "2026-01-01", "2026-11-01"), ("team_platform", "2026-11-02", None)
    ]
    assert "ag_billing_01" in shown["teams"]["team_billing"]
    assert shown["loads"][0]["effective_from"] == "2026-11-02" and shown["loads"][1]["loaded_by"] == "cli-test"
    assert shown["rows"]["agent_memberships"] == 37


# --------------------------------------------------------------------------- the marts keep last month's roster


HISTORY_START = datetime(2026, 11, 1, tzinfo=UTC)


def agent_teams(url: str, agent_id: str) -> dict[date, set[str]]:
    with psycopg.connect(url) as conn:
        found: dict[date, set[str]] = {}
        for day, team in conn.execute(
            "select as_of_date, team_id from marts.agent_sla_csat_rolling where agent_id = %s", (agent_id,)
        ):
            found.setdefault(day, set()).add(team)
    return found


def test_after_an_agent_moves_the_marts_of_earlier_dates_keep_the_old_team(own_database, tmp_path, monkeypatch):
    from routerloop.build import build
    from routerloop.landing import land
    from routerloop.simulation import generate

    landing = tmp_path / "landing"
    generate(out=landing, start=HISTORY_START, hours=48, seed=9, decisions_per_hour=30, bad_rate=0.0)
    assert land(landing=landing, url=own_database, progress=False).ok
    select = ["+agent_sla_csat_rolling"]
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "cautious")  # no test of a model outside the selection

    def rebuild():
        built = build(full_refresh=True, select=select, url=own_database, quiet=True, unit_tests=False)
        assert built["ok"], built["failed"]

    rebuild()  # own_database loaded the shipped roster: ag_billing_01 in team_billing
    before = agent_teams(own_database, "ag_billing_01")
    assert set(before) == {date(2026, 11, 1), date(2026, 11, 2)}
    assert all(teams == {"team_billing"} for teams in before.values())
    # The roster file is edited in place (the agent's team changed) and loaded as of 2 November.
    moved = roster_copy(tmp_path)
    edit(moved, "agents.csv", lambda r: r[0].update(team_id="team_platform"))
    reference.load(moved, url=own_database, effective_from=date(2026, 11, 2))
    rebuild()  # a full refresh recomputes every past date with the history
    teams = agent_teams(own_database, "ag_billing_01")
    assert teams[date(2026, 11, 1)] == {"team_billing"}
    assert teams[date(2026, 11, 2)] == {"team_platform"}
    # Loading the same edit again later changes nothing in the past.
    reference.load(moved, url=own_database, effective_from=date(2026, 12, 1))
    with psycopg.connect(own_database) as conn:
        periods = conn.execute(
            "select team_id, valid_from, valid_to from reference.agent_memberships where agent_id = 'ag_billing_01'"
            " order by valid_from"
        ).fetchall()
    assert periods == [("team_billing", date(2026, 1, 1), date(2026, 11, 1)), ("team_platform", date(2026, 11, 2), None)]
