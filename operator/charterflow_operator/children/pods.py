"""What every pod of a CharterFlow shares (Deployments, the backup CronJob, the lifecycle Jobs):
the image, the configuration and Secrets as environment, the restricted security contexts and
``/tmp`` as the only writable path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charterflow import contract

from charterflow_operator import api
from charterflow_operator.instance import CharterFlow


def _secret_env(cf: CharterFlow) -> list[dict[str, Any]]:
    return [
        {"name": r.env, "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}}
        for r in cf.secret_refs()
    ]


TLS_DIR = "/etc/charterflow/tls"
CA_FILE = "ca.crt"


def _tls(cf: CharterFlow) -> tuple[list[dict], list[dict], list[dict]]:
    """(env, volumes, mounts) for the CA bundles of ``spec.database.tls`` and ``spec.redis.tls``.

    PostgreSQL: libpq's own variables, so the app, ``pg_dump`` and ``pg_restore`` all verify
    the server (``verify-full``: CA and host name). Redis: ``REDIS_CA_FILE`` (settings.py adds it
    to the ``rediss://`` URL every client is built from).
    """
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for ref in cf.ca_refs():
        name = f"{ref.env}-ca"
        path = f"{TLS_DIR}/{ref.env}"
        volumes.append(
            {
                "name": name,
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": CA_FILE}],
                    "defaultMode": 0o444,
                },
            }
        )
        mounts.append({"name": name, "mountPath": path, "readOnly": True})
        if ref.env == "database":
            env += [
                {"name": "PGSSLMODE", "value": "verify-full"},
                {"name": "PGSSLROOTCERT", "value": f"{path}/{CA_FILE}"},
            ]
        else:
            env.append({"name": contract.REDIS_CA_FILE, "value": f"{path}/{CA_FILE}"})
    return env, volumes, mounts


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security(cf: CharterFlow) -> dict[str, Any]:
    """Restricted; the image's user and group unless ``spec.securityContext.setUserIds`` is
    false, which leaves them to the platform (OpenShift's restricted-v2 assigns its own)."""
    security: dict[str, Any] = {"runAsNonRoot": True}
    if cf.spec["securityContext"]["setUserIds"]:
        security |= {
            "runAsUser": contract.APP_UID,
            "runAsGroup": contract.APP_UID,
            "fsGroup": contract.APP_UID,
        }
    return security | {"seccompProfile": {"type": "RuntimeDefault"}}


# Spread each component's pods over nodes and zones (a preference: one node or one zone is fine).
SPREAD_TOPOLOGY_KEYS = ("kubernetes.io/hostname", "topology.kubernetes.io/zone")


def pod_spec(cf: CharterFlow, component: str, settings: Mapping[str, Any], container: dict) -> dict:
    """The pod spec shared by every pod and Job: restricted, /tmp as the only writable path."""
    image_spec = cf.spec["image"]
    tls_env, tls_volumes, tls_mounts = _tls(cf)
    container = {
        "image": cf.image,
        "imagePullPolicy": image_spec["pullPolicy"],
        **container,
        "envFrom": [{"configMapRef": {"name": cf.config_name}}, *settings.get("envFrom", [])],
        "env": [
            *container.get("env", []),
            *_secret_env(cf),
            *tls_env,
            *settings.get("env", []),
        ],
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *tls_mounts],  # noqa: S108
    }
    # /tmp holds uploads being received and dumps being restored: bounded, so that a pod that
    # fills it is evicted rather than the node's disk.
    tmp = {"sizeLimit": str(settings["tmpSizeLimit"])} if settings.get("tmpSizeLimit") else {}
    pod: dict[str, Any] = {
        "serviceAccountName": cf.service_account_name,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(cf),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": tmp}, *tls_volumes],
    }
    if component in ("api", "worker"):
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": cf.selector_labels(component)},
            }
            for key in SPREAD_TOPOLOGY_KEYS
        ]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        if settings.get(key):
            pod[key] = settings[key]
    if image_spec.get("pullSecrets"):
        pod["imagePullSecrets"] = image_spec["pullSecrets"]
    return pod


def template(
    cf: CharterFlow, component: str, settings: Mapping[str, Any], container: dict, digest: str
) -> dict[str, Any]:
    """A pod template; ``digest`` (the configuration checksum) rolls the pods when it changes."""
    annotations = dict(settings.get("podAnnotations", {}))
    if digest:
        annotations[api.CHECKSUM_ANNOTATION] = digest
    labels = {**cf.spec["podLabels"], **cf.labels(component)}
    return {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": pod_spec(cf, component, settings, container),
    }


def run_once(template: dict[str, Any]) -> dict[str, Any]:
    """A Job's pod template: its pod is never restarted in place (a retry is a new pod)."""
    template["spec"]["restartPolicy"] = "Never"
    return template
