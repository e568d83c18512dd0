"""A real kubelet node next to the kwok nodes: containerd, runc, CNI, kubelet and kube-proxy.

``make cluster NODE=real`` and the real-pod test tier use it. Everything it creates is named
here and removed by ``teardown`` (also from another process, from ``<root>/node.json``): the
node's address on a port-less bridge used as a dummy interface (``cfnode0``; this kernel has
no ``dummy`` module), the CNI bridge (``cfbr0``), its own containerd (root, state and socket
under the cluster directory, runc state and pod network namespaces included), mounts,
``KUBE-*``/``CNI-*``/``CHARTERFLOW-*`` iptables chains and the kubelet's cgroups. Only one real
node runs per machine (fixed names and addresses).

Facts about the machine this was built on, handled here:

- cgroup v1 only: the kubelet runs with ``cgroupDriver: cgroupfs`` and ``failCgroupV1: false``.
- The VM refuses to LOWER ``oom_score_adj`` (raising works) while the kubelet asks for -998 for
  every sandbox, so runc fails with "can't get final child's PID from pipe: EOF". runc is
  therefore called through a wrapper that raises a negative ``process.oomScoreAdj`` in the
  bundle's ``config.json`` to 0. This is a property of the test machine, not of CharterFlow.
- containerd 1.6 has no RuntimeConfig CRI call; the kubelet falls back (a warning in its log).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import ipaddress
import json
import os
import shlex
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support import processes
from tests.support.cluster import (
    REPO,
    SERVICE_CIDR,
    ClusterStartError,
    LocalCluster,
    _issue,
    _name,
    _Pair,
    _write,
)
from tests.support.processes import ManagedProcess, free_port, wait_until

NODE_NAME = "charterflow-real-node"
NODE_IP = "10.250.0.1"  # on the dummy interface; host and pods reach it
DUMMY = "cfnode0"
BRIDGE = "cfbr0"
POD_CIDR = "10.244.0.0/24"
CLUSTER_DNS = "10.96.0.10"
PAUSE_IMAGE = "localhost/charterflow/pause:1"
COREDNS_IMAGE = "localhost/charterflow/coredns:1"
METRICS_IMAGE = "localhost/charterflow/metrics-server:1"
# The real node is tainted and labelled: only pods that ask for it land there (the real tier's
# namespaces do, through the PodNodeSelector/PodTolerationRestriction annotations below), so
# the kwok tiers keep scheduling on kwok nodes exactly as before.
NODE_LABEL = ("charterflow.dev/node", "real")
NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": "charterflow.dev/node=real",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [
            {
                "key": "charterflow.dev/node",
                "operator": "Equal",
                "value": "real",
                "effect": "NoSchedule",
            }
        ]
    ),
}
CHAIN_PREFIXES = ("KUBE-", "CNI-", "CHARTERFLOW-")
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}

RUNC_WRAPPER = """#!/usr/bin/python3 -S
# runc, with a negative process.oomScoreAdj raised to 0: this VM refuses to lower
# oom_score_adj (a property of the test machine, not of CharterFlow). See tests/support/node.py.
import json, os, sys
args = sys.argv[1:]
if "--bundle" in args:
    path = os.path.join(args[args.index("--bundle") + 1], "config.json")
    with open(path) as f:
        spec = json.load(f)
    process = spec.get("process") or {}
    if process.get("oomScoreAdj", 0) < 0:
        process["oomScoreAdj"] = 0
        with open(path, "w") as f:
            json.dump(spec, f)
os.execv("/usr/sbin/runc", ["runc", *args])
"""


def node_bin_dir() -> Path:
    """kubelet, kube-proxy, coredns, metrics-server and pause from ``scripts/node-binaries``."""
    result = subprocess.run(
        [str(REPO / "scripts" / "node-binaries")], capture_output=True, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ClusterStartError(f"scripts/node-binaries failed:\n{result.stderr.strip()[-3000:]}")
    return Path(lines[-1])


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ClusterStartError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
    return result


# --- the node's address (shared with `make services`) ---------------------------------------

ADDRESS_USERS = Path("/run/charterflow-node-address")


def acquire_address(user: str, note: str = "") -> None:
    """Bring up NODE_IP on the dummy interface (once) and record ``user`` as needing it.

    Service addresses get a route into the same dummy device, so a ClusterIP without a
    kube-proxy rule goes nowhere rather than out of the machine's real interface.
    """
    ADDRESS_USERS.mkdir(parents=True, exist_ok=True)
    with _address_lock():
        if not Path(f"/sys/class/net/{DUMMY}").exists():
            _run("ip", "link", "add", DUMMY, "type", "bridge")  # no `dummy` module here
            _run("ip", "addr", "add", f"{NODE_IP}/32", "dev", DUMMY)
            _run("ip", "link", "set", DUMMY, "up")
            _run("ip", "route", "add", SERVICE_CIDR, "dev", DUMMY)
        (ADDRESS_USERS / user).write_text(note + "\n")


def release_address(user: str) -> None:
    """Forget ``user``; the last one out removes the interface."""
    with _address_lock():
        (ADDRESS_USERS / user).unlink(missing_ok=True)
        if not ADDRESS_USERS.exists() or not any(ADDRESS_USERS.iterdir()):
            _run("ip", "link", "del", DUMMY, check=False)
            with contextlib.suppress(OSError):
                ADDRESS_USERS.rmdir()


@contextlib.contextmanager
def _address_lock() -> Iterator[None]:
    with open("/run/lock/charterflow-node-address.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _alive(cluster_root: Path) -> bool:
    """The real node recorded under ``cluster_root`` still has a live process."""
    try:
        state = json.loads((cluster_root / "node.json").read_text())
    except (OSError, ValueError):
        return False
    return any(Path(f"/proc/{p['pid']}").exists() for p in state.get("processes", []))


# --- images ----------------------------------------------------------------------------------


def built_image_archives() -> list[Path]:
    """The docker-archives of `make images` that exist (the app and the operator)."""
    from tests.support import images

    version = images.version()
    return [a for image in images.IMAGES if (a := image.archive(version)).exists()]


def docker_archive(path: Path, ref: str, files: dict[str, Path], entrypoint: list[str]) -> Path:
    """A one-layer image (``files``: path in the image -> file here) as a docker-archive.

    ``ctr images import`` takes it with its name (an OCI archive without a ref name imports
    nothing). Used for the node's own images: pause, CoreDNS, metrics-server.
    """
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for inside, source in sorted(files.items()):
            info = tar.gettarinfo(str(source), arcname=inside.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with source.open("rb") as f:
                tar.addfile(info, f)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "User": "65532:65532"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_bytes = json.dumps(config).encode()
    manifest = [{"Config": "config.json", "RepoTags": [ref], "Layers": ["layer.tar"]}]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("layer.tar", layer_bytes),
            ("config.json", config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- the node --------------------------------------------------------------------------------


class RealNode:
    """containerd + kubelet + kube-proxy registered with ``cluster`` (whose API is on NODE_IP)."""

    def __init__(self, cluster: LocalCluster, bin_dir: Path) -> None:
        self.cluster = cluster
        self.bin_dir = bin_dir
        self.root = cluster.root / "node"
        pki = cluster.pki
        cluster.extra_args["kube-apiserver"] = [
            # Real-tier namespaces select the (tainted) real node through annotations.
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
            # logs/exec: reach the kubelet at the node's IP, not through DNS of its name.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki / 'admin.crt'}",
            f"--kubelet-client-key={pki / 'admin.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            # The aggregation layer, for metrics-server (pods reached at their own addresses).
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy.key'}",
            "--enable-aggregator-routing=true",
        ]
        cluster.extra_args["kube-controller-manager"] = [
            # Test-sized HPA reactions: scale in 30 s after the load stops, not 5 minutes.
            "--horizontal-pod-autoscaler-downscale-stabilization=30s",
            "--horizontal-pod-autoscaler-sync-period=5s",
        ]
        self.sock = self.root / "containerd" / "containerd.sock"
        self.ports = {
            name: 0
            for name in (
                "kubelet",
                "kubelet-healthz",
                "proxy-healthz",
                "proxy-metrics",
                "cri-stream",
            )
        }
        self.procs: list[ManagedProcess] = []

    # lifecycle

    def prepare(self) -> None:
        """The node's address, before the API server binds to it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in self.ports}
        self._save_state()
        try:
            self._network()
        except BaseException:
            self.stop()
            raise

    def start(self, timeout: float = 180) -> RealNode:
        """containerd, kubelet, kube-proxy (after ``prepare`` and the control plane's start)."""
        try:
            self._write_pki()
            self._start_containerd()
            self.import_image(self._pause_archive())
            self._start_kubelet()
            self._start_kube_proxy()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the processes and remove everything the node made (see ``teardown``)."""
        teardown(self.cluster.root)

    def detach(self) -> None:
        for proc in self.procs:
            processes.disown(proc)

    # host network

    def _network(self) -> None:
        """The node address, sysctls for Service routing, and a fence around the pods."""
        claim = ADDRESS_USERS / "node"
        if claim.exists():
            other = Path(claim.read_text().strip())
            if other != self.cluster.root and _alive(other):
                raise ClusterStartError(f"a real node already runs here ({other}); stop it first")
            teardown(other)  # leftovers of a run that died
        acquire_address("node", str(self.cluster.root))
        saved = {}
        for key, value in SYSCTLS.items():
            path = Path("/proc/sys") / key
            if path.exists():
                saved[key] = path.read_text().strip()
                path.write_text(value)
        self._save_state(sysctls=saved)
        # Pods may reach this host and each other, nothing beyond (forwarding is on for Services).
        chain = "CHARTERFLOW-NODE"
        _run("iptables", "-N", chain)
        _run("iptables", "-A", chain, "-s", POD_CIDR, "!", "-o", BRIDGE, "-j", "DROP")
        _run("iptables", "-I", "FORWARD", "1", "-j", chain)

    # certificates

    def _write_pki(self) -> None:
        pki = self.cluster.pki
        ca = _Pair(
            x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes()),
            serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None),  # type: ignore[arg-type]
        )
        ip = x509.IPAddress(ipaddress.ip_address(NODE_IP))
        serving = _issue(_name(NODE_NAME), ca, server=True, sans=[ip, x509.DNSName(NODE_NAME)])
        _write(self.root / "pki" / "kubelet-serving.crt", serving.cert_pem())
        _write(self.root / "pki" / "kubelet-serving.key", serving.key_pem(), private=True)
        for user, subject in {
            "kubelet": _name(f"system:node:{NODE_NAME}", "system:nodes"),
            "kube-proxy": _name("system:kube-proxy"),
        }.items():
            pair = _issue(subject, ca)
            _write(
                self.root / "config" / f"{user}.kubeconfig",
                self.cluster._kubeconfig_yaml(user, ca, pair),
                private=True,
            )

    # processes

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.root / "logs" / f"{name}.log").start()
        self.procs.append(proc)
        self._save_state()
        return proc

    def _start_containerd(self) -> None:
        base = self.root / "containerd"
        wrapper = _write(base / "runc-wrapper", RUNC_WRAPPER.encode())
        wrapper.chmod(0o755)
        cni_conf = self.root / "cni" / "net.d"
        _write(cni_conf / "10-charterflow.conflist", json.dumps(self._cni_config()).encode())
        config = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
plugin_dir = ""
disabled_plugins = [{{DISABLED}}]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{base / "ttrpc.sock"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{self.ports["cri-stream"]}"
  enable_selinux = false
  restrict_oom_score_adj = false
  # Pod network namespaces under our state directory, not /run/netns: teardown's sweep of
  # mounts under the node directory then removes even one whose sandbox never started.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{wrapper}"
        Root = "{base / "runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
"""
        disabled = ("btrfs", "zfs", "devmapper", "aufs")
        config = config.replace(
            "{DISABLED}", ", ".join(f'"io.containerd.snapshotter.v1.{name}"' for name in disabled)
        )
        _write(base / "config.toml", config.encode())
        proc = self._spawn("containerd", ["containerd", "--config", str(base / "config.toml")])
        proc.wait_ready(lambda: self.sock.is_socket() and self._ctr("version").returncode == 0, 30)

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "charterflow",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.root / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        }

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run("ctr", "--address", str(self.sock), "-n", "k8s.io", *args, check=False)

    def import_image(self, archive: Path) -> None:
        """Load a docker-archive into containerd's ``k8s.io`` namespace (what the kubelet sees)."""
        result = self._ctr("images", "import", str(archive))
        if result.returncode != 0:
            raise ClusterStartError(f"importing {archive}: {result.stderr}")

    def _pause_archive(self) -> Path:
        return docker_archive(
            self.root / "images" / "pause.tar",
            PAUSE_IMAGE,
            {"/pause": self.bin_dir / "pause"},
            ["/pause"],
        )

    def _start_kubelet(self) -> None:
        pki = self.cluster.pki
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.sock}",
            "address": NODE_IP,
            "port": self.ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.ports["kubelet-healthz"],
            "tlsCertFile": str(self.root / "pki" / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(self.root / "pki" / "kubelet-serving.key"),
            "clusterDNS": [CLUSTER_DNS],
            "clusterDomain": "cluster.local",
            "resolvConf": str(_write(self.root / "resolv.conf", b"")),
            # A shared test VM: never evict or garbage-collect the imported images for disk.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "registerWithTaints": [
                {"key": NODE_LABEL[0], "value": NODE_LABEL[1], "effect": "NoSchedule"}
            ],
            "nodeStatusReportFrequency": "10s",
            "podLogsDir": str(self.root / "pod-logs"),  # not /var/log/pods
            "shutdownGracePeriod": "0s",
        }
        path = _write(self.root / "config" / "kubelet.yaml", yaml.safe_dump(config).encode())
        self._spawn(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                f"--config={path}",
                f"--kubeconfig={self.root / 'config' / 'kubelet.kubeconfig'}",
                f"--root-dir={self.root / 'kubelet'}",
                f"--cert-dir={self.root / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.root / "config" / "kube-proxy.kubeconfig")},
            "mode": "iptables",
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "clusterCIDR": POD_CIDR,
            "healthzBindAddress": f"127.0.0.1:{self.ports['proxy-healthz']}",
            "metricsBindAddress": f"127.0.0.1:{self.ports['proxy-metrics']}",
            "conntrack": {"maxPerCore": 0},
        }
        path = _write(self.root / "config" / "kube-proxy.yaml", yaml.safe_dump(config).encode())
        self._spawn("kube-proxy", [str(self.bin_dir / "kube-proxy"), f"--config={path}"])

    def deploy_dns(self, timeout: float = 120) -> None:
        """CoreDNS as a pod on this node behind the ``kube-dns`` Service (CLUSTER_DNS).

        It is Ready only once it has listed Services through the ``kubernetes`` Service, so its
        readiness proves pod -> API server and its answers prove host -> ClusterIP. No upstream
        is configured: names outside ``cluster.local`` never leave the machine.
        """
        placeholders = {"COREDNS_IMAGE": COREDNS_IMAGE, "CLUSTER_DNS": CLUSTER_DNS}
        self._deploy_addon("coredns", COREDNS_IMAGE, placeholders, timeout)
        # kube-proxy writes the Service's rules a moment after the endpoint turns ready.
        wait_until(lambda: bool(resolve("kubernetes.default.svc.cluster.local")), 30, "cluster DNS")

    def deploy_metrics_server(self, timeout: float = 120) -> None:
        """metrics-server as a pod on this node, registered as ``v1beta1.metrics.k8s.io``."""
        self._deploy_addon(
            "metrics-server", METRICS_IMAGE, {"METRICS_IMAGE": METRICS_IMAGE}, timeout
        )

    def _deploy_addon(
        self, name: str, image: str, placeholders: dict[str, str], timeout: float
    ) -> None:
        """Import the one-binary image of the add-on ``name`` (built by scripts/node-binaries),
        apply its manifest from node-addons/ with the placeholders filled in, and wait for its
        Deployment (of the same name, in kube-system) to roll out."""
        binary = f"/{name}"
        self.import_image(
            docker_archive(
                self.root / "images" / f"{name}.tar", image, {binary: self.bin_dir / name}, [binary]
            )
        )
        text = (Path(__file__).parent / "node-addons" / f"{name}.yaml").read_text()
        for placeholder, value in placeholders.items():
            text = text.replace(placeholder, value)
        manifest = _write(self.root / "addons" / f"{name}.yaml", text.encode())
        self.kubectl("apply", "-f", str(manifest))
        self.kubectl(
            "-n",
            "kube-system",
            "rollout",
            "status",
            f"deployment/{name}",
            f"--timeout={int(timeout)}s",
        )

    def kubectl(self, *args: str) -> str:
        result = subprocess.run(
            [
                str(self.cluster.bin_dir / "kubectl"),
                f"--kubeconfig={self.cluster.kubeconfig}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            logs = self.root / "logs" / "kubelet.log"
            tail = (
                "\n".join(logs.read_text(errors="replace").splitlines()[-30:])
                if logs.exists()
                else ""
            )
            raise ClusterStartError(f"kubectl {' '.join(args)}: {result.stderr}\nkubelet:\n{tail}")
        return result.stdout

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dead := next((p for p in self.procs if not p.alive()), None):
                raise ClusterStartError(f"{dead.name} exited\n{dead.log_tail(40)}")
            status, body = self.cluster._api("GET", f"/api/v1/nodes/{NODE_NAME}")
            if status == 200 and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in body.get("status", {}).get("conditions", [])
            ):
                return
            time.sleep(1)
        kubelet = next(p for p in self.procs if p.name == "kubelet")
        raise ClusterStartError(
            f"node {NODE_NAME} not Ready after {timeout:.0f}s\n{kubelet.log_tail(40)}"
        )

    # state for teardown from another process

    def _save_state(self, **extra: Any) -> None:
        path = self.cluster.root / "node.json"
        state = json.loads(path.read_text()) if path.exists() else {}
        state.update(extra)
        state.update(
            {
                "root": str(self.root),
                "sock": str(self.sock),
                "bin_dir": str(self.bin_dir),
                "processes": [
                    {"name": p.name, "pid": p.proc.pid} for p in self.procs if p.proc is not None
                ],
            }
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(path)  # atomic: teardown may read it from another process at any time


def start_real_cluster(root: Path, k8s_bin: Path, node_bin: Path) -> tuple[LocalCluster, RealNode]:
    """A control plane on NODE_IP plus the real node, Ready; everything removed on failure."""
    cluster = LocalCluster(root, k8s_bin, api_host=NODE_IP)
    node = RealNode(cluster, node_bin)
    node.prepare()
    try:
        cluster.start()
        node.start()
        node.deploy_dns()
        node.deploy_metrics_server()
    except BaseException:
        node.stop()
        cluster.stop()
        raise
    return cluster, node


def resolve(name: str, server: str = CLUSTER_DNS) -> list[str]:
    """The A records of ``name`` from the cluster DNS, asked from this host (kube-proxy routes)."""
    import dns.message
    import dns.query

    answer = dns.query.udp(dns.message.make_query(name, "A"), server, timeout=2)
    return [item.address for rrset in answer.answer for item in rrset]


# --- teardown (also from another process) ----------------------------------------------------


def _pids_under(sock: str) -> list[int]:
    """Processes whose command line names our containerd socket: its shims."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if sock.encode() in argv and b"containerd-shim" in argv[0]:
                found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
    return kids


def _netns_inode(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    return None


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    return mounts


def leftover_chains() -> list[str]:
    """``table/chain`` of every KUBE-/CNI-/CHARTERFLOW- chain in iptables and ip6tables."""
    found = []
    for tool in ("iptables", "ip6tables"):
        dump = _run(f"{tool}-save", check=False).stdout
        table = ""
        for line in dump.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
                found.append(f"{tool}/{table}/{line[1:].split()[0]}")
    return found


def _remove_chains() -> None:
    """Remove every rule jumping to our chains, then flush and delete the chains."""
    for tool in ("iptables", "ip6tables"):
        dump = _run(f"{tool}-save", check=False).stdout
        table = ""
        ours: dict[str, list[str]] = {}
        jumps: list[tuple[str, str]] = []
        for line in dump.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
                ours.setdefault(table, []).append(line[1:].split()[0])
            elif line.startswith("-A "):
                parts = line.split()
                target = parts[parts.index("-j") + 1] if "-j" in parts else ""
                if not parts[1].startswith(CHAIN_PREFIXES) and target.startswith(CHAIN_PREFIXES):
                    jumps.append((table, line))
        for table, rule in jumps:
            _run(tool, "-t", table, "-D", *shlex.split(rule)[1:], check=False)
        for table, chains in ours.items():
            for chain in chains:
                _run(tool, "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(tool, "-t", table, "-X", chain, check=False)


def leftovers(root: Path) -> list[str]:
    """What a real node left on this machine (empty after ``teardown``): for the tests."""
    names = (BRIDGE,) if (ADDRESS_USERS / "services").exists() else (DUMMY, BRIDGE)
    found = [f"interface {name}" for name in names if Path(f"/sys/class/net/{name}").exists()]
    found += [f"mount {m}" for m in _mounts_under(root)]
    found += leftover_chains()
    state_sock = str(root / "node" / "containerd" / "containerd.sock")
    found += [f"shim pid {pid}" for pid in _pids_under(state_sock)]
    found += [f"log link {p}" for p in _container_log_links(root)]
    netns = Path("/run/netns")
    found += [f"netns {p}" for p in (netns.glob("cni-*") if netns.exists() else [])]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/kubepods*")]
    return found


def _container_log_links(root: Path) -> list[Path]:
    """The kubelet's symlinks in /var/log/containers (a fixed place) into our pod log dir."""
    links = Path("/var/log/containers")
    found = []
    for link in links.iterdir() if links.exists() else []:
        with contextlib.suppress(OSError):
            if os.readlink(link).startswith(str(root)):
                found.append(link)
    return found


def _our_netns(root: Path) -> list[Path]:
    recorded = root / "node-netns.json"
    inodes = set(json.loads(recorded.read_text())) if recorded.exists() else set()
    found = []
    for path in Path("/run/netns").glob("cni-*") if Path("/run/netns").exists() else []:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino in inodes:
                found.append(path)
    return found


def teardown(cluster_root: Path) -> list[str]:
    """Stop the node recorded in ``cluster_root/node.json`` and remove all it made.

    Order: kubelet and kube-proxy; every container (SIGKILL, through containerd); containerd
    and any shim left; pod network namespaces; mounts under the node's directory; interfaces;
    iptables chains; the kubelet's cgroups; sysctls back to their old values.
    """
    path = cluster_root / "node.json"
    if not path.exists():
        return []
    try:
        state = json.loads(path.read_text())
    except ValueError:  # the writer was killed mid-write: clean up the fixed places anyway
        node_root = cluster_root / "node"
        state = {"root": str(node_root), "sock": str(node_root / "containerd" / "containerd.sock")}
    root, sock = Path(state["root"]), state["sock"]
    done = []
    procs = {p["name"]: p["pid"] for p in state.get("processes", [])}
    for name in ("kube-proxy", "kubelet"):
        if name in procs:
            _stop_group(procs[name])
            done.append(name)
    # Remember the pods' network namespaces before their processes go.
    shims = _pids_under(sock)
    inodes = {ino for shim in shims for kid in _children(shim) if (ino := _netns_inode(kid))}
    recorded = cluster_root / "node-netns.json"
    old = set(json.loads(recorded.read_text())) if recorded.exists() else set()
    recorded.write_text(json.dumps(sorted(inodes | old)))
    if "containerd" in procs and Path(sock).exists():
        ctr = ["ctr", "--address", sock, "-n", "k8s.io"]
        tasks = _run(*ctr, "tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            _run(*ctr, "tasks", "kill", "-a", "-s", "SIGKILL", task, check=False)
        for task in tasks:
            _run(*ctr, "tasks", "delete", "-f", task, check=False)
    if "containerd" in procs:
        _stop_group(procs["containerd"])
        done.append("containerd")
    for shim in _pids_under(sock):
        _kill(_children(shim))
        _kill([shim])
    for netns in _our_netns(cluster_root):
        _run("umount", str(netns), check=False)
        with contextlib.suppress(OSError):
            netns.unlink()
    for mount in sorted(_mounts_under(root), key=len, reverse=True):
        if _run("umount", mount, check=False).returncode != 0:
            _run("umount", "-l", mount, check=False)
    _run("ip", "link", "del", BRIDGE, check=False)
    for link in _container_log_links(root):
        link.unlink(missing_ok=True)
    claim = ADDRESS_USERS / "node"
    if claim.exists() and Path(claim.read_text().strip()) == cluster_root:
        release_address("node")
    _remove_chains()
    _remove_cgroups()
    for key, value in state.get("sysctls", {}).items():
        with contextlib.suppress(OSError):
            (Path("/proc/sys") / key).write_text(value)
    recorded.unlink(missing_ok=True)
    path.unlink()
    return done


def _stop_group(pid: int, timeout: float = 15) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _remove_cgroups() -> None:
    """The kubelet's ``kubepods`` hierarchy in every controller, leaves first."""
    for top in Path("/sys/fs/cgroup").glob("*/kubepods*"):
        dirs = sorted(
            (d for d in top.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        )
        for d in [*dirs, top]:
            with contextlib.suppress(OSError):
                d.rmdir()
