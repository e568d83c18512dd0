"""The desired children as a whole (children.build): every kind, ownership, the checksum that
rolls the pods, idempotence."""

from __future__ import annotations

import copy

from charterflow_operator import api, children
from charterflow_operator.instance import (
    CharterFlow,
    with_defaults,
)

from tests.unit.operator.conftest import SECRETS, everything, respec


def test_sample_builds_every_child(cf: CharterFlow) -> None:
    kinds = sorted(m["kind"] for m in everything(cf))
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "Deployment",
            "Deployment",
            "Ingress",
            "CronJob",
        ]
    )


def test_children_are_labelled_and_owned(cf: CharterFlow) -> None:
    for manifest in everything(cf):
        meta = manifest["metadata"]
        assert meta["namespace"] == "team-a"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "charterflow-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == "charterflow"
        assert meta["labels"]["app.kubernetes.io/version"] == "0.1.0"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "charterflow.app/v1alpha1",
                "kind": "CharterFlow",
                "name": "charterflow",
                "uid": "u-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def digest(cf: CharterFlow, secrets: dict[str, dict[str, str]]) -> str:
    desired = children.build(cf, secrets)
    api_deployment = next(
        m for m in desired.workloads if m["metadata"]["name"] == "charterflow-api"
    )
    return api_deployment["spec"]["template"]["metadata"]["annotations"][api.CHECKSUM_ANNOTATION]


def test_checksum_follows_config_and_secret_data(cf: CharterFlow) -> None:
    before = digest(cf, SECRETS)
    assert digest(cf, copy.deepcopy(SECRETS)) == before
    rotated = {**SECRETS, "charterflow-database": {"url": "b3RoZXI="}}
    assert digest(cf, rotated) != before
    assert digest(respec(cf, logLevel="DEBUG"), SECRETS) != before
    assert digest(respec(cf, api__replicas=3), SECRETS) == before  # not configuration


def test_building_is_idempotent(cf: CharterFlow) -> None:
    assert children.build(cf, SECRETS) == children.build(cf, SECRETS)
    assert with_defaults(cf.spec) == cf.spec
