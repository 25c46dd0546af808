"""/metrics: the warehouse's operational figures in the Prometheus text format (version 0.0.4).

Naming follows Prometheus: a `routerloop_` prefix, base units (seconds), `_total` for counters,
timestamps (`_timestamp_seconds`, Unix time) rather than ages, and labels of low cardinality (stream,
suite, mart; the weights version only on the one current sample of an info metric).
"""

from __future__ import annotations

from datetime import datetime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return repr(value.timestamp())
    return repr(float(value)) if isinstance(value, float) else str(int(value))


class _Families:
    def __init__(self):
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: list[tuple[dict, object]]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples if value is not None]


def render(values: dict) -> str:
    """The text exposition of queries.metric_values()."""
    out = _Families()
    out.family("routerloop_stream_newest_event_timestamp_seconds", "gauge",
               "Event time of the newest landed event of each stream (Unix time; absent before the first).",
               [({"stream": s}, t) for s, t in sorted(values["newest_event"].items())])
    out.family("routerloop_quarantined_lines_total", "counter",
               "Lines of each stream quarantined by the landing since the warehouse was created.",
               [({"stream": s}, n) for s, n in sorted(values["quarantined"].items())])
    gates = values["gates"]
    out.family("routerloop_gate_last_success", "gauge",
               "Whether the newest validation of each Great Expectations suite passed (1) or failed (0).",
               [({"suite": g["suite"]}, bool(g["success"])) for g in gates])
    out.family("routerloop_gate_last_validation_timestamp_seconds", "gauge",
               "Time of the newest validation of each suite (Unix time).",
               [({"suite": g["suite"]}, g["validated_at"]) for g in gates])
    exported = values["exported"]
    out.family("routerloop_weights_exported_info", "gauge",
               "The weights version the router reads now (value 1; absent before the first publish).",
               [({"version": exported["weights_version"], "as_of_date": exported["as_of_date"].isoformat()}, 1)]
               if exported else [])
    out.family("routerloop_weights_published_timestamp_seconds", "gauge",
               "When the router's current weights version was published or rolled back to (Unix time).",
               [({}, exported["published_at"])] if exported and exported["published_at"] else [])
    changes = values["changes"]
    out.family("routerloop_weight_changes_last_run", "gauge",
               "Weights the newest dbt run logged as changed (marts.weight_adjustment_log).",
               [({}, changes["n"] if changes and changes["logged_at"] else 0)])
    out.family("routerloop_weight_changes_last_run_timestamp_seconds", "gauge",
               "Start time of the dbt run that last logged weight changes (Unix time).",
               [({}, changes["logged_at"])] if changes and changes["logged_at"] else [])
    out.family("routerloop_mart_rows", "gauge", "Rows of each table in schema marts.",
               [({"mart": m}, n) for m, n in sorted(values["mart_rows"].items())])
    return "\n".join(out.lines) + "\n"
