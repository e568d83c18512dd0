"""The e2e kit: how tests reach the cluster (``KubeHandle``), install CRDs and charts, make
scratch namespaces, apply samples, wait for conditions and run the operator as a process.

Plain functions and classes, imported by name; the fixtures built on them are in conftest.py.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from charterflow_operator import api
from kubernetes import client, config

from tests.support.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "charterflow-operator"
CRDS = REPO / "crds"
SAMPLES = REPO / "manifests" / "samples"
SAMPLE = SAMPLES / "charterflow.yaml"
SECRETS = SAMPLES / "secrets.yaml"
INSTALL = REPO / "manifests" / "install.yaml"
CRD_NAMES = (
    f"{api.PLURAL}.{api.GROUP}",
    "kopfpeerings.kopf.dev",
    "clusterkopfpeerings.kopf.dev",
)
# A deadline, not a speed goal. A CharterFlow here is Ready within ~5-15 s of its creation on the
# loaded 2-core machine; 120 s leaves ten times that for a slower CI. (The one case that went past
# it was an operator bug, not load: a namespace made while Kopf listed the namespaces was never
# watched; charterflow_operator/namespaces.py fixes it and tests/e2e/test_namespaces.py holds it.)
READY_TIMEOUT = 120
# Namespaces that the e2e operator fixture watches (conftest.py: ``operator``, ``ns``).
OPERATOR_PREFIX = "cfop-"
# The kinds of child a CharterFlow owns, for `kubectl get` (its Jobs come and go by themselves).
CHILD_KINDS = ",".join(kind.plural for kind in api.CHILD_KINDS if kind is not api.JOB)


@dataclass
class KubeHandle:
    """How tests reach the cluster: kubectl/helm from ``bin_dir``, or the Python client."""

    kubeconfig: Path
    env: dict[str, str]
    bin_dir: Path
    owned: bool

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; on failure the error names the command and stderr."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def api_client(self) -> client.ApiClient:
        """A fresh Python client for this cluster (close it, or use it in a ``with``)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))


# --- cluster-wide setup ------------------------------------------------------------------------


def install_crds(kube: KubeHandle) -> None:
    """Apply every CRD of crds/ for real (cluster-scoped, shared, never deleted) and wait."""
    for path in sorted(CRDS.glob("*.yaml")):
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    kube.kubectl("wait", "--for=condition=Established", *(f"crd/{name}" for name in CRD_NAMES))


def helm(kube: KubeHandle, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm against the cluster under test."""
    result = subprocess.run(
        [str(kube.bin_dir / "helm"), *args],
        env={**kube.env, "KUBECONFIG": str(kube.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


@contextlib.contextmanager
def scratch_namespace(kube: KubeHandle, prefix: str = "t-") -> Iterator[str]:
    """A fresh namespace whose ``default`` ServiceAccount exists (pods are refused until the
    service-account controller made it); deleted without waiting."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    try:
        wait_until(
            lambda: kube.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
            timeout=60,
            what=f"service account default in {name}",
        )
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- objects -----------------------------------------------------------------------------------


def get(kube: KubeHandle, ns: str, *what: str, kubeconfig: Path | None = None) -> dict[str, Any]:
    extra = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return json.loads(kube.kubectl(*extra, "get", "-n", ns, *what, "-o", "json").stdout)


def apply(kube: KubeHandle, ns: str, *docs: Mapping[str, Any]) -> None:
    kube.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))


def apply_secrets(kube: KubeHandle, ns: str) -> None:
    """The Secrets that the sample CharterFlow references."""
    kube.kubectl("apply", "-n", ns, "-f", str(SECRETS))


def sample(name: str = "charterflow", path: Path = SAMPLE, **spec: Any) -> dict[str, Any]:
    """A sample CharterFlow renamed, with top-level spec fields replaced."""
    body = yaml.safe_load(path.read_text())
    body["metadata"]["name"] = name
    body["spec"].update(copy.deepcopy(spec))
    return dict(body)


def cf(kube: KubeHandle, ns: str, name: str = "charterflow") -> dict[str, Any]:
    return get(kube, ns, "charterflow", name)


def condition(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    for found in body.get("status", {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def wait_phase(kube: KubeHandle, ns: str, phase: str, name: str = "charterflow") -> dict[str, Any]:
    """Wait for ``phase`` at the current generation; the last status is in the error."""
    seen: dict[str, Any] = {}

    def there() -> bool:
        seen.clear()
        seen.update(cf(kube, ns, name))
        status = seen.get("status") or {}
        return bool(
            status.get("phase") == phase
            and status.get("observedGeneration") == seen["metadata"]["generation"]
        )

    try:
        wait_until(
            there, timeout=READY_TIMEOUT, what=f"CharterFlow {ns}/{name} {phase}", interval=0.5
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; status: {json.dumps(seen.get('status'))}") from None
    return seen


def wait_ready(kube: KubeHandle, ns: str, name: str = "charterflow") -> dict[str, Any]:
    """The CharterFlow once Ready at its current generation."""
    return wait_phase(kube, ns, "Ready", name)


def http_ok(url: str) -> bool:
    """True when ``url`` answers 200 (connection errors count as not yet)."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our http URL
            return bool(response.status == 200)
    except OSError:
        return False


def decode_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def service_account_kubeconfig(kube: KubeHandle, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ``namespace/account`` with a TokenRequest token.

    The server and CA come from the admin kubeconfig; only the credentials differ, so every
    request made with it is authorised by the ServiceAccount's RBAC alone.
    """
    token = kube.kubectl("create", "token", account, "-n", namespace, "--duration=2h").stdout
    admin = yaml.safe_load(kube.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token.strip()}}],
        "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# Where each record of the operator's log starts (its format: "%(asctime)s %(levelname)s ...").
RECORD_START = re.compile(r"^(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.MULTILINE)


def log_records(log: str) -> list[str]:
    """The operator's log cut into records: a traceback stays with the line that logged it."""
    return [record for record in RECORD_START.split(log) if record]


class OperatorProcess:
    """``charterflow-operator`` (the console script) as a subprocess; restartable.

    ``env`` is what the operator's container would get; ``kubeconfig`` says whose credentials
    it uses. Health and metrics listen on free ports instead of the configured ones; each start
    logs to a new file in ``log_dir``. Its metrics tell the successful passes it made.
    """

    def __init__(self, kubeconfig: Path, env: Mapping[str, str], log_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.env = dict(env)
        self.log_dir = log_dir
        self.log = log_dir / f"operator-{id(self)}-0.log"
        self.process: ManagedProcess | None = None
        self.metrics_port = 0
        self.starts = 0

    def start(self) -> OperatorProcess:
        self.starts += 1
        health, self.metrics_port = free_port(), free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env = {
            **inherited,
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
            "HEALTH_PORT": str(health),
            "METRICS_PORT": str(self.metrics_port),
        }
        script = Path(sys.executable).with_name("charterflow-operator")
        self.log = self.log_dir / f"operator-{id(self)}-{self.starts}.log"
        self.process = ManagedProcess("charterflow-operator", [str(script)], self.log, env=env)
        self.process.start()
        self.process.wait_ready(lambda: http_ok(f"http://127.0.0.1:{health}/healthz"), timeout=60)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL, as when its node is lost: no clean shutdown, no goodbye to its peers."""
        assert self.process is not None
        assert self.process.proc is not None
        os.killpg(self.process.proc.pid, signal.SIGKILL)
        self.process.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        """What the running process logged after ``offset`` bytes."""
        with self.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def passes(self) -> int:
        """Successful reconcile passes of the running process."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read()
        for line in text.decode().splitlines():
            if line.startswith('charterflow_operator_reconciles_total{result="success"}'):
                return int(float(line.split()[-1]))
        return 0

    def rss_mib(self) -> float:
        """Resident memory of the operator process, in MiB."""
        assert self.process is not None
        assert self.process.proc is not None
        status = Path(f"/proc/{self.process.proc.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
