"""The web UI: server-rendered pages, their static files, and cookie sessions for the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from charterflow.web import identity
from charterflow.web.routes import (
    STATIC_DIR,
    LoginRequired,
    login_required,
    page_http_error,
    router,
)
from charterflow.web.session import CookieSessionMiddleware


def install(app: FastAPI) -> None:
    """Add the pages, ``/static``, HTML error pages and cookie access to ``/api/v1``."""
    app.include_router(router)
    app.include_router(identity.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(StarletteHTTPException, page_http_error)
    app.add_middleware(CookieSessionMiddleware, settings=app.state.settings)
