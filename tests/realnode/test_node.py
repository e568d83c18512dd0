"""The real node itself: real containers, probes, Service routing, API reachable from pods."""

from __future__ import annotations

import json

from tests.realnode.conftest import RealCluster
from tests.support import node as real_node
from tests.support.processes import wait_until


def test_cluster_dns_pod_is_ready_through_the_api_and_answers_from_the_host(
    real: RealCluster,
) -> None:
    """CoreDNS runs in a real container; it turns Ready only after listing Services through the
    ``kubernetes`` Service (pod -> API server), and its ClusterIP answers this host (kube-proxy)."""
    pods = real.get("-n", "kube-system", "pods", "-l", "k8s-app=kube-dns")["items"]
    assert pods, "no CoreDNS pod"
    status = pods[0]["status"]
    container = status["containerStatuses"][0]
    assert container["ready"] is True
    assert container["containerID"].startswith("containerd://")
    assert status["podIP"].startswith("10.244.")

    addresses = real_node.resolve("kubernetes.default.svc.cluster.local", real.dns)
    service_ip = real.get("-n", "default", "service", "kubernetes")["spec"]["clusterIP"]
    assert addresses == [service_ip]


def test_restricted_pod_runs_as_nonroot_with_probes_and_logs(
    real: RealCluster, real_namespace: str
) -> None:
    """A pod under Pod Security ``restricted`` lands on the real node (not kwok) and its TCP
    readiness probe really runs; ``kubectl logs`` reaches the kubelet at the node IP."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dns", "namespace": real_namespace},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "coredns",
                    "image": real_node.COREDNS_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": ["-dns.port", "1053"],
                    "readinessProbe": {"tcpSocket": {"port": 1053}, "periodSeconds": 1},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    real.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def ready() -> bool:
        status = real.get("-n", real_namespace, "pod", "dns")["status"]
        return any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )

    wait_until(ready, 90, "pod dns Ready")
    placed = real.get("-n", real_namespace, "pod", "dns")["spec"]["nodeName"]
    assert placed == real_node.NODE_NAME
    assert "CoreDNS" in real.kubectl("-n", real_namespace, "logs", "dns")
