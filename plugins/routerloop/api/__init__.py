"""The routerloop API: weights, their changes, A/B results, headline figures and Prometheus metrics,
behind bearer tokens (README, "Security and privacy" > "API").

- app.py: the FastAPI app (`create_app`), its routes, error mapping and the audit of each request;
- auth.py: tokens (created, revoked, checked) and the roles they map to;
- queries.py: the connection pool, reads under the caller's PostgreSQL role, one query per endpoint;
- metrics.py: the Prometheus text format; models.py: the response bodies (the OpenAPI spec).

This module itself imports nothing heavy: the Airflow plugin imports it in every Airflow process and
mounts `asgi_app`, which builds the app on its first request.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path


class LazyApp:
    """An ASGI app that builds create_app() on first use (in Airflow's API server only, not in the
    scheduler or workers that import the plugin too)."""

    def __init__(self):
        self._app = None
        self._lock = threading.Lock()

    def _get(self):
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from routerloop.api.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope, receive, send):
        await self._get()(scope, receive, send)


asgi_app = LazyApp()


def spec_path() -> Path:
    """The committed OpenAPI spec (tests compare it with the app's)."""
    from routerloop.config import settings

    return settings().root / "docs" / "openapi.json"


def openapi_document() -> str:
    from routerloop.api.app import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


def write_spec(path: Path | None = None) -> Path:
    from routerloop.files import write_atomically

    path = path or spec_path()
    write_atomically(path, openapi_document().encode())
    return path
