"""The chart grants the operator exactly what its one list of child kinds needs: every kind it
applies can be watched, created and patched, the ones it prunes deleted too."""

from __future__ import annotations

import re
from typing import Any

import yaml
from charterflow_operator import api

from tests.unit.operator.conftest import REPO

HELPERS = REPO / "charts" / "charterflow-operator" / "templates" / "_helpers.tpl"
APPLY = {"get", "list", "watch", "create", "patch"}


def namespaced_rules() -> list[dict[str, Any]]:
    """The rules of the chart's ``namespacedRules`` helper (plain YAML inside the define)."""
    text = HELPERS.read_text()
    block = re.search(
        r'define "charterflow-operator\.namespacedRules" -}}\n(.*?)\{\{- end }}', text, re.S
    )
    assert block, "namespacedRules helper not found"
    return list(yaml.safe_load(block.group(1)))


def verbs(group: str, plural: str) -> set[str]:
    return {
        verb
        for rule in namespaced_rules()
        if group in rule["apiGroups"] and plural in rule["resources"]
        for verb in rule["verbs"]
    }


def test_every_child_kind_is_granted_what_reconcile_does_with_it() -> None:
    for kind in api.CHILD_KINDS:
        needed = APPLY | ({"delete"} if kind in api.DELETED_KINDS else set())
        assert verbs(kind.group, kind.plural) >= needed, kind


def test_monitoring_kinds_are_applied_and_pruned_without_a_watch() -> None:
    for kind in api.MONITORING_KINDS:
        assert verbs(kind.group, kind.plural) == {"get", "create", "patch", "delete"}, kind


def test_nothing_is_granted_beyond_the_children_and_what_status_needs() -> None:
    granted = {
        (group, plural)
        for rule in namespaced_rules()
        for group in rule["apiGroups"]
        for plural in rule["resources"]
    }
    children = {(kind.group, kind.plural) for kind in (*api.CHILD_KINDS, *api.MONITORING_KINDS)}
    others = {
        (api.GROUP, api.PLURAL),
        (api.GROUP, f"{api.PLURAL}/status"),
        (api.SECRET.group, api.SECRET.plural),
        (api.POD.group, api.POD.plural),
        ("", "events"),
    }
    assert granted == children | others
    assert verbs(api.POD.group, api.POD.plural) == {"list"}
    assert "delete" not in verbs(api.SECRET.group, api.SECRET.plural)
