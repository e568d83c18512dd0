"""What every pod shares (children/pods.py): restricted security, pass-through settings."""

from __future__ import annotations

from charterflow_operator.instance import (
    CharterFlow,
)

from tests.unit.operator.conftest import deployment, pod_specs, respec


def test_pods_run_restricted(cf: CharterFlow) -> None:
    for pod in pod_specs(cf):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_pod_settings_pass_through(cf: CharterFlow) -> None:
    changed = respec(
        cf,
        api__nodeSelector={"pool": "app"},
        api__tolerations=[{"key": "dedicated", "operator": "Exists"}],
        api__priorityClassName="high",
        api__podAnnotations={"sidecar": "off"},
        api__env=[{"name": "LOG_LEVEL", "value": "DEBUG"}],
        api__envFrom=[{"secretRef": {"name": "extra"}}],
        image__pullSecrets=[{"name": "registry"}],
    )
    template = deployment(changed, "api")["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "app"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["priorityClassName"] == "high"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert template["metadata"]["annotations"]["sidecar"] == "off"
    (container,) = pod["containers"]
    assert container["env"][-1] == {"name": "LOG_LEVEL", "value": "DEBUG"}  # last one wins
    assert container["envFrom"][-1] == {"secretRef": {"name": "extra"}}
    assert "nodeSelector" not in deployment(changed, "worker")["spec"]["template"]["spec"]
