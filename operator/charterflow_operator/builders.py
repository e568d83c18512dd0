"""Pure builders: a CharterFlow (name, namespace, uid, spec) in, child manifests out.

Nothing here talks to the API server, so the whole desired state is unit-tested without a
cluster, and building twice yields equal manifests (which is what makes server-side apply a
no-op in steady state). The spec arrives defaulted by the API server from the CRD schema;
``DEFAULTS`` repeats those defaults (a unit test keeps the two equal) so a partial spec works too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Manifest = dict[str, Any]

GROUP = "charterflow.app"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "CharterFlow"
PLURAL = "charterflows"
FIELD_MANAGER = "charterflow-operator"
MANAGED_BY = "charterflow-operator"
CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"
# On a Job: the CharterFlow generation it was created for (a failed Job of an older one is retried).
GENERATION_ANNOTATION = f"{GROUP}/generation"
# Kubernetes' default terminationMessagePath; the kubelet mounts it writable (read-only root).
TERMINATION_LOG = "/dev/termination-log"
# On a CharterFlow: each new value of it requests one backup run now.
BACKUP_NOW_ANNOTATION = f"{GROUP}/backup-now"
# Job names become the `job-name` label of their pods, so they must fit a label value.
MAX_JOB_NAME = 63
API_PORT = 8080
SERVICE_PORT = 80
WORKER_HEALTH_PORT = 9191
APP_UID = 10001
JWT_KEY = "secret"
BODY_SIZE_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-body-size"

DEFAULTS: dict[str, Any] = {
    "image": {"repository": "ghcr.io/charterflow/charterflow", "pullPolicy": "IfNotPresent"},
    "logLevel": "INFO",
    "api": {
        "replicas": 2,
        "maxUploadMiB": 50,
        "autoscaling": {
            "enabled": False,
            "minReplicas": 2,
            "maxReplicas": 10,
            "targetCPUUtilizationPercentage": 70,
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
    },
    "worker": {
        "replicas": 1,
        "concurrency": 4,
        "autoscaling": {
            "enabled": False,
            "minReplicas": 1,
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 70,
        },
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
    },
    "database": {"urlSecretRef": {"key": "url"}},
    "redis": {"urlSecretRef": {"key": "url"}},
    "storage": {
        "s3": {
            "region": "us-east-1",
            "credentialsSecretRef": {
                "accessKeyIdKey": "AWS_ACCESS_KEY_ID",
                "secretAccessKeyKey": "AWS_SECRET_ACCESS_KEY",
            },
        }
    },
    "auth": {"jwtSecretRef": {"key": JWT_KEY}},
    "ingress": {"enabled": False, "path": "/"},
    "backup": {
        "enabled": True,
        "schedule": "0 3 * * *",
        "retentionDays": 7,
        "prefix": "backups/",
        "suspend": False,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
    },
    "migrations": {
        "backoffLimit": 1,
        "activeDeadlineSeconds": 3600,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
    },
    "paused": False,
}
# Defaults that apply only when their parent object is present (the CRD has no `default: {}`
# on these parents, exactly like the API server's structural defaulting).
_ONLY_WITH_PARENT = {("storage", "s3", "credentialsSecretRef"), ("auth", "jwtSecretRef")}
# Defaults that are whole maps: given values replace them rather than merge into them.
_ATOMIC = {"resources"}


def _merge(defaults: Mapping[str, Any], given: Mapping[str, Any], path: tuple[str, ...]) -> dict:
    out = copy.deepcopy(dict(given))
    for key, default in defaults.items():
        here = (*path, key)
        nested = isinstance(default, dict) and key not in _ATOMIC
        if key in out:
            if nested and isinstance(out[key], dict):
                out[key] = _merge(default, out[key], here)
        elif nested:
            if here not in _ONLY_WITH_PARENT:
                out[key] = _merge(default, {}, here)
        else:
            out[key] = copy.deepcopy(default)
    return out


def with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with the CRD's defaults filled in (idempotent)."""
    return _merge(DEFAULTS, spec, ())


@dataclass(frozen=True)
class Owner:
    """The CharterFlow that children belong to (ownerReference and naming)."""

    name: str
    namespace: str
    uid: str
    spec: dict[str, Any] = field(hash=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        meta = body["metadata"]
        return cls(meta["name"], meta["namespace"], meta["uid"], with_defaults(body["spec"]))


# --- names and labels ------------------------------------------------------------------------


def api_name(owner: Owner) -> str:
    return f"{owner.name}-api"


def worker_name(owner: Owner) -> str:
    return f"{owner.name}-worker"


def config_name(owner: Owner) -> str:
    return f"{owner.name}-config"


def jwt_secret_name(owner: Owner) -> str:
    return f"{owner.name}-jwt"


def backup_name(owner: Owner) -> str:
    return f"{owner.name}-backup"


def image(owner: Owner) -> str:
    """The image every pod and Job of the spec's version runs."""
    return f"{owner.spec['image']['repository']}:{owner.spec['version']}"


def _job_name(owner: Owner, kind: str, detail: str, salt: str) -> str:
    """``<name>-<kind>[-<detail>]-<hash of salt>``, cut to fit a label value.

    The hash keeps names that differ only in what the cut or the character mapping removed
    (``1.0`` and ``1-0``, another repository) apart.
    """
    digest = hashlib.sha256(salt.encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "-", detail.lower()).strip("-")
    stem = "-".join(part for part in (owner.name, kind, readable) if part)
    return f"{stem[: MAX_JOB_NAME - len(digest) - 1].rstrip('-.')}-{digest}"


def migration_job_name(owner: Owner, phase: str) -> str:
    """``<name>-migrate-<version>-<hash>`` (expand) or ``<name>-contract-<version>-<hash>``."""
    kind = "migrate" if phase == "expand" else "contract"
    return _job_name(owner, kind, owner.spec["version"], image(owner))


def restore_job_name(owner: Owner) -> str:
    return _job_name(owner, "restore", "", json.dumps(owner.spec["restore"], sort_keys=True))


def backup_now_job_name(owner: Owner, token: str) -> str:
    return _job_name(owner, "backup-now", "", token)


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """Labels that select a component's pods; never includes the version (selectors are fixed)."""
    return {
        "app.kubernetes.io/name": "charterflow",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
    }


def labels(owner: Owner, component: str) -> dict[str, str]:
    return {
        **selector_labels(owner, component),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": owner.spec["version"],
    }


def owner_reference(owner: Owner) -> dict[str, Any]:
    """Controller reference: deleting the CharterFlow garbage-collects every child."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(owner: Owner, name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component),
        "ownerReferences": [owner_reference(owner)],
        **extra,
    }


# --- secrets the pods read -------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRef:
    """One Secret key the application needs, with the spec field that names it."""

    env: str
    name: str
    key: str
    field: str


def secret_refs(owner: Owner) -> list[SecretRef]:
    """Every Secret key that becomes an environment variable of the application pods."""
    spec = owner.spec
    db, redis = spec["database"]["urlSecretRef"], spec["redis"]["urlSecretRef"]
    refs = [
        SecretRef("DATABASE_URL", db["name"], db["key"], "spec.database.urlSecretRef"),
        SecretRef("REDIS_URL", redis["name"], redis["key"], "spec.redis.urlSecretRef"),
    ]
    jwt = spec["auth"].get("jwtSecretRef")
    if jwt:
        refs.append(SecretRef("JWT_SECRET", jwt["name"], jwt["key"], "spec.auth.jwtSecretRef"))
    else:
        refs.append(SecretRef("JWT_SECRET", jwt_secret_name(owner), JWT_KEY, "generated"))
    creds = spec["storage"]["s3"].get("credentialsSecretRef")
    if creds:
        where = "spec.storage.s3.credentialsSecretRef"
        refs.append(SecretRef("AWS_ACCESS_KEY_ID", creds["name"], creds["accessKeyIdKey"], where))
        refs.append(
            SecretRef("AWS_SECRET_ACCESS_KEY", creds["name"], creds["secretAccessKeyKey"], where)
        )
    return refs


def referenced_secret_names(name: str, spec: Mapping[str, Any]) -> set[str]:
    """Names of the Secrets a CharterFlow depends on (for the Secret watch)."""
    return {ref.name for ref in secret_refs(Owner(name, "", "", with_defaults(spec)))}


def _secret_env(owner: Owner) -> list[dict[str, Any]]:
    return [
        {"name": r.env, "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}}
        for r in secret_refs(owner)
    ]


def checksum(config: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]]) -> str:
    """sha256 of the ConfigMap data and the referenced Secrets' data: a change rolls the pods."""
    payload = json.dumps({"config": config, "secrets": secrets}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


# --- quantities ------------------------------------------------------------------------------


def cpu_cores(quantity: str | int | float) -> Decimal:
    """A CPU quantity ("500m", "2", 1.5) in cores."""
    text = str(quantity).strip()
    if text.endswith("m"):
        return Decimal(text[:-1]) / 1000
    return Decimal(text)


def cpu_bound(resources: Mapping[str, Any]) -> int | None:
    """Threads a container may usefully run: ceil of its CPU limit (else request), at least 1."""
    for kind in ("limits", "requests"):
        value = (resources.get(kind) or {}).get("cpu")
        if value is not None:
            return max(1, math.ceil(cpu_cores(value)))
    return None


def worker_threads(owner: Owner) -> tuple[int, int]:
    """(WORKER_THREADS, BLAS/OpenMP threads): bounded by the CPU limit, not the node's cores."""
    worker = owner.spec["worker"]
    bound = cpu_bound(worker["resources"])
    concurrency = int(worker["concurrency"])
    if bound is None:
        return concurrency, 1
    return min(concurrency, bound), bound


# --- children --------------------------------------------------------------------------------


def service_account(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(owner, owner.name, "app"),
        "automountServiceAccountToken": False,
    }


def config_data(owner: Owner) -> dict[str, str]:
    """The non-secret environment of DESIGN.md section 3."""
    spec = owner.spec
    s3 = spec["storage"]["s3"]
    origins = [spec["appUrl"], *spec.get("corsOrigins", [])]
    data = {
        "APP_URL": spec["appUrl"],
        "CHARTERFLOW_ENV": "production",
        "CHARTERFLOW_INSTANCE": owner.name,
        "CORS_ORIGINS": ",".join(dict.fromkeys(origins)),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": spec["logLevel"],
        "MAX_UPLOAD_BYTES": str(spec["api"]["maxUploadMiB"] * 1024 * 1024),
        "PORT": str(API_PORT),
        "S3_BUCKET": s3["bucket"],
        "S3_REGION": s3["region"],
        "UPLOAD_PATH": "/tmp/uploads",  # noqa: S108 - an emptyDir; files go to S3
        "WORKER_HEALTH_PORT": str(WORKER_HEALTH_PORT),
    }
    if s3.get("endpoint"):
        data["S3_ENDPOINT_URL"] = s3["endpoint"]
    return data


def config_map(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(owner, config_name(owner), "app"),
        "data": config_data(owner),
    }


def jwt_secret(owner: Owner, value: str) -> Manifest:
    """The generated JWT Secret; created once if absent, never applied again."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(owner, jwt_secret_name(owner), "app"),
        "type": "Opaque",
        "stringData": {JWT_KEY: value},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "fsGroup": APP_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_spec(owner: Owner, component: str, settings: Mapping[str, Any], container: dict) -> dict:
    """The pod spec shared by every pod and Job: restricted, /tmp as the only writable path."""
    image_spec = owner.spec["image"]
    container = {
        "image": image(owner),
        "imagePullPolicy": image_spec["pullPolicy"],
        **container,
        "envFrom": [{"configMapRef": {"name": config_name(owner)}}, *settings.get("envFrom", [])],
        "env": [*container.get("env", []), *_secret_env(owner), *settings.get("env", [])],
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }
    pod: dict[str, Any] = {
        "serviceAccountName": owner.name,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if component in ("api", "worker"):
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(owner, component)},
            }
        ]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if settings.get(key):
            pod[key] = settings[key]
    if image_spec.get("pullSecrets"):
        pod["imagePullSecrets"] = image_spec["pullSecrets"]
    return pod


def _template(
    owner: Owner, component: str, settings: Mapping[str, Any], container: dict, digest: str
) -> dict[str, Any]:
    annotations = dict(settings.get("podAnnotations", {}))
    if digest:
        annotations[CHECKSUM_ANNOTATION] = digest
    return {
        "metadata": {"labels": labels(owner, component), "annotations": annotations},
        "spec": _pod_spec(owner, component, settings, container),
    }


def _deployment(
    owner: Owner, name: str, component: str, settings: Mapping[str, Any], template: dict
) -> Manifest:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(owner, component)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "revisionHistoryLimit": 5,
        "template": template,
    }
    if not settings["autoscaling"]["enabled"]:
        spec = {"replicas": settings["replicas"], **spec}  # else the HPA owns the field
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(owner, name, component),
        "spec": spec,
    }


API_DRAIN_SECONDS = 5  # preStop: how long endpoint removal may take to reach every proxy


def _http_probe(path: str, port: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def api_deployment(owner: Owner, digest: str) -> Manifest:
    api = owner.spec["api"]
    container = {
        "name": "api",
        "command": ["charterflow", "serve"],
        "ports": [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}],
        "startupProbe": _http_probe("/health/live", "http", 2, 30),
        "livenessProbe": _http_probe("/health/live", "http", 10, 3),
        "readinessProbe": _http_probe("/health/ready", "http", 5, 3),
        # A terminating pod keeps serving until kube-proxy (and any ingress) has dropped it from
        # the Service's endpoints, then uvicorn drains in-flight requests (up to 20 s).
        "lifecycle": {"preStop": {"sleep": {"seconds": API_DRAIN_SECONDS}}},
        "resources": api["resources"],
    }
    template = _template(owner, "api", api, container, digest)
    template["spec"]["terminationGracePeriodSeconds"] = API_DRAIN_SECONDS + 25
    return _deployment(owner, api_name(owner), "api", api, template)


def worker_deployment(owner: Owner, digest: str) -> Manifest:
    worker = owner.spec["worker"]
    threads, blas = worker_threads(owner)
    env = [{"name": "WORKER_THREADS", "value": str(threads)}]
    env += [
        {"name": name, "value": str(blas)}
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    ]
    container = {
        "name": "worker",
        "command": ["charterflow", "worker"],
        "ports": [{"name": "health", "containerPort": WORKER_HEALTH_PORT, "protocol": "TCP"}],
        "env": env,
        "startupProbe": _http_probe("/health/live", "health", 2, 30),
        "livenessProbe": _http_probe("/health/live", "health", 10, 3),
        "readinessProbe": _http_probe("/health/live", "health", 10, 3),
        "resources": worker["resources"],
    }
    template = _template(owner, "worker", worker, container, digest)
    return _deployment(owner, worker_name(owner), "worker", worker, template)


def api_service(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, api_name(owner), "api"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner, "api"),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def hpa(owner: Owner, component: str) -> Manifest | None:
    """autoscaling/v2 HPA on CPU, or None when autoscaling is disabled (then it is pruned)."""
    scaling = owner.spec[component]["autoscaling"]
    if not scaling["enabled"]:
        return None
    name = api_name(owner) if component == "api" else worker_name(owner)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(owner, name, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling["minReplicas"],
            "maxReplicas": scaling["maxReplicas"],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling["targetCPUUtilizationPercentage"],
                        },
                    },
                }
            ],
        },
    }


def pdb(owner: Owner, component: str) -> Manifest:
    """At most one pod down at a time: protects >1 replicas, never blocks a drain of one."""
    name = api_name(owner) if component == "api" else worker_name(owner)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(owner, name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner, component)},
        },
    }


def body_size(owner: Owner) -> str:
    """The ingress body-size limit: the app's upload limit plus 1 MiB for multipart overhead."""
    return f"{owner.spec['api']['maxUploadMiB'] + 1}m"


def ingress(owner: Owner) -> Manifest | None:
    spec = owner.spec["ingress"]
    if not spec["enabled"]:
        return None
    body: dict[str, Any] = {
        "rules": [
            {
                "host": spec["host"],
                "http": {
                    "paths": [
                        {
                            "path": spec["path"],
                            "pathType": "Prefix",
                            "backend": {
                                "service": {"name": api_name(owner), "port": {"name": "http"}}
                            },
                        }
                    ]
                },
            }
        ]
    }
    if spec.get("className"):
        body = {"ingressClassName": spec["className"], **body}
    if spec.get("tls"):
        body["tls"] = [{"hosts": [spec["host"]], "secretName": spec["tls"]["secretName"]}]
    annotations = {**spec.get("annotations", {}), BODY_SIZE_ANNOTATION: body_size(owner)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(owner, owner.name, "api", annotations=annotations),
        "spec": body,
    }


def network_policy(owner: Owner, component: str) -> Manifest:
    """API pods accept traffic on their port; workers only on their health port."""
    port = API_PORT if component == "api" else WORKER_HEALTH_PORT
    name = api_name(owner) if component == "api" else worker_name(owner)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(owner, name, component),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(owner, component)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


def backup_job_spec(owner: Owner, digest: str) -> dict[str, Any]:
    """The Job spec of one `charterflow backup` run: scheduled, or on demand."""
    backup = owner.spec["backup"]
    settings = {**owner.spec["worker"], "podAnnotations": {}}
    container = {
        "name": "backup",
        "command": ["charterflow", "backup"],
        "env": [
            {"name": "BACKUP_PREFIX", "value": backup["prefix"]},
            {"name": "BACKUP_RETENTION_DAYS", "value": str(backup["retentionDays"])},
            # The result (key, size, sha256) becomes the container's termination message,
            # which status.lastBackup reports; a failure's message is the end of its log.
            {"name": "BACKUP_RESULT_FILE", "value": TERMINATION_LOG},
        ],
        "resources": backup["resources"],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    template = _template(owner, "backup", settings, container, digest)
    template["spec"]["restartPolicy"] = "Never"
    return {"backoffLimit": 2, "template": template}


def backup_cronjob(owner: Owner, digest: str) -> Manifest | None:
    """`charterflow backup` on the schedule; Forbid keeps two runs from overlapping."""
    backup = owner.spec["backup"]
    if not backup["enabled"]:
        return None
    spec: dict[str, Any] = {
        "schedule": backup["schedule"],
        "suspend": backup["suspend"],
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "metadata": {"labels": labels(owner, "backup")},
            "spec": backup_job_spec(owner, digest),
        },
    }
    if backup.get("timeZone"):
        spec["timeZone"] = backup["timeZone"]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(owner, backup_name(owner), "backup"),
        "spec": spec,
    }


def backup_now_job(owner: Owner, digest: str, token: str) -> Manifest:
    """A backup run requested by the backup-now annotation: the CronJob's Job, made now.

    Owned by the CharterFlow rather than the CronJob, so the CronJob's history limits leave it
    alone; works with scheduled backups disabled too (a request is explicit).
    """
    meta = _meta(
        owner,
        backup_now_job_name(owner, token),
        "backup",
        annotations={BACKUP_NOW_ANNOTATION: token},
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": backup_job_spec(owner, digest),
    }


def _database_job(
    owner: Owner, name: str, component: str, command: list[str], generation: int
) -> Manifest:
    """A run-once Job that prepares the database (restore, migrations), as the API would run.

    The API's env, envFrom and scheduling apply (same database, same secrets); annotations,
    resources and limits come from ``spec.migrations``. No ``ttlSecondsAfterFinished``: a
    finished Job is the record of what ran, and a failed one keeps its pod for the logs.
    """
    migrations = owner.spec["migrations"]
    settings = {**owner.spec["api"], "podAnnotations": migrations.get("podAnnotations", {})}
    container = {
        "name": component,
        "command": command,
        "resources": migrations["resources"],
        # The last log lines become the pod's termination message when it fails.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    template = _template(owner, component, settings, container, "")
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(
            owner, name, component, annotations={GENERATION_ANNOTATION: str(generation)}
        ),
        "spec": {
            "backoffLimit": migrations["backoffLimit"],
            "activeDeadlineSeconds": migrations["activeDeadlineSeconds"],
            "template": template,
        },
    }


def migration_job(owner: Owner, phase: str, generation: int) -> Manifest:
    """`charterflow migrate --phase expand` (before the rollout) or `contract` (after it)."""
    return _database_job(
        owner,
        migration_job_name(owner, phase),
        "migrate",
        ["charterflow", "migrate", "--phase", phase],
        generation,
    )


def restore_source(owner: Owner) -> dict[str, str]:
    """``spec.restore`` resolved: which backup, of which instance, under which prefix."""
    restore = owner.spec["restore"]
    return {
        "from": restore["from"],
        "name": restore.get("name") or owner.name,
        "prefix": restore.get("prefix", owner.spec["backup"]["prefix"]),
    }


def restore_job(owner: Owner, generation: int) -> Manifest:
    """`charterflow restore` into the new instance's empty database (never ``--force``)."""
    source = restore_source(owner)
    command = ["charterflow", "restore", "--from", source["from"], "--name", source["name"]]
    command += ["--prefix", source["prefix"]]
    return _database_job(owner, restore_job_name(owner), "restore", command, generation)


@dataclass
class Children:
    """Desired children in apply order; ``absent`` lists optional ones to delete if present.

    ``digest`` is the configuration checksum the pods carry (on-demand backups reuse it).
    """

    base: list[Manifest]
    workloads: list[Manifest]
    absent: list[tuple[str, str, str]]  # (apiVersion, kind, name)
    digest: str = ""


def build(owner: Owner, secrets: Mapping[str, Mapping[str, str]]) -> Children:
    """All desired children. ``secrets``: data of the referenced Secrets, by name.

    ``base`` comes before the rollout gate (restore and migration Jobs, see lifecycle.py),
    ``workloads`` after it, so that new pods never start before the schema they need.
    """
    digest = checksum(config_data(owner), secrets)
    base = [
        service_account(owner),
        config_map(owner),
        api_service(owner),
        pdb(owner, "api"),
        pdb(owner, "worker"),
        network_policy(owner, "api"),
        network_policy(owner, "worker"),
    ]
    optional: list[tuple[str, str, str, Manifest | None]] = [
        ("autoscaling/v2", "HorizontalPodAutoscaler", api_name(owner), hpa(owner, "api")),
        ("autoscaling/v2", "HorizontalPodAutoscaler", worker_name(owner), hpa(owner, "worker")),
        ("networking.k8s.io/v1", "Ingress", owner.name, ingress(owner)),
        ("batch/v1", "CronJob", backup_name(owner), backup_cronjob(owner, digest)),
    ]
    workloads = [api_deployment(owner, digest), worker_deployment(owner, digest)]
    workloads += [m for *_, m in optional if m is not None]
    absent = [(v, k, n) for v, k, n, m in optional if m is None]
    return Children(base, workloads, absent, digest)
