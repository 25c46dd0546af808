"""The Airflow plugin `routerloop`.

Kept deliberately small: the plugin loader imports this file in every Airflow process (scheduler,
API server, DAG processor, workers), so it must import nothing heavy. The routerloop package next to
it is excluded from plugin loading by plugins/.airflowignore and imported normally.

It mounts the routerloop API (routerloop.api) in Airflow's API server under settings().api_url_prefix
(default /routerloop, clear of Airflow's reserved /api/v2, /ui, /execution, /auth and /pluginsv2). Airflow
does not authenticate plugin apps: the API checks its own bearer tokens. The app is built on its first
request (routerloop.api.LazyApp), so the other Airflow processes never import FastAPI routes or psycopg_pool.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from routerloop.api import asgi_app
from routerloop.config import settings


class RouterloopPlugin(AirflowPlugin):
    name = "routerloop"
    fastapi_apps = [{"app": asgi_app, "url_prefix": settings().api_url_prefix, "name": "routerloop API"}]
