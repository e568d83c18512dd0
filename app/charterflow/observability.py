"""Request ids, access logs and Prometheus metrics, as one pure-ASGI middleware.

Metrics are labelled by the route *template* (``/api/v1/notebooks/{notebook_id}``), never the
raw path, so that ids cannot explode the series count.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charterflow.appmetrics import BusinessMetrics
from charterflow.logging import get_logger

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_RAW = REQUEST_ID_HEADER.encode()
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = get_logger("charterflow.access")
LIVENESS_PATH = "/health/live"


class Metrics:
    """The API's Prometheus collectors, on a registry of their own (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "charterflow_http_requests_total",
            "HTTP requests handled, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "charterflow_http_request_duration_seconds",
            "HTTP request latency, by method and route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "charterflow_http_requests_in_flight",
            "HTTP requests being handled right now.",
            registry=self.registry,
        )
        self.business = BusinessMetrics(self.registry)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled ``scope`` (``unmatched`` for 404s).

    The router records the matched route in the scope it was handed; we read it afterwards.
    """
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


#: Where a secret could sit in a path: invitation tokens were once path segments, and an old
#: link or client may still send them there (issue 26, item 13).
_SECRET_PATHS = ("/api/v1/invitations/", "/invitations/")


def _loggable_path(path: str, route: str) -> str:
    """The path as logged: a route holding a secret (``{token}``) as its template, and an
    unmatched path under the invitation prefixes without its segments."""
    if "{token}" in route:
        return route
    if route == "unmatched" and path.startswith(_SECRET_PATHS):
        return path.split("/invitations/", 1)[0] + "/invitations/…"
    return path


class RequestContextMiddleware:
    """Bind a request id, count and time the request, echo the id, log one line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Request ids: a random prefix per process and a counter (unique without a call to
        # the OS's random source per request, as uuid4 makes), 32 hex characters like one.
        self._id_prefix = uuid.uuid4().hex[:20]
        self._ids = itertools.count()
        # The labelled series, looked up once each (``labels`` takes a lock and builds keys).
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._timers: dict[tuple[str, str], Histogram] = {}

    def _request_id(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_RAW:
                incoming = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(incoming):
                    return incoming
                break
        return f"{self._id_prefix}{next(self._ids) & 0xFFFFFFFFFFFF:012x}"

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self.metrics.requests.labels(method, route, str(status))
            self._counters[(method, route, status)] = counter
        timer = self._timers.get((method, route))
        if timer is None:
            timer = self._timers[(method, route)] = self.metrics.latency.labels(method, route)
        counter.inc()
        timer.observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope["method"]
        status = 500
        # The liveness probe logs nothing: its request id is only echoed, not bound for logs.
        logs = scope["path"] != LIVENESS_PATH
        if logs:
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((_REQUEST_ID_RAW, request_id.encode()))
                message["headers"] = headers
            await send(message)

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            self.metrics.in_flight.dec()
            self._observe(method, route, status, elapsed)
            if not route.startswith("/health") and route != "/metrics":
                log.info(
                    "request",
                    method=method,
                    path=_loggable_path(scope["path"], route),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            if logs:
                structlog.contextvars.clear_contextvars()
