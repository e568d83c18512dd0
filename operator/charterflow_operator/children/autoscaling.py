"""How many pods run and how many may go: the optional HPAs and the PodDisruptionBudgets."""

from __future__ import annotations

from charterflow_operator import api
from charterflow_operator.instance import CharterFlow, Manifest


def hpa(cf: CharterFlow, component: str) -> Manifest | None:
    """autoscaling/v2 HPA on CPU, or None when autoscaling is disabled (then it is pruned)."""
    scaling = cf.spec[component]["autoscaling"]
    if not scaling["enabled"]:
        return None
    name = cf.component_name(component)
    target = {
        "type": "Utilization",
        "averageUtilization": scaling["targetCPUUtilizationPercentage"],
    }
    return {
        "apiVersion": api.HPA.api_version,
        "kind": api.HPA.kind,
        "metadata": cf.meta(name, component),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": api.DEPLOYMENT.api_version,
                "kind": api.DEPLOYMENT.kind,
                "name": name,
            },
            "minReplicas": scaling["minReplicas"],
            "maxReplicas": scaling["maxReplicas"],
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }


def pdb(cf: CharterFlow, component: str) -> Manifest:
    """At most one pod down at a time: protects >1 replicas, never blocks a drain of one."""
    return {
        "apiVersion": api.PDB.api_version,
        "kind": api.PDB.kind,
        "metadata": cf.meta(cf.component_name(component), component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": cf.selector_labels(component)},
        },
    }
