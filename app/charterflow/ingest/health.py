"""The worker's HTTP endpoints for Kubernetes and Prometheus, on ``WORKER_HEALTH_PORT``.

``/health/live`` answers 200 while the Dramatiq worker threads run: it checks no dependency, so
a Redis outage never makes the kubelet restart every worker (they reconnect by themselves).
``/health/ready`` adds the dependencies (Redis answers a PING), 503 naming the one that fails;
``/metrics`` serves the ingest collectors plus the queue depth.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from charterflow.ingest import metrics
from charterflow.logging import get_logger

log = get_logger("charterflow.worker")


class QueueDepthCollector(Collector):
    """Reads the queue depth from Redis at scrape time."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "charterflow_ingest_queue_depth", "Ingest messages waiting in Redis (with retries)."
        )
        try:
            gauge.add_metric([], float(self.depth()))
        except Exception as exc:  # a scrape must not fail because Redis is down
            log.warning("queue depth unavailable", error=type(exc).__name__)
            gauge.add_metric([], float("nan"))
        yield gauge


class HealthServer:
    def __init__(
        self,
        port: int,
        checks: dict[str, Callable[[], bool]],
        depth: Callable[[], int],
        dependencies: dict[str, Callable[[], bool]] | None = None,
        host: str = "0.0.0.0",  # noqa: S104 - the kubelet and Prometheus reach the pod IP
    ) -> None:
        metrics.registry.register(collector := QueueDepthCollector(depth))
        self._collector = collector
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/health/live":
                    status, body, ctype = server.live()
                elif self.path == "/health/ready":
                    status, body, ctype = server.ready()
                elif self.path == "/metrics":
                    status, body, ctype = (
                        200,
                        generate_latest(metrics.registry),
                        CONTENT_TYPE_LATEST,
                    )
                else:
                    status, body, ctype = 404, b'{"detail":"Not Found"}', "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None  # probes every few seconds are not news

        self.checks = checks
        self.dependencies = dependencies or {}
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def live(self) -> tuple[int, bytes, str]:
        """The process itself: its worker threads run."""
        return self._answer(self.checks)

    def ready(self) -> tuple[int, bytes, str]:
        """The process and its dependencies (Redis)."""
        return self._answer({**self.checks, **self.dependencies})

    @staticmethod
    def _answer(checks: dict[str, Callable[[], bool]]) -> tuple[int, bytes, str]:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                results[name] = "ok" if check() else "error"
            except Exception as exc:
                results[name] = f"error: {type(exc).__name__}"
        healthy = all(v == "ok" for v in results.values())
        body = {"status": "ok" if healthy else "error", "checks": results}
        return (200 if healthy else 503), json.dumps(body).encode(), "application/json"

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        metrics.registry.unregister(self._collector)
