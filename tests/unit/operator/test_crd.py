"""The CRD is structural, explained field by field, in step with the operator's defaults, and
accepts the sample while refusing what the issue lists (checked with jsonschema; the CEL rules'
regular expression is checked directly). The API server's own verdicts are in tests/e2e."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from charterflow_operator import api
from charterflow_operator.instance import DEFAULTS, referenced_secret_names

from tests.unit.operator.conftest import REPO, SAMPLE_PATH, SECRETS_PATH

CHART_SCHEMA_PATH = REPO / "charts" / "charterflow-operator" / "values.schema.json"

# Kubernetes' own types, passed through unchanged: the API server validates them on the child
# (an invalid NetworkPolicyPeer fails the apply, which Ready reports as ApplyFailed).
_EGRESS = "spec.networkPolicy.egress"
FREE_FORM = {
    "spec.api.affinity",
    "spec.worker.affinity",
    "spec.networkPolicy.ingressFrom[]",
    "spec.networkPolicy.metricsFrom[]",
    f"{_EGRESS}.dns[]",
    f"{_EGRESS}.extra[]",
    *(f"{_EGRESS}.{name}.to[]" for name in ("database", "redis", "storage", "models")),
}


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (dotted path, schema) below ``node``, array items as ``path[]``."""
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        yield here, child
        yield from walk(child, here)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
        yield f"{path}[]", node["items"]


def test_names_scope_and_subresource(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "charterflows.charterflow.app"
    assert spec["names"]["shortNames"] == ["cf"]
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert version["name"] == api.VERSION
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Version", "Phase", "API", "Workers", "URL", "Age"]


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    for path, node in walk(schema):
        if node.get("x-kubernetes-int-or-string"):
            continue
        assert "type" in node, f"{path} has no type"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in FREE_FORM, f"{path} keeps unknown fields"
        if node["type"] == "object" and path not in FREE_FORM and path != "metadata":
            assert "properties" in node or "additionalProperties" in node, path


def test_every_field_has_a_description(schema: dict[str, Any]) -> None:
    missing = [
        path
        for path, node in walk(schema)
        if path != "metadata" and not path.endswith("[]") and not node.get("description")
    ]
    assert missing == []


def crd_defaults(node: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Leaf defaults of the schema (``default: {}`` only enables nested defaults)."""
    found: dict[tuple[str, ...], Any] = {}
    for name, child in node.get("properties", {}).items():
        here = (*path, name)
        if child.get("default") not in (None, {}):
            found[here] = child["default"]
        found.update(crd_defaults(child, here))
    return found


def flat(mapping: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and key != "resources":
            found.update(flat(value, (*path, key)))
        else:
            found[(*path, key)] = value
    return found


def test_builder_defaults_equal_crd_defaults(schema: dict[str, Any]) -> None:
    assert flat(DEFAULTS) == crd_defaults(schema["properties"]["spec"])


def to_jsonschema(node: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) to JSON Schema: strict objects, no x-kubernetes keys."""
    if isinstance(node, list):
        return [to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("format") == "int64":
        del out["format"]  # an OpenAPI format that jsonschema does not know
    return out


@pytest.fixture(scope="session")
def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(to_jsonschema(schema))


@pytest.mark.parametrize(
    "path", sorted((SAMPLE_PATH.parent).glob("charterflow*.yaml")), ids=lambda p: p.name
)
def test_every_sample_is_valid(validator: jsonschema.Draft7Validator, path: Path) -> None:
    resource = yaml.safe_load(path.read_text())
    assert resource["kind"] == "CharterFlow"
    assert list(validator.iter_errors(resource)) == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("spec", "backup", "retentionDays"), -1, "retentionDays"),
        (("spec", "bogus"), 1, "bogus"),
        (("spec", "image", "pullPolicy"), "Sometimes", "pullPolicy"),
        (("spec", "worker", "concurrency"), 0, "concurrency"),
        (("spec", "api", "replicas"), 101, "replicas"),
        (("spec", "migrations", "backoffLimit"), -1, "backoffLimit"),
        (("spec", "migrations", "activeDeadlineSeconds"), 0, "activeDeadlineSeconds"),
        (("spec", "restore"), {"name": "prod"}, "from"),
        (("spec", "restore"), {"from": ""}, "from"),
        (("spec", "restore"), {"from": "latest", "name": "Not_A_Name"}, "name"),
        (("spec", "llm"), {"url": "ollama:11434", "model": "m"}, "url"),
        (("spec", "llm"), {"url": "http://ollama:11434/v1"}, "model"),
        (("spec", "llm"), {"url": "http://o/v1", "model": "m", "timeoutSeconds": 0}, "timeout"),
        (
            ("spec", "llm"),
            {"url": "http://o/v1", "model": "m", "apiKeySecretRef": {"key": "k"}},
            "name",
        ),
        (("spec", "llm"), {"url": "http://o/v1", "model": "m", "embeddings": {"url": "x"}}, "url"),
    ],
)
def test_invalid_values_are_refused(
    validator: jsonschema.Draft7Validator,
    sample: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    field: str,
) -> None:
    bad = copy.deepcopy(sample)
    target = bad
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    errors = list(validator.iter_errors(bad))
    assert errors, f"{path} = {value!r} was accepted"
    assert any(field in (str(e.path) + e.message) for e in errors)


def cel_rules(schema: dict[str, Any]) -> dict[str, str]:
    return {
        path: rule["rule"]
        for path, node in walk(schema)
        for rule in node.get("x-kubernetes-validations", [])
    }


def test_cross_field_rules_exist(schema: dict[str, Any]) -> None:
    rules = cel_rules(schema)
    assert "self.minReplicas <= self.maxReplicas" in rules["spec.api.autoscaling"]
    assert "self.minReplicas <= self.maxReplicas" in rules["spec.worker.autoscaling"]
    assert "has(self.host)" in rules["spec.ingress"]
    assert "self.schedule.matches(" in rules["spec.backup"]
    assert rules["spec.restore"] == "self == oldSelf"  # a restore is chosen once


def test_restore_is_accepted(validator: jsonschema.Draft7Validator, sample: dict[str, Any]) -> None:
    sample["spec"]["restore"] = {"from": "latest", "name": "prod", "prefix": "backups/"}
    sample["spec"]["migrations"] = {"podAnnotations": {"sidecar.istio.io/inject": "false"}}
    assert list(validator.iter_errors(sample)) == []


def test_new_fields_are_accepted(
    validator: jsonschema.Draft7Validator, sample: dict[str, Any]
) -> None:
    """retentionDays 0 keeps every backup (as `charterflow backup` and the docs say); the
    identity, pod and deletion settings of issue 15 validate."""
    spec = sample["spec"]
    spec["backup"]["retentionDays"] = 0
    spec["deletionPolicy"] = "Snapshot"
    spec["serviceAccount"] = {
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}
    }
    spec["podLabels"] = {"azure.workload.identity/use": "true"}
    spec["securityContext"] = {"setUserIds": False}
    spec["image"]["digest"] = "sha256:" + "0" * 64
    spec["api"]["tmpSizeLimit"] = "3Gi"
    spec["worker"]["autoscaling"] = {"enabled": True, "queueDepth": {"averagePerReplica": 10}}
    assert list(validator.iter_errors(sample)) == []
    spec["deletionPolicy"] = "Orphan"
    spec["image"]["digest"] = "latest"
    spec["api"]["tmpSizeLimit"] = "lots"
    assert len(list(validator.iter_errors(sample))) == 3


@pytest.mark.parametrize(
    ("schedule", "valid"),
    [
        ("0 3 * * *", True),
        ("*/15 1-5 * JAN mon-fri", True),
        ("0 0 1,15 * 0", True),
        ("@daily", True),
        ("every day", False),
        ("0 3 * *", False),
        ("0 3 * * * *", False),
        ("@sometimes", False),
        ("", False),
    ],
)
def test_schedule_rule(schema: dict[str, Any], schedule: str, valid: bool) -> None:
    rule = cel_rules(schema)["spec.backup"]
    pattern = re.search(r"matches\('(.*)'\)", rule)
    assert pattern is not None
    assert bool(re.fullmatch(pattern.group(1), schedule)) is valid


def test_sample_secrets_are_the_referenced_ones(sample: dict[str, Any]) -> None:
    given = {doc["metadata"]["name"] for doc in yaml.safe_load_all(SECRETS_PATH.read_text())}
    referenced = referenced_secret_names("charterflow", sample["spec"])
    assert referenced - given == {"charterflow-jwt"}  # the operator generates that one


def test_name_rule_keeps_every_child_name_valid(crd: dict[str, Any]) -> None:
    """The CEL rule on metadata.name (the API server's verdict: tests/e2e) allows exactly names
    whose children are valid DNS labels: the longest, ``<name>-worker``, fits in 63."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    (rule,) = schema["x-kubernetes-validations"]
    pattern = re.search(r"matches\('([^']+)'\)", rule["rule"])
    assert pattern is not None
    assert "size(self.metadata.name) <= 40" in rule["rule"]
    assert "40 characters" in rule["message"]
    label = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    for name in ("a" * 40, "acme", "team-a-prod"):
        assert re.fullmatch(pattern.group(1), name)
        for child in (f"{name}-worker", f"{name}-backup", f"{name}-config", f"{name}-app"):
            assert len(child) <= 63
            assert label.match(child)
    for name in ("1acme", "acme.prod", "Acme", "acme-"):
        assert not re.fullmatch(pattern.group(1), name)


def test_the_charts_llm_schema_is_the_crds(schema: dict[str, Any]) -> None:
    """values.schema.json checks ``instance.spec.llm`` at ``helm install`` with the CRD's own
    schema (a copy, converted as ``to_jsonschema`` does): the two cannot drift apart."""
    values = json.loads(CHART_SCHEMA_PATH.read_text())
    copied = values["properties"]["instance"]["properties"]["spec"]["properties"]["llm"]
    assert copied == to_jsonschema(schema["properties"]["spec"]["properties"]["llm"])


def test_a_full_spec_llm_is_accepted(
    validator: jsonschema.Draft7Validator, sample: dict[str, Any]
) -> None:
    sample["spec"]["llm"] = {
        "url": "https://api.example.com/v1",
        "model": "gpt-4o-mini",
        "apiKeySecretRef": {"name": "charterflow-llm"},
        "timeoutSeconds": 30,
        "connectTimeoutSeconds": 5,
        "embeddings": {"url": "http://embed:8080/v1", "model": "all-minilm", "timeoutSeconds": 9},
    }
    assert list(validator.iter_errors(sample)) == []
