"""Operational endpoints outside ``/api/v1``: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from charterflow.api.deps import authenticate, is_admin
from charterflow.services import api_keys

router = APIRouter(tags=["operations"])


def install(app: FastAPI) -> None:
    """Add these routes to ``app`` itself, not through ``include_router``: an included router
    is matched through FastAPI's inclusion layers on every request, a measurable share of
    what a liveness probe costs."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods),
            tags=route.tags,
            summary=route.summary,
            include_in_schema=route.include_in_schema,
        )


@router.get("/health/live", summary="The process is up (checks no dependency)")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def _probe(fn: Callable[[], None], limit: float) -> dict[str, object]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(fn), limit)
    except TimeoutError:
        return {"status": "error", "error": f"no answer within {limit:g}s"}
    except Exception as exc:
        return {"status": "error", "error": _describe(exc)}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - start) * 1000, 1)}


def _describe(exc: Exception) -> str:
    """A one-line reason without connection strings or credentials."""
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "://" in text_ or "password" in text_.lower():
        text_ = ""
    return f"{type(exc).__name__}: {text_}"[:300] if text_ else type(exc).__name__


@router.get(
    "/health/ready",
    summary="Every dependency answers (database, redis, storage); 503 names the one that fails "
    "(in production, the details only for an instance admin's session token)",
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    timeout = state.settings.dependency_timeout_seconds

    def check_db() -> None:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    checks: dict[str, asyncio.Task[dict[str, object]]] = {
        "database": asyncio.create_task(_probe(check_db, timeout)),
        "storage": asyncio.create_task(_probe(state.storage.check, timeout)),
    }
    if state.redis is not None:
        checks["redis"] = asyncio.create_task(_probe(state.redis.ping, timeout))
    read_engine = getattr(state, "read_engine", None)
    if read_engine is not None:  # DATABASE_READ_URL: searches and lists need the replica

        def check_replica() -> None:
            with read_engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        checks["database_read"] = asyncio.create_task(_probe(check_replica, timeout))
    results = {name: await task for name, task in checks.items()}
    if state.redis is None:
        results["redis"] = {"status": "not_configured"}
    results["storage"]["backend"] = state.storage.kind
    # Which embedder answers searches; "loading" does not fail readiness (searches wait for it),
    # a model that cannot load does.
    embedder = getattr(state, "embedder", None)
    results["embeddings"] = embedder.describe() if embedder else {"status": "not_loaded"}
    failed = sorted(n for n, r in results.items() if r["status"] == "error")
    if state.settings.is_production and not await _admin_caller(request):
        # What runs where (storage backend, model, error text) is for operators, not for
        # anyone who can reach the port: instance admins, the worker's health port and the
        # logs have it.
        results = {name: {"status": r["status"]} for name, r in results.items()}
    body = {"status": "error" if failed else "ok", "failed": failed, "checks": results}
    return JSONResponse(body, status_code=503 if failed else 200)


async def _admin_caller(request: Request) -> bool:
    """Whether the request carries the session token (``Authorization: Bearer``, not an API
    key, as ``/api/v1/admin`` requires) of an instance admin. Anything else, a bad token
    included, is simply not an admin: probes send none and get the statuses."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or api_keys.is_api_key(token):
        return False
    state = request.app.state
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)

    def check() -> bool:
        with state.session_factory() as db:
            try:
                user = authenticate(request, db, state.settings, credentials)
            except HTTPException:
                return False
            return is_admin(state.settings, user)

    return await asyncio.to_thread(check)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # On METRICS_PORT (never the public one), or here only when allowed (METRICS_PUBLIC).
    if not request.app.state.settings.metrics_on_port:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
