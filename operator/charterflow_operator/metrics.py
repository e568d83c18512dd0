"""Prometheus metrics of the operator, served on their own port (``METRICS_PORT``, 9090)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "charterflow_operator_reconciles_total", "Reconcile passes, by result.", ["result"]
)
ERRORS = Counter("charterflow_operator_reconcile_errors_total", "Reconcile passes that raised.")
DURATION = Histogram(
    "charterflow_operator_reconcile_duration_seconds",
    "Wall time of one reconcile pass.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SKIPPED = Counter(
    "charterflow_operator_passes_skipped_total",
    "Passes asked for while another replica leads (not run).",
)

READY = Gauge(
    "charterflow_operator_ready",
    "1 while the CharterFlow's phase is Ready, else 0 (alert on it staying 0).",
    ["namespace", "name"],
)


def serve(port: int) -> None:
    """Start the metrics endpoint in a daemon thread."""
    start_http_server(port)
