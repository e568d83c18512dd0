"""Leadership (leadership.py): Kopf's peering rule, applied to the passes Kopf does not run."""

from __future__ import annotations

import datetime as dt

from charterflow_operator.leadership import Leadership, leads_in
from charterflow_operator.reconcile import Reconciler

from tests.unit.operator.fake_kube import FakeKube

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def peer(priority: int, seconds_ago: int = 0, lifetime: int = 60) -> dict[str, object]:
    seen = (NOW - dt.timedelta(seconds=seconds_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen}


def test_a_live_peer_with_a_higher_or_equal_priority_leads() -> None:
    assert leads_in({"me": peer(50)}, "me", 50, NOW)
    assert leads_in({"me": peer(50), "low": peer(10)}, "me", 50, NOW)
    assert not leads_in({"me": peer(50), "high": peer(100)}, "me", 50, NOW)
    assert not leads_in({"me": peer(50), "twin": peer(50)}, "me", 50, NOW)  # Kopf pauses both
    assert leads_in({"me": peer(50), "dead": peer(100, seconds_ago=61)}, "me", 50, NOW)


def test_a_demoted_replica_runs_no_pass() -> None:
    kube = FakeKube()
    status = {"me": peer(50), "high": {"priority": 100, "lifetime": 60}}  # lastseen: now
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "status": status}
    kube.add({**peering, "metadata": {"name": "cf", "namespace": "team-a"}})
    clock = [0.0]
    leadership = Leadership(kube, "me", 50, "cf", clusterwide=False, clock=lambda: clock[0])
    reconciler = Reconciler(kube, leadership=leadership)  # type: ignore[arg-type]
    sample = {"apiVersion": "charterflow.app/v1alpha1", "kind": "CharterFlow"}
    kube.add({**sample, "metadata": {"name": "x", "namespace": "team-a"}, "spec": {}})
    reconciler.run_pass(("team-a", "x"))
    assert kube.writes == []

    body = kube.find("KopfPeering", "team-a", "cf")
    assert body is not None
    del body["status"]["high"]  # the leader left
    reconciler.run_pass(("team-a", "x"))
    assert kube.writes == []  # the verdict is cached for a second
    clock[0] += 1.0
    assert leadership.leads("team-a")
    assert Leadership.standalone().leads("anywhere")
