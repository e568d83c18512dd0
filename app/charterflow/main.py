"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import start_http_server

from charterflow import __version__, web
from charterflow.api import health, openapi
from charterflow.api.errors import validation_error
from charterflow.api.middleware import RequestGuardMiddleware, SecurityHeadersMiddleware
from charterflow.api.router import api_router
from charterflow.appmetrics import DatabaseMetrics
from charterflow.db import make_engine, make_read_engine, make_session_factory
from charterflow.ingest_queue import make_job_queue
from charterflow.logging import configure_logging, get_logger
from charterflow.observability import Metrics, RequestContextMiddleware
from charterflow.ratelimit import RedisRateLimiter, make_rate_limiter
from charterflow.retrieval.embedders import preload
from charterflow.services.sessions import AUTH_EPOCH_KEY, RecentCallers
from charterflow.services.stream_slots import StreamSlots
from charterflow.settings import Settings, get_settings
from charterflow.storage import StorageError, make_storage

log = get_logger("charterflow")
# Room for the multipart envelope and the small form fields around an upload.
FORM_OVERHEAD_BYTES = 1024 * 1024


class ConfigurationError(SystemExit):
    """Raised at start-up when the configuration cannot work; the message names the variables."""


def make_redis(settings: Settings, *, asynchronous: bool = False):  # type: ignore[no-untyped-def]
    """A client for ``REDIS_URL`` (None without one); ``asynchronous``: a ``redis.asyncio``
    client, bound to the event loop that first uses it."""
    if not settings.redis_url:
        return None
    import redis
    import redis.asyncio

    timeout = settings.dependency_timeout_seconds
    factory = redis.asyncio.Redis if asynchronous else redis.Redis
    return factory.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings``; refuses to start on a configuration problem."""
    settings = (settings or get_settings()).with_development_secret()
    configure_logging(settings.log_level, settings.effective_log_format)
    problems = settings.problems()
    if problems and settings.is_production:
        lines = "\n".join(f"{name}: {why}" for name, why in problems)
        raise ConfigurationError(f"refusing to start, configuration problems:\n{lines}")

    engine = make_engine(settings)
    read_engine = make_read_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("started", version=__version__, env=settings.charterflow_env)
        app.state.embedder = preload(settings)
        # Made here, in the serving event loop: the per-request rate limit then waits for
        # Redis on the loop rather than on a worker thread.
        async_redis = make_redis(settings, asynchronous=True)
        if isinstance(app.state.rate_limiter, RedisRateLimiter):
            app.state.rate_limiter.attach_async(async_redis)
        metrics_server = None
        if settings.metrics_port:
            metrics_server, _ = start_http_server(
                settings.metrics_port, registry=app.state.metrics.registry
            )
        # What start-up made (modules, the app, the routes) lives as long as the process: out
        # of the garbage collector's sight, so its collections scan only what requests make.
        gc.freeze()
        yield
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
        if isinstance(app.state.rate_limiter, RedisRateLimiter):
            app.state.rate_limiter.attach_async(None)
        if async_redis is not None:
            await async_redis.aclose()
        engine.dispose()
        if read_engine is not None:
            read_engine.dispose()
        if app.state.redis is not None:
            app.state.redis.close()

    app = FastAPI(
        title="CharterFlow",
        version=__version__,
        description="Document-grounded team workspace: notebooks, sources, cited answers.",
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        **(
            {}
            if settings.docs_enabled
            else {"docs_url": None, "redoc_url": None, "openapi_url": None}
        ),
    )
    openapi.install(app)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    # DATABASE_READ_URL: searches, asks and lists read from the replica (api.deps.ReadDb).
    app.state.read_engine = read_engine
    app.state.read_session_factory = make_session_factory(read_engine) if read_engine else None
    app.state.storage = make_storage(settings)
    app.state.redis = make_redis(settings)
    app.state.metrics = Metrics()
    app.state.metrics.business.watch(app.state.session_factory)
    DatabaseMetrics(app.state.metrics.registry, engine)
    app.state.jobs = make_job_queue(settings)
    app.state.stream_slots = StreamSlots(settings.max_streams_per_user)
    app.state.rate_limiter = make_rate_limiter(app.state.redis)
    # AUTH_CACHE_SECONDS (api.deps.limit_by_ip); with Redis, changes are announced to replicas.
    limiter = app.state.rate_limiter
    app.state.recent_callers = RecentCallers(
        partial(limiter.bump, AUTH_EPOCH_KEY) if isinstance(limiter, RedisRateLimiter) else None
    )

    app.add_exception_handler(RequestValidationError, validation_error)

    @app.exception_handler(StorageError)
    async def storage_unavailable(request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage unavailable", error=str(exc), path=request.url.path)
        return JSONResponse(
            {"detail": "Storage is unavailable; try again later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    health.install(app)
    app.include_router(api_router)
    web.install(app)  # pages, /static, cookie sessions for the UI
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", "Content-Disposition"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    # Whole request bodies are capped (413) before the app reads them: MAX_JSON_BYTES, or
    # for uploads MAX_UPLOAD_BYTES (checked exactly while the file is hashed) and the form.
    app.add_middleware(
        RequestGuardMiddleware,
        settings=settings,
        max_body=settings.max_json_bytes,
        max_upload=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
    )
    # Added (nearly) last, so outermost: it sees every response, including errors of other
    # middleware.
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    if settings.forwarded_allow_ips:  # only these proxies may name the client; before all else
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app
