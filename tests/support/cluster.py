"""A real Kubernetes control plane on localhost, without Docker: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes that "run" pods).

The binaries come from ``scripts/k8s-binaries``. Every component runs in its own process group
on free localhost ports, logs to ``<root>/logs/<name>.log`` and is listed in ``<root>/pids.json``
so that another process (``python -m tests.support.cluster down``) can stop it. TLS material is
generated here with ``cryptography``: one CA signs the serving certificate and a client
certificate per component, so health checks verify TLS like any other client. Kwok manages
the fake nodes created here (annotation ``kwok.x-k8s.io/node=fake``, label ``type=kwok``, no
taint, so ordinary pods schedule on them) with the pod stages in ``kwok/stages.yaml``.

CLI::

    python -m tests.support.cluster up       # start (detached) and print `export KUBECONFIG=...`
    python -m tests.support.cluster status   # per-process state and RSS, startup time
    python -m tests.support.cluster down     # stop it and remove its directory
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support import processes
from tests.support.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
STAGES = Path(__file__).parent / "kwok" / "stages.yaml"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: first address of SERVICE_CIDR
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
NODE_COUNT = 2
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterStartError(RuntimeError):
    """The control plane did not come up; the message names the component and its log tail."""


def default_dir() -> Path:
    """Where ``up``/``down``/``status`` keep the developer cluster."""
    if env := os.environ.get("CHARTERFLOW_CLUSTER_DIR"):
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "charterflow" / "cluster"


def k8s_bin_dir(build: bool = True) -> Path:
    """The directory holding the pinned binaries; ``build=False`` never starts a Go build."""
    args = [str(REPO / "scripts" / "k8s-binaries")] + ([] if build else ["--print"])
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ClusterStartError(f"scripts/k8s-binaries failed:\n{result.stderr.strip()}")
    bin_dir = Path(lines[-1])
    missing = [name for name in (*COMPONENTS, "kubectl") if not (bin_dir / name).is_file()]
    if missing:
        raise ClusterStartError(
            f"missing {', '.join(missing)} in {bin_dir}; build them with `make k8s-binaries`"
        )
    return bin_dir


# --- TLS -------------------------------------------------------------------------------------


@dataclass
class _Pair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    ca: _Pair | None,
    *,
    server: bool = False,
    sans: list[x509.GeneralName] | None = None,
) -> _Pair:
    """A key and certificate signed by ``ca`` (self-signed CA when ``ca`` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca is None,
                crl_sign=ca is None,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _Pair(builder.sign(ca.key if ca else key, hashes.SHA256()), key)


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


# --- the cluster -----------------------------------------------------------------------------


class LocalCluster:
    """The control plane under ``root``: ``start()``, ``stop()``, and ``kubeconfig`` for clients."""

    def __init__(self, root: Path, bin_dir: Path, api_host: str = "127.0.0.1") -> None:
        self.root = root
        self.bin_dir = bin_dir
        # Where the API server listens and what it advertises: loopback for kwok-only clusters,
        # the real node's address (reachable from pods) when tests/support/node.py adds one.
        self.api_host = api_host
        self.extra_args: dict[str, list[str]] = {}  # component -> extra flags (the real node's)
        self.pki = root / "pki"
        self.logs = root / "logs"
        self.ports = {name: 0 for name in ("etcd", "etcd-peer", "api", "cm", "scheduler")}
        self.startup_seconds: float | None = None
        self._procs: list[ManagedProcess] = []

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in ``system:masters``)."""
        return self.root / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.api_host}:{self.ports['api']}"

    @property
    def _loopback(self) -> bool:
        return ipaddress.ip_address(self.api_host).is_loopback

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['etcd']}"

    # lifecycle

    def start(self) -> LocalCluster:
        """Start every component and return once the API is ready and the fake nodes are Ready.

        On failure everything started so far is stopped and ``ClusterStartError`` says which
        component failed, with the tail of its log.
        """
        began = time.monotonic()
        shutil.rmtree(self.root / "etcd", ignore_errors=True)  # always a fresh cluster
        self.root.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in self.ports}
        try:
            self._write_pki_and_kubeconfigs()
            self._start_etcd()
            self._start_apiserver()
            controller_manager = self._start_controller_manager()
            scheduler = self._start_scheduler()
            kwok = self._start_kwok()
            self._create_nodes()
            self._wait(controller_manager, self._healthz(self.ports["cm"]), 60)
            self._wait(scheduler, self._healthz(self.ports["scheduler"]), 60)
            self._wait(kwok, self._nodes_ready, 90, what="fake nodes Ready and untainted")
            self._wait(controller_manager, self._default_service_account, 60, what="default SA")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - began, 1)
        self._write_pids()
        return self

    def stop(self) -> None:
        """Stop the components in reverse start order (SIGTERM, then SIGKILL)."""
        for proc in reversed(self._procs):
            proc.stop(timeout=15)
        self._procs.clear()
        with contextlib.suppress(FileNotFoundError):
            (self.root / "pids.json").unlink()

    def detach(self) -> None:
        """Leave the components running when this interpreter exits (the ``up`` command).

        ``processes`` stops every ManagedProcess at exit; detached ones are stopped by ``down``,
        which reads ``pids.json``.
        """
        for proc in self._procs:
            processes.disown(proc)

    # components

    def _spawn(self, name: str, args: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, [str(self.bin_dir / name), *args], self.logs / f"{name}.log")
        self._procs.append(proc.start())
        self._write_pids()
        return proc

    def _wait(
        self, proc: ManagedProcess, check: Callable[[], bool], timeout: float, what: str = ""
    ) -> None:
        """Wait for ``check``, failing fast (with that log) as soon as any component exits."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            if dead := next((p for p in self._procs if not p.alive()), None):
                raise ClusterStartError(f"{dead.name} exited\n{self._log_excerpt(dead)}")
            try:
                if check():
                    return
            except Exception as exc:  # not listening yet
                last = exc
            if time.monotonic() > deadline:
                label = f"{proc.name} ({what})" if what else proc.name
                cause = f" (last: {last})" if last else ""
                raise ClusterStartError(
                    f"{label} not ready after {timeout:.0f}s{cause}\n{self._log_excerpt(proc)}"
                )
            time.sleep(0.25)

    @staticmethod
    def _log_excerpt(proc: ManagedProcess) -> str:
        return f"--- {proc.log_path} (last lines) ---\n{proc.log_tail()}"

    def _start_etcd(self) -> ManagedProcess:
        client, peer = self.ports["etcd"], self.ports["etcd-peer"]
        proc = self._spawn(
            "etcd",
            [
                "--name=charterflow",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=charterflow=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # a throwaway test cluster: durability buys nothing
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", client, timeout=2)
            try:
                conn.request("GET", "/health")
                return json.loads(conn.getresponse().read()).get("health") == "true"
            finally:
                conn.close()

        self._wait(proc, healthy, 30)
        return proc

    def _start_apiserver(self) -> ManagedProcess:
        pki = self.pki
        proc = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={self.api_host}",
                f"--advertise-address={self.api_host}",
                f"--secure-port={self.ports['api']}",
                f"--tls-cert-file={pki / 'serving.crt'}",
                f"--tls-private-key-file={pki / 'serving.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                # Endpoints may not hold loopback addresses, and no pod could reach us anyway;
                # with a real node, the `kubernetes` Service points at the node's address.
                "--endpoint-reconciler-type=" + ("none" if self._loopback else "lease"),
                "--profiling=false",
                *self.extra_args.get("kube-apiserver", []),
            ],
        )
        self._wait(proc, lambda: self._api("GET", "/readyz")[0] == 200, 90)
        return proc

    def _start_controller_manager(self) -> ManagedProcess:
        pki = self.pki
        return self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.root / 'config' / 'controller-manager.kubeconfig'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--use-service-account-credentials=true",
                "--controllers=*",  # default-on: deployment, job, cronjob, gc, hpa, sa-token, ...
                *self.extra_args.get("kube-controller-manager", []),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['cm']}",
                f"--tls-cert-file={pki / 'serving.crt'}",
                f"--tls-private-key-file={pki / 'serving.key'}",
                "--profiling=false",
            ],
        )

    def _start_scheduler(self) -> ManagedProcess:
        return self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={self.root / 'config' / 'scheduler.kubeconfig'}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                f"--tls-cert-file={self.pki / 'serving.crt'}",
                f"--tls-private-key-file={self.pki / 'serving.key'}",
                "--profiling=false",
            ],
        )

    def _start_kwok(self) -> ManagedProcess:
        return self._spawn(
            "kwok",
            [
                f"--kubeconfig={self.root / 'config' / 'kwok.kubeconfig'}",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--config={STAGES}",
                # Renew node leases well inside the controller manager's grace period; without
                # them kwok's status heartbeats are too slow and nodes flap NotReady every minute.
                "--node-lease-duration-seconds=40",
            ],
        )

    # API access (plain HTTPS: the support code needs no Kubernetes client library)

    def _tls(self, client_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        return ctx

    def _api(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection(
            self.api_host, self.ports["api"], context=self._tls(), timeout=5
        )
        try:
            payload = json.dumps(body) if body is not None else None
            conn.request(method, path, payload, {"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            return response.status, json.loads(raw) if is_json else raw.decode()
        finally:
            conn.close()

    def _healthz(self, port: int) -> Callable[[], bool]:
        """A check of a component's /healthz (always allowed without credentials)."""
        ctx = self._tls(client_cert=False)

        def healthy() -> bool:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()

        return healthy

    def _create_nodes(self) -> None:
        """The fake nodes, which kwok manages because of their annotation."""
        resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        for index in range(NODE_COUNT):
            name = f"kwok-node-{index}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_ANNOTATION: "fake"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {"allocatable": resources, "capacity": resources},
            }
            status, body = self._api("POST", "/api/v1/nodes", node)
            if status not in (201, 409):
                raise ClusterStartError(f"creating node {name}: HTTP {status} {body}")

    def _nodes_ready(self) -> bool:
        """Kwok marked every fake node Ready and the node controller lifted the not-ready taint."""
        status, body = self._api("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")
        if status != 200:
            return False
        ready = [
            node
            for node in body["items"]
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in node.get("status", {}).get("conditions", [])
            )
            and not node["spec"].get("taints")
        ]
        return len(ready) >= NODE_COUNT

    def _default_service_account(self) -> bool:
        """The service-account controller runs: pods can be admitted in new namespaces."""
        return self._api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    # files

    def _write_pki_and_kubeconfigs(self) -> None:
        """CA, serving pair, service-account keys, and a client certificate per component."""
        pki = self.pki
        ca = _issue(_name("charterflow-test-ca"), None)
        _write(pki / "ca.crt", ca.cert_pem())
        _write(pki / "ca.key", ca.key_pem(), private=True)
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            *([] if self._loopback else [x509.IPAddress(ipaddress.ip_address(self.api_host))]),
            x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
        ]
        serving = _issue(_name("kube-apiserver"), ca, server=True, sans=sans)
        _write(pki / "serving.crt", serving.cert_pem())
        _write(pki / "serving.key", serving.key_pem(), private=True)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write(pki / "sa.key", _Pair(ca.cert, sa_key).key_pem(), private=True)
        public = sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(pki / "sa.pub", public)

        identities = {
            "admin": _name("kubernetes-admin", "system:masters"),
            "controller-manager": _name("system:kube-controller-manager"),
            "scheduler": _name("system:kube-scheduler"),
            "kwok": _name("kwok-controller", "system:masters"),
            # The aggregation layer's client (used when a real node runs metrics-server).
            "front-proxy": _name("front-proxy-client"),
        }
        for user, subject in identities.items():
            pair = _issue(subject, ca)
            _write(pki / f"{user}.crt", pair.cert_pem())
            _write(pki / f"{user}.key", pair.key_pem(), private=True)
            path = (
                self.kubeconfig if user == "admin" else self.root / "config" / f"{user}.kubeconfig"
            )
            _write(path, self._kubeconfig_yaml(user, ca, pair), private=True)

    def _kubeconfig_yaml(self, user: str, ca: _Pair, pair: _Pair) -> bytes:
        """A self-contained kubeconfig (certificates inline) for ``user``."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "charterflow-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(ca.cert_pem()),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(pair.cert_pem()),
                        "client-key-data": b64(pair.key_pem()),
                    },
                }
            ],
            "contexts": [{"name": user, "context": {"cluster": "charterflow-test", "user": user}}],
            "current-context": user,
        }
        return yaml.safe_dump(config, sort_keys=False).encode()

    def _write_pids(self) -> None:
        """Record what runs, for ``down``/``status`` in another process."""
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "startup_seconds": self.startup_seconds,
            "processes": [
                {"name": p.name, "pid": p.proc.pid, "exe": p.argv[0]}
                for p in self._procs
                if p.proc is not None
            ],
        }
        (self.root / "pids.json").write_text(json.dumps(state, indent=2) + "\n")


# --- processes recorded in pids.json (another interpreter started them) ---------------------


def _state(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / "pids.json").read_text())
    except FileNotFoundError:
        return None


def _running(pid: int, exe: str) -> bool:
    """``pid`` is alive (not a zombie) and still runs ``exe``, not a recycled pid."""
    try:
        if os.readlink(f"/proc/{pid}/exe") != str(Path(exe).resolve()):
            return False
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (``VmRSS``), 0 when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop_recorded(root: Path, timeout: float = 15) -> list[str]:
    """Stop the process groups listed in ``root/pids.json``, last started first."""
    state = _state(root) or {"processes": []}
    stopped = []
    for entry in reversed(state["processes"]):
        pid, exe = entry["pid"], entry["exe"]
        if not _running(pid, exe):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        try:
            wait_until(lambda p=pid, e=exe: not _running(p, e), timeout, entry["name"])
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stopped.append(entry["name"])
    return stopped


# --- CLI -------------------------------------------------------------------------------------


def _up(root: Path, node: str = "kwok") -> int:
    state = _state(root)
    if state and all(_running(p["pid"], p["exe"]) for p in state["processes"]):
        print(f"cluster already up in {root}", file=sys.stderr)
        print(f"export KUBECONFIG={state['kubeconfig']}")
        return 0
    _down(root, quiet=True)  # leftovers of a half-dead cluster
    try:
        if node == "real":
            from tests.support import node as real_node

            cluster, real = real_node.start_real_cluster(
                root, k8s_bin_dir(build=True), real_node.node_bin_dir()
            )
            real.detach()
            for archive in real_node.built_image_archives():
                real.import_image(archive)
                print(f"imported {archive.name}", file=sys.stderr)
        else:
            cluster = LocalCluster(root, k8s_bin_dir(build=True)).start()
    except ClusterStartError as exc:
        print(f"cluster failed to start: {exc}", file=sys.stderr)
        return 1
    cluster.detach()
    print(f"cluster up in {cluster.startup_seconds}s at {cluster.server}", file=sys.stderr)
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def _down(root: Path, quiet: bool = False) -> int:
    from tests.support import node as real_node

    node_stopped = real_node.teardown(root)  # a real node first: it needs the API's pki only
    if _state(root) is None and not node_stopped:
        if not quiet:
            print(f"no cluster recorded in {root}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        return 0
    stopped = node_stopped + stop_recorded(root)
    shutil.rmtree(root, ignore_errors=True)
    if not quiet:
        print(f"stopped {', '.join(stopped) or 'nothing (already gone)'}; removed {root}")
    return 0


def _status(root: Path) -> int:
    state = _state(root)
    if state is None:
        print(f"down (nothing recorded in {root})")
        return 1
    total = 0
    up = True
    for entry in state["processes"]:
        alive = _running(entry["pid"], entry["exe"])
        rss = rss_kib(entry["pid"]) if alive else 0
        total += rss
        up = up and alive
        label = f"{rss / 1024:7.1f} MiB" if alive else "    exited"
        print(f"  {entry['name']:<24} pid {entry['pid']:<8} {label}")
    print(f"  {'total RSS':<24} {'':<12} {total / 1024:7.1f} MiB")
    print(f"started in {state['startup_seconds']}s; API {state['server']}")
    print(("up" if up else "DEGRADED") + f"; export KUBECONFIG={state['kubeconfig']}")
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=None, help="cluster directory")
    parser.add_argument(
        "--node", choices=["kwok", "real"], default="kwok", help="add a real kubelet node"
    )
    args = parser.parse_args(argv)
    root = args.dir or default_dir()
    if args.command == "up":
        return _up(root, args.node)
    return {"down": _down, "status": _status}[args.command](root)


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy: tests.support.node raises the package's
    # ClusterStartError, which a second copy of the class here would not catch.
    from tests.support import cluster as _cluster

    sys.exit(_cluster.main())
