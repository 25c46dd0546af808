"""The Airflow plugin `routerloop`.

Kept deliberately small: the plugin loader imports this file in every Airflow process (scheduler,
API server, DAG processor, workers), so it must import nothing heavy. The routerloop package next to
it is excluded from plugin loading by plugins/.airflowignore and imported normally. This is where an
API for the router (`fastapi_apps`) will be registered.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class RouterloopPlugin(AirflowPlugin):
    name = "routerloop"
