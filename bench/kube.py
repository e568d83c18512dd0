"""The operator on the local control plane: time to children and to Ready, its memory and CPU,
and the API writes it makes when nothing has changed.

A fresh control plane (``tests.support.cluster``: etcd, kube-apiserver, controller-manager,
scheduler, kwok) and the operator as its console script, exactly as the e2e tests run it.

- Latency: a CharterFlow is created at t0 (with its Secrets already there); children and the
  CharterFlow are polled every 100 ms. "children" is when the last child that exists at Ready
  first appeared; "Ready" when ``status.phase`` is Ready for the current generation. One
  resource (repeated), then 50 at once (10 in each of 5 namespaces).
- Resources: RSS (``VmRSS``, peak ``VmHWM``) and CPU seconds (``utime + stime``) from
  ``/proc/<pid>``.
- Steady state: with the backstop resync at ``RESYNC_SECONDS`` (short, so passes happen in
  the window), the operator's passes (its ``charterflow_operator_reconciles_total``) and the
  apiserver's write requests (``apiserver_request_total``, verbs POST/PUT/PATCH/APPLY/DELETE)
  on the resources the operator owns, excluding the ``status`` subresource of the children
  (which Kubernetes controllers write) but including the CharterFlows' own status.

    python -m bench.kube [--repeats 3] [--many 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from charterflow_operator.api import CHILD_KINDS, SECRET
from kubernetes import client, config

from bench.common import ROOT, median, write_result
from tests.support import cluster as cluster_support
from tests.support.cluster import LocalCluster, k8s_bin_dir
from tests.support.processes import ManagedProcess, free_port, wait_until

CRD = ROOT / "crds" / "charterflow.app_charterflows.yaml"
SAMPLE = ROOT / "manifests" / "samples" / "charterflow.yaml"
SECRETS = ROOT / "manifests" / "samples" / "secrets.yaml"
PREFIX = "bench-"
RESYNC_SECONDS = 10
POLL_SECONDS = 0.1
TIMEOUT = 300
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
OWNED = {kind.plural for kind in (*CHILD_KINDS, SECRET)}
SMALL = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1"}}
GROUP, VERSION, PLURAL = "charterflow.app", "v1alpha1", "charterflows"
#: List URLs of every kind of child (the operator's own list, plus the generated JWT Secret).
CHILD_PATHS = [
    f"/api/{k.api_version}/{k.plural}" if k.group == "" else f"/apis/{k.api_version}/{k.plural}"
    for k in (*CHILD_KINDS, SECRET)
]


def proc_stats(pid: int) -> dict[str, float]:
    """RSS, peak RSS (MiB) and CPU seconds of ``pid``, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    mem = {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return {"rss_mib": round(mem["VmRSS"], 1), "peak_rss_mib": round(mem["VmHWM"], 1), "cpu_s": cpu}


class Bench:
    """The cluster, the operator and the helpers the measurements use."""

    def __init__(self, root: Path) -> None:
        cluster_support.NODE_COUNT = 4  # room for 50 instances' pods (110 pods per node)
        self.cluster = LocalCluster(root, k8s_bin_dir(build=False)).start()
        self.env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        self.api = config.new_client_from_config(config_file=str(self.cluster.kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.operator: ManagedProcess | None = None
        self.metrics_port = 0

    def kubectl(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [str(self.cluster.bin_dir / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return result.stdout

    def start_operator(self, log: Path) -> None:
        self.kubectl("apply", "--server-side", "-f", str(CRD))
        self.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        health, self.metrics_port = free_port(), free_port()
        env = {
            **self.env,
            "WATCH_NAMESPACES": f"{PREFIX}*",
            "OPERATOR_STANDALONE": "true",
            "HEALTH_PORT": str(health),
            "METRICS_PORT": str(self.metrics_port),
            "RESYNC_SECONDS": str(RESYNC_SECONDS),
        }
        script = Path(sys.executable).with_name("charterflow-operator")
        self.operator = ManagedProcess("charterflow-operator", [str(script)], log, env=env).start()
        self.operator.wait_ready(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz").status == 200
        )

    def stats(self) -> dict[str, float]:
        if self.operator is None or self.operator.proc is None:
            raise RuntimeError("the operator is not running")
        return proc_stats(self.operator.proc.pid)

    def passes(self) -> int:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        match = re.search(
            r'^charterflow_operator_reconciles_total\{result="success"\} (\S+)$', text, re.M
        )
        return int(float(match.group(1))) if match else 0

    def writes(self) -> Counter[str]:
        """The apiserver's write requests so far on what the operator writes, by verb/resource."""
        counts: Counter[str] = Counter()
        for line in self.kubectl("get", "--raw", "/metrics").splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            verb, resource, sub = (
                labels.get("verb"),
                labels.get("resource"),
                labels.get("subresource", ""),
            )
            if verb not in WRITE_VERBS:
                continue
            if resource == PLURAL or (resource in OWNED and sub == ""):
                counts[f"{verb} {resource}{'/' + sub if sub else ''}"] += int(
                    float(line.split()[-1])
                )
        return counts

    def namespace(self) -> str:
        name = f"{PREFIX}{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        wait_until(
            lambda: self.core.read_namespaced_service_account("default", name) is not None,
            60,
            f"default service account in {name}",
        )
        self.kubectl("apply", "-n", name, "-f", str(SECRETS))
        return name

    def create(self, namespace: str, name: str) -> None:
        body = yaml.safe_load(SAMPLE.read_text())
        body["metadata"] = {"name": name, "namespace": namespace}
        body["spec"]["api"]["resources"] = SMALL
        body["spec"]["worker"]["resources"] = SMALL
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def list_labelled(self, path: str) -> list[dict[str, Any]]:
        """Every object at ``path`` (all namespaces) with an instance label."""
        url = f"{self.api.configuration.host}{path}?labelSelector=app.kubernetes.io/instance"
        response = self.api.call_api("GET", url, header_params={"Accept": "application/json"})
        response.read()
        return json.loads(response.data)["items"]

    def observe(self, instances: set[tuple[str, str]], t0: float) -> dict[str, list[float]]:
        """Poll until every instance is Ready; seconds from ``t0`` to children and to Ready."""
        seen: dict[tuple[str, str, str], float] = {}  # (ns, kind/name, instance) -> first seen
        ready: dict[tuple[str, str], float] = {}
        children_at_ready: dict[tuple[str, str], set[str]] = {}
        while len(ready) < len(instances):
            if time.monotonic() - t0 > TIMEOUT:
                missing = sorted(instances - ready.keys())[:5]
                raise TimeoutError(f"not Ready after {TIMEOUT}s: {missing}")
            now = time.monotonic() - t0
            present: dict[tuple[str, str], set[str]] = {}
            for path in CHILD_PATHS:
                for item in self.list_labelled(path):
                    meta = item["metadata"]
                    key = (meta["namespace"], meta["labels"]["app.kubernetes.io/instance"])
                    if key not in instances:
                        continue
                    child = f"{path.rsplit('/', 1)[1]}/{meta['name']}"
                    seen.setdefault((*key, child), now)
                    present.setdefault(key, set()).add(child)
            cfs = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
            for cf in cfs:
                key = (cf["metadata"]["namespace"], cf["metadata"]["name"])
                status = cf.get("status") or {}
                if (
                    key in instances
                    and key not in ready
                    and status.get("phase") == "Ready"
                    and status.get("observedGeneration") == cf["metadata"]["generation"]
                ):
                    ready[key] = now
                    children_at_ready[key] = present.get(key, set())
            time.sleep(POLL_SECONDS)
        children = [
            max(seen[(*key, child)] for child in children_at_ready[key]) for key in instances
        ]
        return {
            "children_s": children,
            "ready_s": [ready[key] for key in instances],
            "children_per_instance": [len(children_at_ready[key]) for key in instances],
        }

    def delete_namespaces(self, names: list[str]) -> None:
        """Delete and wait until gone, so the next run starts from the same cluster."""
        for name in names:
            self.core.delete_namespace(name, propagation_policy="Background")

        def gone() -> bool:
            listed = {ns.metadata.name for ns in self.core.list_namespace().items}
            return not listed & set(names)

        wait_until(gone, 180, "benchmark namespaces deleted", interval=1)

    def close(self) -> None:
        if self.operator:
            self.operator.stop()
        self.api.close()
        self.cluster.stop()


def run(repeats: int, many: int, many_repeats: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="charterflow-bench-cluster-"))
    bench = Bench(root)
    try:
        bench.start_operator(root / "operator.log")
        time.sleep(2)
        idle = bench.stats()

        single: list[dict[str, list[float]]] = []
        for _ in range(repeats):
            ns = bench.namespace()
            t0 = time.monotonic()
            bench.create(ns, "charterflow")
            single.append(bench.observe({(ns, "charterflow")}, t0))
            bench.delete_namespaces([ns])
        print(f"operator: one resource {single}", flush=True)

        bulk: list[dict[str, Any]] = []
        steady: dict[str, Any] = {}
        for attempt in range(many_repeats):
            per_ns = 10
            namespaces = [bench.namespace() for _ in range(max(1, many // per_ns))]
            instances = {(ns, f"cf{i}") for ns in namespaces for i in range(per_ns)}
            before_cpu, before_writes = bench.stats()["cpu_s"], bench.writes()
            t0 = time.monotonic()
            for ns, name in sorted(instances):
                bench.create(ns, name)
            seen = bench.observe(instances, t0)
            after = bench.stats()
            writes = sum((bench.writes() - before_writes).values())
            bulk.append(
                {
                    "all_children_s": round(max(seen["children_s"]), 2),
                    "all_ready_s": round(max(seen["ready_s"]), 2),
                    "median_ready_s": round(median(seen["ready_s"]), 2),
                    "children_per_instance": Counter(seen["children_per_instance"]),
                    "operator_cpu_s": round(after["cpu_s"] - before_cpu, 2),
                    "rss_mib": after["rss_mib"],
                    "api_writes_per_instance": round(writes / len(instances), 1),
                }
            )
            print(f"operator: {len(instances)} resources {bulk[-1]}", flush=True)
            if attempt == many_repeats - 1:
                steady = steady_state(bench, len(instances))
            bench.delete_namespaces(namespaces)
        final = bench.stats()
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)

    def summary(values: list[float]) -> dict[str, Any]:
        return {"median": round(median(values), 2), "runs": [round(v, 2) for v in values]}

    return {
        "benchmark": "CharterFlow operator on a local control plane (kwok nodes)",
        "resync_seconds": RESYNC_SECONDS,
        "poll_seconds": POLL_SECONDS,
        "one": {
            "repeats": repeats,
            "children_s": summary([run["children_s"][0] for run in single]),
            "ready_s": summary([run["ready_s"][0] for run in single]),
            "children": single[0]["children_per_instance"][0],
        },
        "many": {
            "instances": many,
            "repeats": many_repeats,
            "all_children_s": summary([b["all_children_s"] for b in bulk]),
            "all_ready_s": summary([b["all_ready_s"] for b in bulk]),
            "operator_cpu_s": summary([b["operator_cpu_s"] for b in bulk]),
            "api_writes_per_instance": summary([b["api_writes_per_instance"] for b in bulk]),
            "runs": bulk,
        },
        "steady": steady,
        "memory": {
            "idle_rss_mib": idle["rss_mib"],
            "peak_rss_mib": final["peak_rss_mib"],
            "final_rss_mib": final["rss_mib"],
        },
        "cpu_s_total": round(final["cpu_s"], 2),
    }


STATUS_KINDS = {"deployments", "poddisruptionbudgets", "cronjobs", "horizontalpodautoscalers"}


def snapshot(bench: Bench) -> dict[str, object]:
    """What only a write by the operator changes, per child and per CharterFlow status.

    The resourceVersion, except for kinds whose status Kubernetes controllers keep writing:
    for those, the spec generation and the time of the operator's server-side-apply entry.
    """
    found: dict[str, object] = {}
    for path in CHILD_PATHS:
        plural = path.rsplit("/", 1)[1]
        for item in bench.list_labelled(path):
            meta = item["metadata"]
            key = f"{meta['namespace']}/{plural}/{meta['name']}"
            if plural in STATUS_KINDS:
                ours = [
                    entry["time"]
                    for entry in meta.get("managedFields", [])
                    if entry["manager"] == "charterflow-operator" and entry["operation"] == "Apply"
                ]
                found[key] = (meta["generation"], ours)
            else:
                found[key] = meta["resourceVersion"]
    for cf in bench.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]:
        meta = cf["metadata"]
        found[f"{meta['namespace']}/CharterFlow/{meta['name']}"] = json.dumps(
            cf.get("status"), sort_keys=True
        )
    return found


def steady_state(bench: Bench, instances: int) -> dict[str, Any]:
    """API requests and real changes per reconcile pass while nothing changes.

    The window lasts at least two resync periods and two passes per instance. Write
    *requests* come from the apiserver's counters (a server-side apply that changes nothing
    is still a request); *effective* writes are children (or statuses) that actually changed.
    """
    time.sleep(RESYNC_SECONDS)  # let the rollout's last events settle
    before = snapshot(bench)
    passes, writes, cpu = bench.passes(), bench.writes(), bench.stats()["cpu_s"]
    started = time.monotonic()
    wait_until(
        lambda: (
            bench.passes() >= passes + 2 * instances
            and time.monotonic() - started >= 2 * RESYNC_SECONDS
        ),
        RESYNC_SECONDS * 12,
        "two steady-state passes per instance",
        interval=1,
    )
    seconds = time.monotonic() - started
    made = bench.passes() - passes
    delta = bench.writes() - writes
    stats = bench.stats()
    after = snapshot(bench)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return {
        "passes": made,
        "seconds": round(seconds, 1),
        "passes_per_second": round(made / seconds, 2),
        "write_requests": dict(delta),
        "write_requests_per_pass": round(sum(delta.values()) / made, 3) if made else None,
        "effective_writes": len(changed),
        "effective_writes_per_pass": round(len(changed) / made, 3) if made else None,
        "changed": changed[:10],
        "operator_cpu_s_per_pass": round((stats["cpu_s"] - cpu) / made, 4) if made else None,
        "operator_cpu_share": round((stats["cpu_s"] - cpu) / seconds, 3),
        "rss_mib": stats["rss_mib"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--many", type=int, default=50)
    parser.add_argument("--many-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    write_result("operator", run(args.repeats, args.many, args.many_repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
