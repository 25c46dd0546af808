"""The A/B toggles: experiments.csv of the reference folder, validated by routerloop.experiments."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime

import pytest

from routerloop import cli, experiments
from routerloop.experiments import COLUMNS, ExperimentConfigError, UnknownExperimentError

BASE = {
    "experiment_id": "exp_a",
    "variant_kind": "weight_strategy",
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": "2026-12-01T00:00:00Z",
    "primary_metric": "sla_breach",
    "secondary_metrics": "mttr_minutes;outcome_success",
    "guardrail_metrics": "csat_rating",
    "min_sample_per_variant": "100",
    "min_relative_lift": "0.05",
    "enabled": "true",
}


def write(tmp_path, rows: list[dict], header=COLUMNS):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "experiments.csv"
    path.write_text(out.getvalue())
    return path


def variant(name, share, control, **overrides):
    return {**BASE, "variant": name, "traffic_share": str(share), "is_control": str(control).lower(), **overrides}


def two_arms(**overrides):
    return [variant("sla", 0.5, True, **overrides), variant("sla_csat", 0.5, False, **overrides)]


def problems(tmp_path, rows) -> str:
    with pytest.raises(ExperimentConfigError) as error:
        experiments.load_experiments(write(tmp_path, rows))
    return str(error.value)


def test_repository_config_is_valid():
    loaded = experiments.load_experiments()
    assert loaded, "experiments.csv defines no experiment"
    for experiment in loaded.values():
        assert experiment.control.is_control
        assert sum(v.traffic_share for v in experiment.variants) == pytest.approx(1.0)


def test_a_valid_file_loads(tmp_path):
    rows = [*two_arms(), variant("v2.2", 0.5, True, experiment_id="exp_rules", variant_kind="rule_version",
                                 starts_at="2026-12-01T00:00:00Z", ends_at="2027-01-01T00:00:00Z",
                                 min_sample_per_variant="", min_relative_lift=""),
            variant("v2.3", 0.5, False, experiment_id="exp_rules", variant_kind="rule_version",
                    starts_at="2026-12-01T00:00:00Z", ends_at="2027-01-01T00:00:00Z",
                    min_sample_per_variant="", min_relative_lift="")]
    loaded = experiments.load_experiments(write(tmp_path, rows))
    weights, rules = loaded["exp_a"], loaded["exp_rules"]
    assert weights.kind == "weight_strategy" and weights.control.name == "sla"
    assert weights.metric_roles() == {
        "sla_breach": "primary", "mttr_minutes": "secondary", "outcome_success": "secondary",
        "csat_rating": "guardrail",
    }
    assert rules.kind == "rule_version" and rules.control.name == "v2.2"
    # Empty thresholds fall back to the dbt vars.
    assert rules.min_sample_per_variant == experiments.dbt_var("ab_default_min_sample_per_variant")
    assert rules.min_relative_lift == experiments.dbt_var("ab_default_min_relative_lift")
    assert weights.is_running(datetime(2026, 11, 5, tzinfo=UTC))
    assert not weights.is_running(datetime(2026, 12, 1, tzinfo=UTC))  # ends_at is exclusive


def test_disabled_experiment_is_not_running(tmp_path):
    (experiment,) = experiments.load_experiments(write(tmp_path, two_arms(enabled="false"))).values()
    assert not experiment.is_running(datetime(2026, 11, 5, tzinfo=UTC))


def test_assignment_is_deterministic_and_follows_shares(tmp_path):
    rows = [variant("sla", 0.2, True), variant("sla_csat", 0.8, False)]
    (experiment,) = experiments.load_experiments(write(tmp_path, rows)).values()
    assert experiment.assign("tk_1") == experiment.assign("tk_1")
    counts = Counter(experiment.assign(f"tk_{i}").name for i in range(20000))
    assert counts["sla"] / 20000 == pytest.approx(0.2, abs=0.015)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([variant("sla", 0.5, True), variant("sla_csat", 0.4, False)], "traffic shares sum to 0.9, must sum to 1"),
        ([variant("sla", 0.5, True), variant("sla_csat", 0.5, True)], "exactly one control variant"),
        ([variant("sla", 0.5, False), variant("sla_csat", 0.5, False)], "exactly one control variant"),
        (two_arms(primary_metric="nps"), "unknown metric(s) nps"),
        (two_arms(guardrail_metrics="csat_rating;latency"), "unknown metric(s) latency"),
        (two_arms(secondary_metrics="sla_breach"), "sla_breach listed more than once"),
        (two_arms(ends_at="2026-10-01T00:00:00Z"), "must be before ends_at"),
        (two_arms(starts_at="2026-11-01"), "starts_at '2026-11-01' must be an ISO 8601 timestamp with an offset"),
        (two_arms(variant_kind="model"), "variant_kind 'model' must be one of weight_strategy, rule_version"),
        ([variant("sla", 0.5, True), variant("aggressive", 0.5, False)],
         "weight strategy 'aggressive' is not defined in dbt var weight_strategies"),
        (two_arms(variant_kind="rule_version"), "rule version 'sla' must look like v2.3"),
        ([variant("sla", 0.5, True), variant("v2.3", 0.5, False, variant_kind="rule_version")],
         "mixes variant kinds"),
        ([variant("sla", 0.5, True), variant("sla_csat", 0.5, False, min_relative_lift="0.1")],
         "min_relative_lift differ from line 2"),
        ([variant("sla", 1.0, True)], "needs at least two variants"),
        ([variant("sla", 0.5, True), variant("sla", 0.5, False)], "duplicate variant(s) sla"),
        (two_arms(traffic_share="half"), "traffic_share 'half' must be a number in (0, 1]"),
        (two_arms(is_control="yes"), "is_control 'yes' must be true or false"),
        (two_arms(enabled="on"), "enabled 'on' must be true or false"),
        (two_arms(min_sample_per_variant="1"), "min_sample_per_variant '1' must be an integer >= 2"),
        (two_arms(min_relative_lift="-0.1"), "min_relative_lift '-0.1' must be a number >= 0"),
        (two_arms(experiment_id="Exp A"), "experiment_id 'Exp A' must match"),
    ],
)
def test_invalid_configs_are_rejected_with_a_clear_message(tmp_path, rows, message):
    text = problems(tmp_path, rows)
    assert message in text
    assert "experiments.csv:" in text  # every problem names its file and line


def test_every_problem_is_reported_at_once(tmp_path):
    rows = [variant("sla", 0.7, True, primary_metric="nps"), variant("sla_csat", 0.7, True, primary_metric="nps")]
    text = problems(tmp_path, rows)
    assert "unknown metric(s) nps" in text and "exactly one control" in text and "sum to 1.4" in text


def test_overlapping_enabled_experiments_are_rejected(tmp_path):
    other = [variant("sla", 0.5, True, experiment_id="exp_b", starts_at="2026-11-20T00:00:00Z",
                     ends_at="2026-12-20T00:00:00Z"),
             variant("static", 0.5, False, experiment_id="exp_b", starts_at="2026-11-20T00:00:00Z",
                     ends_at="2026-12-20T00:00:00Z")]
    assert "exp_b: enabled and overlapping exp_a" in problems(tmp_path, [*two_arms(), *other])
    # The same window is fine when one of them is switched off.
    disabled = [{**row, "enabled": "false"} for row in other]
    assert set(experiments.load_experiments(write(tmp_path, [*two_arms(), *disabled]))) == {"exp_a", "exp_b"}


def test_wrong_header_is_rejected(tmp_path):
    path = write(tmp_path, [], header=[c for c in COLUMNS if c != "enabled"])
    with pytest.raises(ExperimentConfigError, match="header must be exactly"):
        experiments.load_experiments(path)


def test_cli_list_and_show(capsys):
    assert cli.main(["experiments", "list"]) == 0
    listing = capsys.readouterr().out
    for experiment_id in experiments.load_experiments():
        assert experiment_id in listing
    first = next(iter(experiments.load_experiments()))
    assert cli.main(["experiments", "show", first]) == 0
    assert f'"experiment_id": "{first}"' in capsys.readouterr().out


def test_cli_unknown_experiment_is_a_clear_error(capsys):
    assert cli.main(["experiments", "show", "exp_missing"]) == 1
    assert "no experiment 'exp_missing'" in capsys.readouterr().err
    with pytest.raises(UnknownExperimentError):
        experiments.get_experiment("exp_missing")
