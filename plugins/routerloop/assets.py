"""Names and URIs of the Airflow Assets routerloop produces: plain strings, defined once, no Airflow.

A DAG that writes a table lists its asset in `outlets`; a DAG that consumes it schedules on the same
identity (the daily DAG on the raw tables). Both build `airflow.sdk.Asset(name=ref.name, uri=ref.uri)`
from the refs below, so producer and consumer cannot drift apart.

URIs follow the postgres provider's asset scheme, `postgres://host:port/database/schema/table`
(it rejects anything else). Host and database are *logical* names of the warehouse rather than the
address of the server actually used (which varies per machine and per test session): the asset
identifies the table, not a connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from routerloop.contract import STREAMS

WAREHOUSE_AUTHORITY = "routerloop-warehouse:5432"
WAREHOUSE_DATABASE = "routerloop"
RAW_SCHEMA = "raw"


@dataclass(frozen=True)
class AssetRef:
    name: str  # shown in the Airflow UI; unique per table
    uri: str  # already in the normal form Airflow stores

    def as_kwargs(self) -> dict[str, str]:
        return {"name": self.name, "uri": self.uri}


def table_asset(schema: str, table: str) -> AssetRef:
    return AssetRef(
        name=f"{schema}.{table}",
        uri=f"postgres://{WAREHOUSE_AUTHORITY}/{WAREHOUSE_DATABASE}/{schema}/{table}",
    )


def raw_asset(stream: str) -> AssetRef:
    """The asset of raw.<stream>, written by the hourly landing task of that stream."""
    if stream not in STREAMS:
        raise KeyError(f"unknown stream {stream!r}; streams are {', '.join(STREAMS)}")
    return table_asset(RAW_SCHEMA, stream)


RAW_ASSETS: dict[str, AssetRef] = {stream: raw_asset(stream) for stream in STREAMS}
