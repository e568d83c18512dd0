"""Prometheus Operator objects for the application (``spec.monitoring``): a PodMonitor per
component (the API's metrics port, the worker's health port) and a PrometheusRule with the
application's alerts. Applied only when the cluster serves the monitoring.coreos.com kinds
(reconcile.py checks; otherwise a Warning Event says why none were made)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from charterflow_operator import api
from charterflow_operator.cron import longest_gap
from charterflow_operator.instance import CharterFlow, Manifest

# Pod labels copied onto every scraped series (Prometheus spells them with underscores), so
# that the rules select this instance's series by name, not by pod-name patterns.
TARGET_LABELS = [api.INSTANCE_LABEL, api.COMPONENT_LABEL]
INSTANCE_SERIES_LABEL = "app_kubernetes_io_instance"
# How late a backup may be beyond the schedule's longest gap: a run's own time and retries.
BACKUP_GRACE = dt.timedelta(hours=2)
# When the schedule cannot be read (the API server accepted it, so this is rare): weekly.
UNKNOWN_GAP = dt.timedelta(days=7)
PORTS = {"api": "metrics", "worker": "health"}


def _meta(cf: CharterFlow, name: str, component: str) -> dict[str, Any]:
    meta = cf.meta(name, component)
    meta["labels"] = {**cf.spec["monitoring"].get("labels", {}), **meta["labels"]}
    return meta


def pod_monitor(cf: CharterFlow, component: str) -> Manifest:
    """Scrape ``/metrics`` on the component's metrics port, never through the Service."""
    endpoint = {
        "port": PORTS[component],
        "path": "/metrics",
        "interval": cf.spec["monitoring"]["interval"],
    }
    return {
        "apiVersion": api.POD_MONITOR.api_version,
        "kind": api.POD_MONITOR.kind,
        "metadata": _meta(cf, cf.component_name(component), component),
        "spec": {
            "selector": {"matchLabels": cf.selector_labels(component)},
            "podTargetLabels": TARGET_LABELS,
            "podMetricsEndpoints": [endpoint],
        },
    }


def backup_max_age(cf: CharterFlow) -> dt.timedelta:
    """How old the last successful scheduled backup may be: the schedule's longest gap plus
    ``BACKUP_GRACE``."""
    try:
        gap = longest_gap(cf.spec["backup"]["schedule"])
    except ValueError:
        gap = UNKNOWN_GAP
    return gap + BACKUP_GRACE


def _alert(name: str, expr: str, duration: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def alerts(cf: CharterFlow) -> list[dict[str, Any]]:
    """The application's alerts, each scoped to this instance's series."""
    sel = f'namespace="{cf.namespace}",{INSTANCE_SERIES_LABEL}="{cf.name}"'
    where = f"CharterFlow {cf.namespace}/{cf.name}"
    http = "charterflow_http_requests_total"
    served = f'{sel},route!~"/health.*|/metrics"'
    rules = [
        _alert(
            "CharterFlowApiErrors",
            f'sum(rate({http}{{{sel},status=~"5.."}}[5m])) / sum(rate({http}{{{sel}}}[5m])) > 0.05',
            "10m",
            "critical",
            f"{where}: more than 5% of API requests fail with a 5xx status.",
        ),
        _alert(
            "CharterFlowApiSlow",
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(charterflow_http_request_duration_seconds_bucket{{{served}}}[5m]))) > 5",
            "15m",
            "warning",
            f"{where}: the API's 99th percentile latency is above 5 s.",
        ),
        _alert(
            "CharterFlowIngestBacklog",
            f"max(charterflow_ingest_queue_depth{{{sel}}}) > 100",
            "15m",
            "warning",
            f"{where}: more than 100 documents wait for ingestion; add workers.",
        ),
        _alert(
            "CharterFlowIngestStalled",
            f"max(charterflow_ingest_oldest_pending_seconds{{{sel}}}) > 1800",
            "10m",
            "warning",
            f"{where}: a document has waited for ingestion for more than 30 minutes.",
        ),
        _alert(
            "CharterFlowDocumentsFailing",
            f'sum(rate(charterflow_ingest_documents_total{{{sel},outcome="failed"}}[1h])) '
            f"/ sum(rate(charterflow_ingest_documents_total{{{sel}}}[1h])) > 0.2",
            "15m",
            "warning",
            f"{where}: more than 20% of ingested documents failed in the last hour.",
        ),
    ]
    backup = cf.spec["backup"]
    if backup["enabled"] and not backup["suspend"]:
        max_age = int(backup_max_age(cf).total_seconds())
        job = f'namespace="{cf.namespace}",cronjob="{cf.backup_name}"'
        # kube-state-metrics' series; before the first success, the CronJob's creation time.
        since = (
            f"(kube_cronjob_status_last_successful_time{{{job}}} or kube_cronjob_created{{{job}}})"
        )
        rules.append(
            _alert(
                "CharterFlowBackupTooOld",
                f"time() - {since} > {max_age}",
                "5m",
                "critical",
                f"{where}: no successful scheduled backup for longer than the schedule allows "
                f"({max_age // 3600} h).",
            )
        )
    return rules


def prometheus_rule(cf: CharterFlow) -> Manifest:
    return {
        "apiVersion": api.PROMETHEUS_RULE.api_version,
        "kind": api.PROMETHEUS_RULE.kind,
        "metadata": _meta(cf, cf.name, "app"),
        "spec": {
            "groups": [{"name": f"charterflow-{cf.namespace}-{cf.name}", "rules": alerts(cf)}]
        },
    }


def monitoring_children(cf: CharterFlow) -> list[Manifest] | None:
    """The PodMonitors and the PrometheusRule, or None when ``spec.monitoring`` is off."""
    if not cf.spec["monitoring"]["enabled"]:
        return None
    return [pod_monitor(cf, "api"), pod_monitor(cf, "worker"), prometheus_rule(cf)]
