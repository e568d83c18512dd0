"""Status from observed children: phases, reasons, stable transition times, generations."""

from __future__ import annotations

from typing import Any

from charterflow_operator.builders import Owner
from charterflow_operator.status import Observed, compute

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def body(generation: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "charterflow", "generation": generation}, "status": status or {}}


def deployment(replicas: int, ready: int, *, updated: int | None = None) -> dict[str, Any]:
    updated = replicas if updated is None else updated
    return {
        "metadata": {"generation": 2},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": {"app.kubernetes.io/version": "0.1.0"}}},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"}],
        },
    }


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_ready_when_both_rollouts_complete(owner: Owner) -> None:
    seen = Observed(api=deployment(2, 2), worker=deployment(1, 1), cronjob=None)
    status = compute(body(), owner, seen, T0)
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == 3
    assert status["api"] == {"replicas": 2, "readyReplicas": 2, "ready": "2/2"}
    assert status["worker"]["ready"] == "1/1"
    assert status["version"] == "0.1.0"
    assert status["url"] == "https://charterflow.example.com"
    found = conditions(status)
    assert found["Ready"]["status"] == "True"
    assert found["MigrationsComplete"]["reason"] == "NotRequired"
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_progressing_while_pods_come_up(owner: Owner) -> None:
    seen = Observed(api=deployment(2, 1, updated=1), worker=deployment(1, 1))
    status = compute(body(), owner, seen, T0)
    assert status["phase"] == "Progressing"
    assert conditions(status)["Ready"]["reason"] == "RolloutInProgress"
    assert conditions(status)["ApiAvailable"]["status"] == "True"
    assert "version" not in status  # nothing has finished rolling out yet


def test_missing_secret_names_it(owner: Owner) -> None:
    message = "Secret 'charterflow-redis' (spec.redis.urlSecretRef) not found in team-a"
    status = compute(body(), owner, Observed(missing_secret=message), T0)
    assert status["phase"] == "Degraded"
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "MissingSecret",
        message,
    )


def test_paused_says_so(owner: Owner) -> None:
    seen = Observed(api=deployment(2, 2), worker=deployment(1, 1), paused=True)
    status = compute(body(), owner, seen, T0)
    assert status["phase"] == "Paused"
    assert conditions(status)["Ready"]["reason"] == "Paused"


def test_transition_time_moves_only_on_change(owner: Owner) -> None:
    ready = Observed(api=deployment(2, 2), worker=deployment(1, 1))
    first = compute(body(), owner, ready, T0)
    again = compute(body(status=first), owner, ready, T1)
    assert again == first  # nothing changed: nothing to write
    broken = compute(body(status=first), owner, Observed(missing_secret="gone"), T1)
    assert conditions(broken)["Ready"]["lastTransitionTime"] == T1
    assert conditions(broken)["BackupScheduled"]["status"] == "False"
    assert broken["version"] == "0.1.0"  # what runs is still known


def test_backup_condition_follows_suspend(owner: Owner) -> None:
    cron = {"spec": {"schedule": "0 3 * * *", "suspend": True}, "status": {}}
    seen = Observed(api=deployment(2, 2), worker=deployment(1, 1), cronjob=cron)
    assert conditions(compute(body(), owner, seen, T0))["BackupScheduled"]["reason"] == "Suspended"
    cron["spec"]["suspend"] = False
    cron["status"] = {"lastSuccessfulTime": T0}
    status = compute(body(), owner, seen, T0)
    assert conditions(status)["BackupScheduled"]["status"] == "True"
    assert status["lastBackup"] == {"time": T0, "result": "Succeeded"}
