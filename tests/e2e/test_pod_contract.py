"""The pod templates the operator writes are a contract with the application image: run them.

The operator builds the API and worker Deployments, the migration Jobs and the backup CronJob
of a CharterFlow whose Secrets point at the test PostgreSQL, Redis and S3. kwok only pretends
to run those pods, so each container is run here as a local process, the way a kubelet would:
the image's ENTRYPOINT, CMD, ENV and WORKDIR (read from Dockerfile.app) under the container's
command and args; the environment resolved from the cluster's ConfigMaps and Secrets (envFrom,
env values, valueFrom, ``$(VAR)`` references); probes sent to the path and port the pod spec
names. Nothing is copied from the operator's code: a wrong key, port or command fails here.

Only what a container runtime isolates is mapped: image paths (/opt/charterflow -> this
virtualenv, WORKDIR and HOME -> a scratch directory), emptyDir mounts such as /tmp (-> scratch
directories; UPLOAD_PATH=/tmp/uploads lands there), and each containerPort (-> a free local
port, substituted in the one env value that tells the process its port, which must exist).
pg_dump comes from the test PostgreSQL's binaries, where the image installs postgresql-client.
The read-only root filesystem and the non-root user are not simulated (their fields are checked
by the unit tests of operator/charterflow_operator/children/ and tests/unit/test_dockerfiles.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.kit import (
    REPO,
    KubeHandle,
    OperatorProcess,
    apply,
    get,
    sample,
    scratch_namespace,
    wait_ready,
)
from tests.support import dockerfile
from tests.support.processes import ManagedProcess, free_port, wait_until
from tests.support.services import PostgresServer, RedisServer, S3Server

pytestmark = pytest.mark.services

API = "/api/v1"
INSTANCE = "charterflow"
INGEST_TIMEOUT = 120
JOB_TIMEOUT = 300
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


# --- the image ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What Dockerfile.app's final stage gives every container."""

    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    workdir: str


def app_image() -> Image:
    stage = dockerfile.parse(REPO / "Dockerfile.app").final
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.value):
            name, _, value = word.partition("=")
            env[name] = value
    entrypoint, cmd, workdir = (stage.last(k) for k in ("ENTRYPOINT", "CMD", "WORKDIR"))
    assert entrypoint is not None, "Dockerfile.app has no ENTRYPOINT"
    assert cmd is not None, "Dockerfile.app has no CMD"
    assert workdir is not None, "Dockerfile.app has no WORKDIR"
    return Image(entrypoint.exec_form(), cmd.exec_form(), env, workdir.value.strip())


# --- one container, as a kubelet would start it ------------------------------------------------


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes a ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, value)


@dataclass
class Container:
    """A container of a pod spec, resolved against the cluster and mapped onto this machine."""

    pod: dict[str, Any]
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    termination_log: Path  # the kubelet's file at terminationMessagePath
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> local port

    def local_port(self, port: int | str) -> int:
        """A probe's port (number or containerPort name) as the local port it maps to."""
        if isinstance(port, str):
            (number,) = [p["containerPort"] for p in self.spec["ports"] if p["name"] == port]
            port = number
        return self.ports[port]

    def probe_urls(self) -> dict[str, str]:
        urls = {}
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe := self.spec.get(kind):
                get_ = probe["httpGet"]
                scheme = get_.get("scheme", "HTTP").lower()
                urls[kind] = f"{scheme}://127.0.0.1:{self.local_port(get_['port'])}{get_['path']}"
        return urls

    def start(self, log: Path) -> ManagedProcess:
        return ManagedProcess(self.spec["name"], self.argv, log, env=self.env, cwd=self.cwd).start()

    def run(self) -> subprocess.CompletedProcess[str]:
        """Run to completion (a Job's pod); the exit code is the Job's verdict."""
        return subprocess.run(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT,
            check=False,
        )


class Machine:
    """Maps container paths and ports to this machine, and reads what pods reference."""

    def __init__(self, kube: KubeHandle, namespace: str, root: Path, pg_bin: Path | None) -> None:
        self.kube = kube
        self.namespace = namespace
        self.root = root
        self.image = app_image()
        self.host_path = os.pathsep.join(
            [*([str(pg_bin)] if pg_bin else []), os.environ.get("PATH", "")]
        )

    def _data(self, kind: str, name: str) -> dict[str, str]:
        found = get(self.kube, self.namespace, kind, name)
        if kind == "secret":
            return {k: base64.b64decode(v).decode() for k, v in found.get("data", {}).items()}
        return dict(found.get("data", {}))

    def _env(self, pod_name: str, container: Mapping[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            kind = "configmap" if "configMapRef" in source else "secret"
            ref = source.get("configMapRef") or source["secretRef"]
            for key, value in self._data(kind, ref["name"]).items():
                env[source.get("prefix", "") + key] = value
        fields = {
            "metadata.name": pod_name,
            "metadata.namespace": self.namespace,
            "status.podIP": "127.0.0.1",
        }
        for var in container.get("env", []):
            source = var.get("valueFrom")
            if source is None:
                env[var["name"]] = expand(var.get("value", ""), env)
            elif "fieldRef" in source:
                env[var["name"]] = fields[source["fieldRef"]["fieldPath"]]
            else:
                kind = "secret" if "secretKeyRef" in source else "configmap"
                ref = source.get("secretKeyRef") or source["configMapKeyRef"]
                data = self._data(kind, ref["name"])
                assert ref["key"] in data, (
                    f"{var['name']}: {kind} {ref['name']} has no {ref['key']}"
                )
                env[var["name"]] = data[ref["key"]]
        return env

    def container(self, pod: dict[str, Any], name: str) -> Container:
        """The named container of ``pod`` (a pod spec), ready to run here."""
        (spec,) = [c for c in pod["containers"] if c["name"] == name]
        scratch = self.root / f"{name}-{uuid.uuid4().hex[:6]}"
        paths = {"/opt/charterflow": Path(sys.prefix), self.image.workdir: scratch / "home"}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in spec.get("volumeMounts", []):
            assert "emptyDir" in volumes[mount["name"]], f"cannot provide volume {mount['name']}"
            paths[mount["mountPath"]] = scratch / f"volume-{mount['name']}"
        for local in paths.values():
            local.mkdir(parents=True, exist_ok=True)
        # The kubelet mounts an empty, writable file there; its content is the termination message.
        termination_log = scratch / "termination-log"
        termination_log.touch()
        paths[spec.get("terminationMessagePath", "/dev/termination-log")] = termination_log

        def localise(value: str) -> str:
            for inside in sorted(paths, key=len, reverse=True):
                if value == inside or value.startswith(inside.rstrip("/") + "/"):
                    return str(paths[inside]) + value[len(inside) :]
            return value

        env = {**self.image.env, "HOME": self.image.workdir, **self._env(f"{name}-0", spec)}
        # Localise the image's PATH entries only: the host's own PATH (spliced in for `$PATH`)
        # may itself lie under a mapped directory such as /tmp, and must stay as it is.
        image_path = env.pop("PATH", "$PATH").split(os.pathsep)
        env = {k: localise(v) for k, v in env.items()}
        env["PATH"] = os.pathsep.join(
            self.host_path if part == "$PATH" else localise(part) for part in image_path
        )

        ports = {p["containerPort"]: free_port() for p in spec.get("ports", [])}
        for inside, local in ports.items():
            told = [k for k, v in env.items() if v == str(inside)]
            assert told, f"{name}: no env value tells the process to listen on {inside}"
            env.update(dict.fromkeys(told, str(local)))

        if "command" in spec:
            argv = [*spec["command"], *spec.get("args", [])]
        else:
            argv = [*self.image.entrypoint, *spec.get("args", self.image.cmd)]
        argv = [expand(arg, env) for arg in argv]
        program = shutil.which(argv[0], path=env["PATH"])
        assert program, f"{argv[0]} is not on the container's PATH"
        workdir = paths[self.image.workdir]
        return Container(pod, spec, [program, *argv[1:]], env, workdir, termination_log, ports)


# --- the instance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    s3: dict[str, str]
    pg_bin: Path | None


@pytest.fixture(scope="module")
def services(
    pg_server: PostgresServer | None, redis_server: RedisServer | None, s3_server: S3Server
) -> Services:
    """A fresh database and bucket, and Redis emptied, for this module's one instance."""
    if pg_server is None:
        database_url, pg_bin = os.environ["TEST_DATABASE_URL"], None
    else:
        database_url = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        pg_bin = pg_server.bin
    redis_url = redis_server.url if redis_server else os.environ["TEST_REDIS_URL"]
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    s3 = {
        "bucket": s3_server.create_bucket(f"cf-{uuid.uuid4().hex[:12]}"),
        "region": s3_server.region,
        "endpoint": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
    }
    return Services(database_url, redis_url, s3, pg_bin)


def secrets(services: Services) -> list[dict[str, Any]]:
    """The Secrets that the sample references, pointing at the test services."""
    data = {
        "charterflow-database": {"url": services.database_url},
        "charterflow-redis": {"url": services.redis_url},
        "charterflow-s3": {
            key: services.s3[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}
        for name, values in data.items()
    ]


@dataclass(frozen=True)
class Pods:
    """The pod specs the operator wrote, by role."""

    api: dict[str, Any]
    worker: dict[str, Any]
    backup: dict[str, Any]
    migrations: dict[str, dict[str, Any]]  # --phase value -> pod spec


def _phase(pod: Mapping[str, Any]) -> str:
    argv = [*pod["containers"][0].get("command", []), *pod["containers"][0].get("args", [])]
    return argv[argv.index("--phase") + 1]


@pytest.fixture(scope="module")
def machine(
    kube: KubeHandle, crds: None, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Machine, Pods]]:
    """A CharterFlow reconciled to Ready by the operator; its pod specs, read from the cluster."""
    root = tmp_path_factory.mktemp("pods")
    with scratch_namespace(kube) as ns:
        env = {"WATCH_NAMESPACES": ns, "OPERATOR_STANDALONE": "true"}
        with OperatorProcess(kube.kubeconfig, env, root):
            apply(kube, ns, *secrets(services))
            storage = {
                "s3": {
                    "bucket": services.s3["bucket"],
                    "region": services.s3["region"],
                    "endpoint": services.s3["endpoint"],
                    "credentialsSecretRef": {"name": "charterflow-s3"},
                }
            }
            apply(kube, ns, sample(INSTANCE, storage=storage))
            wait_ready(kube, ns, INSTANCE)
        selector = f"app.kubernetes.io/instance={INSTANCE}"
        deployments = {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"]
            for d in get(kube, ns, "deployments", "-l", selector)["items"]
        }
        cronjob = get(kube, ns, "cronjob", f"{INSTANCE}-backup")
        jobs = get(kube, ns, "jobs", "-l", f"{selector},app.kubernetes.io/component=migrate")
        pods = Pods(
            api=deployments["api"],
            worker=deployments["worker"],
            backup=cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            migrations={
                _phase(j["spec"]["template"]["spec"]): j["spec"]["template"]["spec"]
                for j in jobs["items"]
            },
        )
        yield Machine(kube, ns, root, services.pg_bin), pods


def run_job(machine: Machine, pod: dict[str, Any], what: str) -> subprocess.CompletedProcess[str]:
    (container,) = pod["containers"]
    done = machine.container(pod, container["name"]).run()
    assert done.returncode == 0, f"{what} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def expanded(machine: tuple[Machine, Pods]) -> None:
    """The expand migration Job, which the operator runs before any new pod starts."""
    host, pods = machine
    assert set(pods.migrations) == {"expand", "contract"}, pods.migrations.keys()
    run_job(host, pods.migrations["expand"], "the expand migration Job")


@dataclass
class Running:
    container: Container
    process: ManagedProcess


def start(host: Machine, pod: dict[str, Any], name: str) -> Running:
    container = host.container(pod, name)
    process = container.start(host.root / f"{name}.log")
    probes = container.probe_urls()

    def answered() -> bool:
        return all(200 <= httpx.get(url, timeout=3).status_code < 400 for url in probes.values())

    try:
        process.wait_ready(answered, timeout=90)
    except BaseException:
        process.stop()
        raise
    return Running(container, process)


@pytest.fixture(scope="module")
def api(machine: tuple[Machine, Pods], expanded: None) -> Iterator[Running]:
    host, pods = machine
    running = start(host, pods.api, "api")
    yield running
    running.process.stop()


@pytest.fixture(scope="module")
def worker(machine: tuple[Machine, Pods], api: Running) -> Iterator[Running]:
    host, pods = machine
    running = start(host, pods.worker, "worker")
    yield running
    running.process.stop()


def s3_keys(services: Services, prefix: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=services.s3["endpoint"],
        region_name=services.s3["region"],
        aws_access_key_id=services.s3["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=services.s3["AWS_SECRET_ACCESS_KEY"],
    )
    listed = client.list_objects_v2(Bucket=services.s3["bucket"], Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


# --- the tests ---------------------------------------------------------------------------------


def test_containers_run_the_image_entrypoint_from_this_virtualenv(
    machine: tuple[Machine, Pods],
) -> None:
    """The mapping itself: `charterflow` resolves to this venv's script, /tmp is remapped."""
    host, pods = machine
    container = host.container(pods.api, "api")
    assert Path(container.argv[0]) == Path(sys.prefix) / "bin" / "charterflow"
    assert container.env["CHARTERFLOW_ENV"] == "production"
    assert container.env["UPLOAD_PATH"].startswith(str(host.root))


def test_api_answers_its_probes_where_the_pod_spec_points(api: Running) -> None:
    urls = api.container.probe_urls()
    assert set(urls) == {"startupProbe", "livenessProbe", "readinessProbe"}
    ready = httpx.get(urls["readinessProbe"], timeout=5)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    # Every dependency is the configured one: a missing REDIS_URL or S3_BUCKET would show here.
    # The embedder may still be loading in the background (that does not fail readiness).
    embeddings = checks.pop("embeddings")
    assert embeddings["status"] in {"loading", "ok"}, embeddings
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "redis": "ok",
        "storage": "ok",
    }
    # Production shows an anonymous probe statuses only (details are for admins); the storage
    # checked is the pod spec's S3 bucket.
    assert "backend" not in checks["storage"], checks
    assert api.container.env["S3_BUCKET"]
    assert httpx.get(urls["livenessProbe"], timeout=5).status_code == 200


def test_worker_answers_its_probes_and_ingests_an_upload(
    api: Running, worker: Running, services: Services
) -> None:
    for kind, url in worker.container.probe_urls().items():
        assert httpx.get(url, timeout=5).status_code == 200, kind

    base = f"http://127.0.0.1:{api.container.local_port('http')}{API}"
    with httpx.Client(base_url=base, timeout=10) as client:
        email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
        account = {"email": email, "password": "correct horse battery staple", "name": "Ops"}
        registered = client.post("/auth/register", json=account)
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        notebook = client.post("/notebooks", json={"title": "Runbooks"}, headers=headers)
        assert notebook.status_code == 201, notebook.text
        text = b"Deploys happen on Tuesdays after the change review.\n" * 20
        upload = client.post(
            f"/notebooks/{notebook.json()['id']}/documents",
            files={"file": ("deploys.txt", text, "text/plain")},
            headers=headers,
        )
        assert upload.status_code == 202, upload.text
        document = upload.json()["id"]
        seen: dict[str, Any] = {}

        def settled() -> bool:
            seen.update(client.get(f"/documents/{document}", headers=headers).json())
            return seen.get("status") in ("ready", "failed")

        wait_until(settled, timeout=INGEST_TIMEOUT, what="the document to be ingested")
    assert seen["status"] == "ready", seen
    assert any(key.startswith("documents/") for key in s3_keys(services, "")), "upload not in S3"


def test_contract_migration_job_runs_after_the_rollout(
    machine: tuple[Machine, Pods], api: Running, worker: Running
) -> None:
    host, pods = machine
    done = run_job(host, pods.migrations["contract"], "the contract migration Job")
    assert "revision" in done.stdout
    ready = httpx.get(api.container.probe_urls()["readinessProbe"], timeout=5)
    assert ready.status_code == 200, ready.text


def test_backup_cronjob_writes_a_backup_to_s3(
    machine: tuple[Machine, Pods], expanded: None, services: Services
) -> None:
    host, pods = machine
    (spec,) = pods.backup["containers"]
    container = host.container(pods.backup, spec["name"])
    done = container.run()
    assert done.returncode == 0, f"backup exited {done.returncode}:\n{done.stderr}"
    keys = s3_keys(services, f"backups/{INSTANCE}/")
    assert any(key.endswith(".dump") for key in keys), keys
    assert any(key.endswith(".json") for key in keys), keys
    # The termination message that status.lastBackup.key comes from names the dump written.
    result = json.loads(container.termination_log.read_text())
    assert result["key"] in keys
    assert len(container.termination_log.read_bytes()) <= 4096  # the kubelet's limit
