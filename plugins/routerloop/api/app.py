"""The FastAPI app: its routes, authentication, error mapping and the audit of every request.

`create_app()` builds it; `routerloop serve` runs it with uvicorn, and the Airflow plugin mounts it
under settings().api_url_prefix of Airflow's API server. Airflow does not authenticate plugin apps,
so the app checks the bearer token itself in both places (auth.py). Each request to /api/v1/... and
/metrics is appended to audit.api_requests with its token id, role, path, query and status
(AuditTrail); if that row cannot be written, the request is refused with 503 (the trail fails closed).
"""


import logging
from datetime import date
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPBearer
from psycopg_pool import PoolTimeout
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from routerloop import __version__
from routerloop.api import auth, metrics, models, queries
from routerloop.config import dbt_var, settings

log = logging.getLogger(__name__)

PRINCIPAL = "routerloop.principal"  # the request's auth.Principal, in the ASGI scope
AUDITED_PREFIXES = ("/api/", "/metrics")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
VERSION_PATTERN = r"^[0-9]{8}-[0-9a-f]{12}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MAX_OFFSET = 2**31 - 1
WEIGHT_READERS = ("router", "admin")
CSAT_READERS = ("analyst", "admin")  # the figures that carry CSAT (rationale, experiments, summary)
ADMINS = ("admin",)

_ERRORS = {
    401: {"model": models.Error, "description": "No token, or an unknown, malformed or revoked one."},
    403: {"model": models.Error, "description": "The token's role may not read this."},
    503: {"model": models.Error, "description": "The warehouse (or its audit trail) cannot be reached."},
}
_NOT_FOUND = {404: {"model": models.Error, "description": "No such version or experiment (or nothing published)."}}


def _iso_date(text: str | None) -> date | None:
    """A query parameter's date: exactly YYYY-MM-DD (pydantic's date would also take 0 as 1970-01-01)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: expected YYYY-MM-DD") from None


def _refuse_unknown_parameters(request: Request) -> None:
    """422 for a query parameter the route does not take (a typo such as `team=` must not pass unnoticed
    and widen the answer to every team)."""
    route = request.scope.get("route")
    known = {p.alias for p in route.dependant.query_params} if route is not None else set()
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ["query", name], "input": request.query_params[name],
             "msg": f"unknown query parameter; this route takes {', '.join(sorted(known)) or 'none'}"}
            for name in unknown
        ])


def _app_path(scope) -> str:
    """The path inside the app (without the mount prefix when mounted in Airflow)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class AuditTrail:
    """ASGI middleware: one audit.api_requests row per request to an audited path, written before the
    response starts (a failure to write it turns the response into a 503)."""

    def __init__(self, app, database: queries.Database):
        self.app = app
        self.database = database

    def _record(self, scope, status: int) -> None:
        with self.database.own() as conn:
            queries.record_request(conn, scope.get(PRINCIPAL), scope["method"], _app_path(scope),
                                   scope.get("query_string", b"").decode("latin-1")[:2000], status)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _app_path(scope).startswith(AUDITED_PREFIXES):
            return await self.app(scope, receive, send)
        state = {"started": False, "refused": False}

        async def audited_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
                try:
                    await run_in_threadpool(self._record, scope, message["status"])
                except Exception:
                    log.exception("audit.api_requests cannot be written; refusing %s", _app_path(scope))
                    state["refused"] = True
                    body = b'{"detail":"the audit trail cannot be written: request refused"}'
                    await send({"type": "http.response.start", "status": 503,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
            if not state["refused"]:
                await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not state["started"]:
                await run_in_threadpool(self._record, scope, 500)
            raise


def _error_handlers(app: FastAPI) -> None:
    def reply(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(psycopg.errors.InsufficientPrivilege)
    async def denied_by_database(request, exc):
        log.warning("the database refused a read of %s: %s", _app_path(request.scope), exc)
        return reply(403, "the database refused this read to the token's role (see `routerloop db grant`)")

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def not_built(request, exc):
        return reply(503, "the warehouse is not built yet (run `routerloop build` and `routerloop export`)")

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def unavailable(request, exc):
        log.warning("warehouse unavailable: %s", exc)
        return reply(503, "the warehouse cannot be reached")


def create_app(url: str | None = None, database: queries.Database | None = None) -> FastAPI:
    """The app, reading the warehouse at `url` (default: the configured one) through `database`."""
    s = settings()
    database = database or queries.Database(url)
    windows = tuple(int(w) for w in dbt_var("rolling_windows"))

    def known_window(days: int) -> int:
        if days not in windows:
            raise ValueError(f"window_days must be one of {', '.join(map(str, windows))} (dbt var rolling_windows)")
        return days

    app = FastAPI(
        title="routerloop API", version=__version__, docs_url=None, redoc_url=None,
        description="Routing weights, their changes with rationale, A/B results, headline figures and "
                    "operational metrics of routerloop. Bearer tokens (`routerloop token create --role R`) map "
                    "to the roles router, analyst and admin; see README, Security and privacy > API.",
    )
    app.state.database = database
    app.add_middleware(AuditTrail, database=database)
    _error_handlers(app)
    bearer = HTTPBearer(auto_error=False, description="A token printed by `routerloop token create --role R`.")

    def allow(*roles: str):
        def authenticated(request: Request, _credentials: Annotated[object, Depends(bearer)]) -> auth.Principal:
            with database.own() as conn:
                principal = auth.authenticate(conn, request.headers.get("authorization"))
            if principal is None:
                raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer rl_...)",
                                    headers={"WWW-Authenticate": "Bearer"})
            request.scope[PRINCIPAL] = principal
            if principal.role not in roles:
                raise HTTPException(403, f"role {principal.role} may not read this; it needs {' or '.join(roles)}")
            _refuse_unknown_parameters(request)
            return principal
        return authenticated

    # The parameters, as types (FastAPI's Annotated style): constraints and messages in one place.
    WeightReader = Annotated[auth.Principal, Depends(allow(*WEIGHT_READERS))]  # noqa: N806
    CsatReader = Annotated[auth.Principal, Depends(allow(*CSAT_READERS))]  # noqa: N806
    Admin = Annotated[auth.Principal, Depends(allow(*ADMINS))]  # noqa: N806
    Limit = Annotated[int, Query(ge=1, le=s.api_max_page_size, description="Rows per page.")]  # noqa: N806
    Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip (the previous page's next_offset).")]  # noqa: N806
    Team = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this team.")]  # noqa: N806
    Strategy = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this weight strategy.")]  # noqa: N806
    Day = Annotated[str | None, Query(pattern=DATE_PATTERN, description="A UTC date, YYYY-MM-DD.",  # noqa: N806
                                      json_schema_extra={"format": "date"}), AfterValidator(_iso_date)]
    page = s.api_page_size

    @app.get("/healthz", response_model=models.Health, tags=["health"],
             responses={503: {"model": models.Health, "description": "The warehouse cannot be reached."}})
    def healthz():
        """Liveness and database reachability; no token needed, not audited."""
        try:
            with database.own() as conn:
                queries.healthy(conn)
        except (psycopg.Error, PoolTimeout):
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return {"status": "ok"}

    @app.get("/api/v1/weights/current", response_model=models.Weights, tags=["weights"],
             responses={**_ERRORS, **_NOT_FOUND})
    def weights_current(principal: WeightReader, strategy: Strategy = None, team_id: Team = None,
                        limit: Limit = page, offset: Offset = 0):
        """The weights the router reads now (router.routing_weights), one page of rows."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            version = queries.current_version(conn)
            found = version and queries.weights(conn, version, True, strategy, team_id, limit, offset)
        if not found:
            raise HTTPException(404, "no weights are published yet (routerloop export)")
        return found

    @app.get("/api/v1/weights/changes", response_model=models.WeightChanges, tags=["weights"],
             responses=_ERRORS)
    def weight_changes(principal: CsatReader, since: Day = None, team_id: Team = None, strategy: Strategy = None,
                       limit: Limit = page, offset: Offset = 0):
        """Weight changes (marts.weight_adjustment_log) with their rationale: formula and inputs. The
        inputs carry team CSAT figures, so analyst or admin only."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            return queries.weight_changes(conn, since, team_id, strategy, limit, offset)

    @app.get("/api/v1/weights/{version}", response_model=models.Weights, tags=["weights"],
             responses={**_ERRORS, **_NOT_FOUND})
    def weights_version(principal: WeightReader,
                        version: Annotated[str, Path(pattern=VERSION_PATTERN, description="e.g. 20261107-630b7410368a")],
                        strategy: Strategy = None, team_id: Team = None, limit: Limit = page, offset: Offset = 0):
        """A published version (router.routing_weights_history), current or not."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            current = queries.current_version(conn) == version
            found = queries.weights(conn, version, current, strategy, team_id, limit, offset)
        if found is None:
            raise HTTPException(404, f"unknown weights version {version}")
        return found

    @app.get("/api/v1/experiments", response_model=models.Experiments, tags=["experiments"], responses=_ERRORS)
    def experiments(principal: CsatReader, limit: Limit = page, offset: Offset = 0):
        """The experiments marts.ab_results holds, with their variants and dates."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            return queries.experiments(conn, limit, offset)

    @app.get("/api/v1/experiments/{experiment_id}/results", response_model=models.ExperimentResults,
             tags=["experiments"], responses={**_ERRORS, **_NOT_FOUND})
    def experiment_results(principal: CsatReader, experiment_id: Annotated[str, Path(pattern=ID_PATTERN)],
                           as_of_date: Day = None, limit: Limit = page, offset: Offset = 0):
        """An experiment's results (marts.ab_results) on one as-of date: every metric and variant."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            found = queries.experiment_results(conn, experiment_id, as_of_date, limit, offset)
        if found is None:
            raise HTTPException(404, f"unknown experiment {experiment_id}")
        return found

    @app.get("/api/v1/metrics/summary", response_model=models.Summary, tags=["metrics"], responses=_ERRORS)
    def metrics_summary(principal: CsatReader,
                        window_days: Annotated[int, Query(description="Window length in days.",
                                                          json_schema_extra={"enum": list(windows)}),
                                               AfterValidator(known_window)] = windows[0],
                        as_of_date: Day = None):
        """SLA, CSAT and routing-quality headline figures per team over a window."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            return queries.summary(conn, window_days, as_of_date)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["metrics"],
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format 0.0.4."},
                        **{status: {"description": error["description"],
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                           for status, error in _ERRORS.items()}})
    def prometheus(principal: Admin):
        """Operational metrics in the Prometheus text format (admin tokens: a scraper's bearer token)."""
        with database.reading_as(auth.DATABASE_ROLE[principal.role]) as conn:
            text = metrics.render(queries.metric_values(conn))
        return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)

    return app
