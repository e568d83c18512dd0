"""Shared inputs for the operator's unit tests: the CRD, the sample CharterFlow (as an object
too), and helpers that pick children out of what it builds."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from charterflow_operator import children
from charterflow_operator.instance import CharterFlow, with_defaults

REPO = Path(__file__).resolve().parents[3]
CRD_PATH = REPO / "crds" / "charterflow.app_charterflows.yaml"
SAMPLE_PATH = REPO / "manifests" / "samples" / "charterflow.yaml"
SECRETS_PATH = REPO / "manifests" / "samples" / "secrets.yaml"


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


@pytest.fixture(scope="session")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.fixture
def sample() -> dict[str, Any]:
    return yaml.safe_load(SAMPLE_PATH.read_text())


@pytest.fixture
def cf(sample: dict[str, Any]) -> CharterFlow:
    body = {**sample, "metadata": {**sample["metadata"], "namespace": "team-a", "uid": "u-1"}}
    return CharterFlow.from_body(body)


SECRETS = {
    "charterflow-database": {"url": "cG9zdGdyZXNxbDovL3g="},
    "charterflow-redis": {"url": "cmVkaXM6Ly94"},
    "charterflow-s3": {"AWS_ACCESS_KEY_ID": "YQ==", "AWS_SECRET_ACCESS_KEY": "Yg=="},
    "charterflow-jwt": {"secret": "c2VjcmV0"},
}


def everything(cf: CharterFlow) -> list[dict[str, Any]]:
    desired = children.build(cf, SECRETS)
    return desired.base + desired.workloads


def deployment(cf: CharterFlow, component: str) -> dict[str, Any]:
    name = f"{cf.name}-{component}"
    (found,) = [
        m for m in everything(cf) if m["kind"] == "Deployment" and m["metadata"]["name"] == name
    ]
    return found


def respec(cf: CharterFlow, **changes: Any) -> CharterFlow:
    spec = copy.deepcopy(cf.spec)
    for dotted, value in changes.items():
        target = spec
        *parents, last = dotted.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return CharterFlow(cf.name, cf.namespace, cf.uid, with_defaults(spec))


def pod_templates(cf: CharterFlow) -> list[dict[str, Any]]:
    """The pod templates of the API, the worker and the backup CronJob."""
    cron = next(m for m in everything(cf) if m["kind"] == "CronJob")
    return [
        deployment(cf, "api")["spec"]["template"],
        deployment(cf, "worker")["spec"]["template"],
        cron["spec"]["jobTemplate"]["spec"]["template"],
    ]


def pod_specs(cf: CharterFlow) -> list[dict[str, Any]]:
    return [template["spec"] for template in pod_templates(cf)]
