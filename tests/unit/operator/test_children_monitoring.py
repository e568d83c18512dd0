"""PodMonitors and the PrometheusRule (children/monitoring.py) and the cron schedule's longest
gap behind the backup alert; reconcile's handling of their CRDs is in test_reconcile.py."""

from __future__ import annotations

import datetime as dt

import pytest
from charterflow_operator.children.monitoring import backup_max_age, monitoring_children
from charterflow_operator.cron import longest_gap
from charterflow_operator.instance import CharterFlow

from tests.unit.operator.conftest import respec


def test_off_by_default(cf: CharterFlow) -> None:
    assert monitoring_children(cf) is None


def test_pod_monitors_scrape_the_metrics_ports_with_instance_labels(cf: CharterFlow) -> None:
    on = respec(cf, monitoring={"enabled": True, "interval": "15s", "labels": {"release": "kps"}})
    api, worker, rule = monitoring_children(on) or []
    assert (api["kind"], worker["kind"], rule["kind"]) == (
        "PodMonitor",
        "PodMonitor",
        "PrometheusRule",
    )
    assert api["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    assert worker["spec"]["podMetricsEndpoints"][0]["port"] == "health"
    assert api["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert api["spec"]["podTargetLabels"] == [
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
    ]
    for manifest in (api, worker, rule):
        assert manifest["metadata"]["labels"]["release"] == "kps"
        assert manifest["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_rules_cover_errors_latency_queue_failures_and_backup_age(cf: CharterFlow) -> None:
    on = respec(cf, monitoring={"enabled": True})
    *_, rule = monitoring_children(on) or []
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r["expr"] for r in group["rules"]}
    assert set(alerts) == {
        "CharterFlowApiErrors",
        "CharterFlowApiSlow",
        "CharterFlowIngestBacklog",
        "CharterFlowIngestStalled",
        "CharterFlowDocumentsFailing",
        "CharterFlowBackupTooOld",
    }
    for expr in alerts.values():
        assert f'namespace="{cf.namespace}"' in expr  # never another instance's series
    assert 'status=~"5.."' in alerts["CharterFlowApiErrors"]
    assert "histogram_quantile(0.99" in alerts["CharterFlowApiSlow"]
    # The sample backs up daily: a day plus the grace.
    assert alerts["CharterFlowBackupTooOld"].endswith(f"> {26 * 3600}")
    assert 'cronjob="charterflow-backup"' in alerts["CharterFlowBackupTooOld"]
    hourly = respec(on, backup__schedule="@hourly")
    assert backup_max_age(hourly) == dt.timedelta(hours=3)
    suspended = respec(on, backup__suspend=True)
    *_, rule = monitoring_children(suspended) or []
    names = {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}
    assert "CharterFlowBackupTooOld" not in names


@pytest.mark.parametrize(
    ("schedule", "gap"),
    [
        ("0 3 * * *", dt.timedelta(days=1)),
        ("@hourly", dt.timedelta(hours=1)),
        ("*/5 * * * *", dt.timedelta(minutes=5)),
        ("0 3 * * 1-5", dt.timedelta(days=3)),  # Friday to Monday
        ("30 2 * * sun", dt.timedelta(days=7)),
        ("0 0 1 * *", dt.timedelta(days=31)),
        ("0 1,13 * * *", dt.timedelta(hours=12)),
        ("0 0 1,15 * mon", dt.timedelta(days=7)),  # day of month OR Monday
    ],
)
def test_longest_gap(schedule: str, gap: dt.timedelta) -> None:
    assert longest_gap(schedule) == gap


def test_an_unreadable_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="five fields"):
        longest_gap("every day")
