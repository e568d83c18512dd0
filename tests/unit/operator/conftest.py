"""Shared inputs for the operator's unit tests: the CRD, the sample CharterFlow, an Owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from charterflow_operator.builders import Owner

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
def owner(sample: dict[str, Any]) -> Owner:
    body = {**sample, "metadata": {**sample["metadata"], "namespace": "team-a", "uid": "u-1"}}
    return Owner.from_body(body)


SECRETS = {
    "charterflow-database": {"url": "cG9zdGdyZXNxbDovL3g="},
    "charterflow-redis": {"url": "cmVkaXM6Ly94"},
    "charterflow-s3": {"AWS_ACCESS_KEY_ID": "YQ==", "AWS_SECRET_ACCESS_KEY": "Yg=="},
    "charterflow-jwt": {"secret": "c2VjcmV0"},
}
