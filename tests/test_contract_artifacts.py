"""Artifacts derived from routerloop.contract stay in step with it."""

import json

from routerloop import contract, contract_doc, gates
from routerloop.config import settings


def test_contract_doc_is_current():
    committed = (settings().root / "docs" / "contract.md").read_text()
    assert committed == contract_doc.render(), "docs/contract.md is stale: run `routerloop contract-doc`"


def test_committed_raw_suites_match_the_contract():
    for name, suite in gates.generated_suites().items():
        committed = json.loads(gates.suite_path(name).read_text())
        assert committed == json.loads(json.dumps(suite)), f"{name}: run `routerloop gates write-suites`"


def test_raw_suite_checks_every_enum_and_range():
    for stream in contract.STREAMS.values():
        suite = gates.raw_suite(stream.name)
        checked = {e["kwargs"].get("column") for e in suite["expectations"]
                   if e["type"] in ("expect_column_values_to_be_in_set", "expect_column_values_to_be_between")}
        expected = {f.column for f in stream.fields if f.values or f.minimum is not None or f.maximum is not None}
        assert expected <= checked, stream.name


def test_every_suite_file_loads_into_great_expectations():
    for path in sorted(settings().expectations_dir.glob("*.json")):
        kwargs = gates._suite_kwargs(json.loads(path.read_text()))
        assert kwargs["expectations"], path.name
