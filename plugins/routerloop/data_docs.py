"""Great Expectations Data Docs that open without internet.

GX's pages load Bootstrap, jQuery, Font Awesome and Vega from CDNs. Behind a firewall its index (a
table that JavaScript fills in) stays blank, and the validation pages lose their pass/fail icons. After
each GX build, `make_offline`:

- keeps GX's own index as `gx_index.html` (interactive, but it needs internet);
- writes `index.html`: one static table of every validation in the results store (time, suite, batch,
  success, expectations met), newest first, linking GX's page of each; no JavaScript;
- removes the CDN tags from the pages GX wrote since the last pass and links a local stylesheet that
  shows the status icons as text.

GX does not record routerloop's batch ids (e.g. `weights[2026-11-07]`), so each pass appends the
batch of the run it follows to `routerloop_batches.jsonl` in the site.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from pathlib import Path

INDEX_MARK = "<!-- routerloop offline index -->"
GX_INDEX = "gx_index.html"
BATCHES_FILE = "routerloop_batches.jsonl"
STYLESHEET = Path("static") / "styles" / "routerloop_offline.css"
# Pages GX wrote after this file's mtime have not been made offline yet.
STAMP_FILE = ".routerloop_offline_stamp"

_CDN_TAGS = re.compile(
    r"<link\b[^>]*\bhref=[\"']https?://[^>]*>"
    r"|<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>",
    re.IGNORECASE,
)

# Enough layout for GX's pages without Bootstrap; Font Awesome's status icons become text.
OFFLINE_CSS = """\
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
.fas.fa-check-circle::before { content: "\\2714"; color: #1a7f37; font-style: normal; }
.fas.fa-times::before { content: "\\2718"; color: #c62828; font-style: normal; }
.cooltip .top, #ge-cta-footer, .fa-question-circle { display: none; }
.cooltip:hover .top { display: block; position: absolute; background: #fff; border: 1px solid #ccc;
  padding: 4px; white-space: pre-wrap; max-width: 60em; }
"""


def make_offline(site: Path, results: Path, run=None, batch_id: str | None = None) -> Path:
    """Make the Data Docs site in `site` readable offline; return its static index page.

    results: GX's validation results store (one JSON per validation). run and batch_id: the GX
    checkpoint result just built and routerloop's id of its batch, to name it in the index.
    """
    site, results = Path(site), Path(results)
    if run is not None and batch_id:
        _record_batches(site, run, batch_id)
    _write_stylesheet(site)
    _strip_cdn_tags(site)
    index = site / "index.html"
    if index.exists() and INDEX_MARK not in index.read_text(errors="replace"):
        os.replace(index, site / GX_INDEX)  # the page GX just rebuilt: keep it as the interactive index
    _write(index, index_page(site, validation_rows(site, results)))
    return index


def _write(path: Path, text: str) -> None:
    from routerloop.files import write_atomically

    write_atomically(path, text.encode(), durable=False)  # rebuilt on every gate run


def _record_batches(site: Path, run, batch_id: str) -> None:
    site.mkdir(parents=True, exist_ok=True)
    lines = "".join(
        json.dumps({"validation": "/".join(identifier.to_tuple()), "batch": batch_id}) + "\n"
        for identifier in run.run_results
    )
    # One short append per call: concurrent writers (Airflow tasks) do not interleave within a line.
    with open(site / BATCHES_FILE, "a") as handle:
        handle.write(lines)


def _recorded_batches(site: Path) -> dict[str, str]:
    try:
        text = (site / BATCHES_FILE).read_text()
    except FileNotFoundError:
        return {}
    batches = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash names nothing
        batches[entry["validation"]] = entry["batch"]
    return batches


def _write_stylesheet(site: Path) -> None:
    path = site / STYLESHEET
    if not path.exists() or path.read_text() != OFFLINE_CSS:
        _write(path, OFFLINE_CSS)


def _strip_cdn_tags(site: Path) -> None:
    """Replace the CDN tags of every page written since the last pass by the local stylesheet."""
    stamp = site / STAMP_FILE
    since = stamp.stat().st_mtime if stamp.exists() else 0.0
    started = time.time()
    for page in site.rglob("*.html"):
        if page.parent == site and page.name in {"index.html", GX_INDEX}:
            continue  # the index is rewritten whole; GX's index is useless without its scripts anyway
        if page.stat().st_mtime < since:
            continue
        text = page.read_text(errors="replace")
        if not _CDN_TAGS.search(text):
            continue
        depth = len(page.relative_to(site).parts) - 1
        link = f'<link rel="stylesheet" href="{"../" * depth}{STYLESHEET.as_posix()}">'
        _write(page, _CDN_TAGS.sub("", text).replace("</head>", link + "</head>", 1))
    stamp.touch()
    os.utime(stamp, (started, started))  # a page GX writes during this pass is newer: the next pass takes it


def validation_rows(site: Path, results: Path) -> list[dict]:
    """One row per validation result in the store, newest first."""
    batches = _recorded_batches(site)
    rows = []
    for path in results.rglob("*.json"):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # being written right now, or not a result
        key = path.relative_to(results).with_suffix("").as_posix()
        meta = result.get("meta") or {}
        statistics = result.get("statistics") or {}
        page = site / "validations" / f"{key}.html"
        suite = result.get("suite_name") or meta.get("expectation_suite_name") or key.split("/")[0]
        suite_page = site / "expectations" / f"{suite}.html"
        rows.append({
            "time": (meta.get("run_id") or {}).get("run_time") or meta.get("validation_time") or "",
            "suite": suite,
            "suite_page": suite_page.relative_to(site).as_posix() if suite_page.exists() else None,
            "batch": batches.get(key) or (meta.get("active_batch_definition") or {}).get("data_asset_name", ""),
            "success": bool(result.get("success")),
            "met": statistics.get("successful_expectations"),
            "evaluated": statistics.get("evaluated_expectations"),
            "page": page.relative_to(site).as_posix() if page.exists() else None,
        })
    return sorted(rows, key=lambda row: row["time"], reverse=True)


def _link(text: str, href: str | None) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>' if href else html.escape(text)


def index_page(site: Path, rows: list[dict]) -> str:
    failed = sum(1 for row in rows if not row["success"])
    body = "".join(
        f'<tr class="{"passed" if row["success"] else "failed"}">'
        f"<td>{html.escape(str(row['time'])[:19].replace('T', ' '))}</td>"
        f"<td>{_link(row['suite'], row['suite_page'])}</td>"
        f"<td>{html.escape(str(row['batch']))}</td>"
        f"<td>{_link('passed' if row['success'] else 'FAILED', row['page'])}</td>"
        f"<td>{row['met']} of {row['evaluated']}</td></tr>"
        for row in rows
    )
    interactive = (
        f' GX\'s own <a href="{GX_INDEX}">interactive index</a> needs internet (it loads its scripts from CDNs).'
        if (site / GX_INDEX).exists() else ""
    )
    return (
        f"<!doctype html>{INDEX_MARK}<html><head><meta charset='utf-8'><title>routerloop Data Docs</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:3px 10px;text-align:left}th{background:#f4f4f4}"
        "tr.failed td{background:#fdecea}tr.failed a{color:#b71c1c;font-weight:bold}</style></head><body>"
        "<h1>routerloop Data Docs: quality gate validations</h1>"
        f"<p>{len(rows)} validations, {failed} failed; newest first (UTC). A validation links to its page, "
        f"a suite to its expectations.{interactive}</p>"
        "<table><tr><th>validated at (UTC)</th><th>suite</th><th>batch</th><th>result</th>"
        f"<th>expectations met</th></tr>{body}</table></body></html>\n"
    )
