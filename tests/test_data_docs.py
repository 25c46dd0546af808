"""Data Docs open without internet: a static index of every validation, and no CDN tags in GX's pages.

No database and no GX run: a site and a results store shaped like GX's (tests/test_demo.py checks a real one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from types import SimpleNamespace

from routerloop import data_docs

CDN_HEAD = (
    '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>'
    '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
    '<link rel="shortcut icon" href="./static/images/favicon.ico" type="image/x-icon"/>'
)
KEYS = {
    "weights": "marts_routing_weights/__none__/20261107T010000.000000Z/warehouse-marts_routing_weights",
    "decisions": "raw_router_decisions/__none__/20261107T000000.000000Z/warehouse-raw_router_decisions",
}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if data.strip():
            self.cells.append(data.strip())


def _parse(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


def _gx_site(tmp_path):
    """A results store with two validations (one failed) and the pages GX writes for them."""
    site, results = tmp_path / "data_docs", tmp_path / "results"
    for name, key in KEYS.items():
        result = {
            "suite_name": key.split("/")[0],
            "success": name == "weights",
            "statistics": {"evaluated_expectations": 6, "successful_expectations": 6 if name == "weights" else 5},
            "meta": {"run_id": {"run_name": None, "run_time": f"2026-11-07T0{int(name == 'weights')}:00:00+00:00"},
                     "active_batch_definition": {"data_asset_name": key.split("/")[0]}},
        }
        (results / key).parent.mkdir(parents=True)
        (results / f"{key}.json").write_text(json.dumps(result))
        page = site / "validations" / f"{key}.html"
        page.parent.mkdir(parents=True)
        page.write_text(f"<html><head>{CDN_HEAD}</head><body><i class='fas fa-check-circle'></i></body></html>")
    (site / "index.html").write_text(f"<html><head>{CDN_HEAD}</head><body><table data-toggle='table'></table>"
                                     "<script>$('#t').bootstrapTable({})</script></body></html>")
    return site, results


@dataclass(frozen=True)
class _Identifier:
    """Stands in for GX's ValidationResultIdentifier: its tuple is the result's path in the store."""

    key: str

    def to_tuple(self) -> tuple[str, ...]:
        return tuple(self.key.split("/"))


def _run_of(key: str):
    """The part of a GX checkpoint result make_offline reads: the identifiers of its validations."""
    return SimpleNamespace(run_results={_Identifier(key): None})


def test_the_index_lists_every_validation_without_scripts(tmp_path):
    site, results = _gx_site(tmp_path)
    index = data_docs.make_offline(site, results, _run_of(KEYS["weights"]), "routing_weights[2026-11-07]")
    assert index == site / "index.html"
    page = _parse(index.read_text())
    assert not [tag for tag, _ in page.tags if tag in {"script", "link", "iframe"}]
    assert "http" not in index.read_text()
    # newest first; the batch routerloop named, else GX's data asset; each row links to its page
    rows = [tag for tag, _ in page.tags if tag == "tr"][1:]
    assert len(rows) == 2
    cells = page.cells[page.cells.index("expectations met") + 1:]
    assert cells == [
        "2026-11-07 01:00:00", "marts_routing_weights", "routing_weights[2026-11-07]", "passed", "6 of 6",
        "2026-11-07 00:00:00", "raw_router_decisions", "raw_router_decisions", "FAILED", "5 of 6",
    ]
    links = [attributes["href"] for tag, attributes in page.tags if tag == "a"]
    assert [f"validations/{KEYS['weights']}.html", f"validations/{KEYS['decisions']}.html"] == [
        link for link in links if link.startswith("validations/")
    ]
    # GX's own index is kept for readers with internet
    assert "bootstrapTable" in (site / data_docs.GX_INDEX).read_text()
    assert data_docs.GX_INDEX in links


def test_gx_pages_lose_their_cdn_tags_and_use_the_local_stylesheet(tmp_path):
    site, results = _gx_site(tmp_path)
    data_docs.make_offline(site, results)
    for key in KEYS.values():
        page = _parse((site / "validations" / f"{key}.html").read_text())
        hrefs = [attributes.get("href") or attributes.get("src") for _, attributes in page.tags]
        assert not [h for h in hrefs if h and h.startswith("http")]
        # validations/<suite>/<run>/<time>/<page>.html: four levels below the site
        assert "../../../../static/styles/routerloop_offline.css" in hrefs
        assert "./static/images/favicon.ico" in hrefs  # local references stay
    css = (site / data_docs.STYLESHEET).read_text()
    assert "fa-check-circle::before" in css and "fa-times::before" in css


def test_a_second_pass_keeps_our_index_and_takes_only_new_pages(tmp_path):
    site, results = _gx_site(tmp_path)
    data_docs.make_offline(site, results, _run_of(KEYS["weights"]), "routing_weights[2026-11-07]")
    ours = (site / "index.html").read_text()
    data_docs.make_offline(site, results)  # no new GX build in between: nothing moves
    assert (site / "index.html").read_text() == ours
    assert "bootstrapTable" in (site / data_docs.GX_INDEX).read_text()
