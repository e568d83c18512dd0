"""The CharterFlow as a typed object: its spec with the CRD's defaults, and everything derived
from its identity alone (child names, labels, the owner reference, the Secret keys it reads).

The spec arrives defaulted by the API server from the CRD schema; ``DEFAULTS`` repeats those
defaults (a unit test keeps the two equal) so that a partial spec works too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charterflow import contract

from charterflow_operator import api

Manifest = dict[str, Any]

# Job names become the `job-name` label of their pods, so they must fit a label value.
MAX_JOB_NAME = 63
# The key of the generated JWT Secret.
JWT_KEY = "secret"
# The default key of spec.llm's (and its embeddings') apiKeySecretRef.
LLM_KEY = "apiKey"
# spec.deletionPolicy: what `kubectl delete charterflow` takes with it besides the children.
RETAIN = "Retain"  # the generated JWT Secret stays (as do the database, bucket and backups)
SNAPSHOT = "Snapshot"  # a final backup runs before the children go; then as Retain
DELETE = "Delete"  # the generated JWT Secret goes too (the operator never touches data)
DELETION_POLICIES = (RETAIN, SNAPSHOT, DELETE)

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
        "tmpSizeLimit": "1Gi",
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
        "tmpSizeLimit": "2Gi",
    },
    "database": {
        "urlSecretRef": {"key": "url"},
        "readUrlSecretRef": {"key": "url"},
        "tls": {"caSecretRef": {"key": "ca.crt"}},
    },
    "redis": {"urlSecretRef": {"key": "url"}, "tls": {"caSecretRef": {"key": "ca.crt"}}},
    "storage": {
        "s3": {
            "region": "us-east-1",
            "credentialsSecretRef": {
                "accessKeyIdKey": "AWS_ACCESS_KEY_ID",
                "secretAccessKeyKey": "AWS_SECRET_ACCESS_KEY",
            },
        }
    },
    "auth": {
        "jwtSecretRef": {"key": JWT_KEY},
        "passwordLogin": True,
        "oidc": {
            "clientSecretRef": {"key": "clientSecret"},
            "scopes": "openid email profile",
            "nameClaim": "name",
            "groupsClaim": "groups",
        },
    },
    "email": {
        "smtp": {
            "port": 587,
            "startTLS": True,
            "credentialsSecretRef": {"usernameKey": "username", "passwordKey": "password"},
        }
    },
    "llm": {
        "apiKeySecretRef": {"key": LLM_KEY},
        "embeddings": {"apiKeySecretRef": {"key": LLM_KEY}},
    },
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
        "tmpSizeLimit": "8Gi",
    },
    "migrations": {
        "backoffLimit": 1,
        "activeDeadlineSeconds": 3600,
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "tmpSizeLimit": "8Gi",
    },
    "paused": False,
    "serviceAccount": {"annotations": {}},
    "podLabels": {},
    "securityContext": {"setUserIds": True},
    "deletionPolicy": RETAIN,
    "monitoring": {"enabled": False, "interval": "30s"},
    "networkPolicy": {
        "enabled": True,
        "ingressFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ],
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "egress": {
            "enabled": True,
            "dns": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
        },
    },
}
# Defaults that apply only when their parent object is present (the CRD has no `default: {}`
# on these parents, exactly like the API server's structural defaulting).
_ONLY_WITH_PARENT = {
    ("storage", "s3", "credentialsSecretRef"),
    ("auth", "jwtSecretRef"),
    ("database", "readUrlSecretRef"),
    ("auth", "oidc"),
    ("email", "smtp"),
    ("email", "smtp", "credentialsSecretRef"),
    ("database", "tls"),
    ("redis", "tls"),
    ("llm",),
    ("llm", "apiKeySecretRef"),
    ("llm", "embeddings"),
    ("llm", "embeddings", "apiKeySecretRef"),
}
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
class SecretRef:
    """One Secret key the application needs, with the spec field that names it."""

    env: str
    name: str
    key: str
    field: str


@dataclass(frozen=True)
class CharterFlow:
    """One CharterFlow: identity and defaulted spec; the owner of every child."""

    name: str
    namespace: str
    uid: str
    spec: dict[str, Any] = field(hash=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CharterFlow:
        meta = body["metadata"]
        return cls(meta["name"], meta["namespace"], meta["uid"], with_defaults(body["spec"]))

    # --- names ---------------------------------------------------------------------------------

    @property
    def api_name(self) -> str:
        return f"{self.name}-api"

    @property
    def worker_name(self) -> str:
        return f"{self.name}-worker"

    def component_name(self, component: str) -> str:
        """The name of the api's or the worker's Deployment (and its Service, HPA, PDB ...)."""
        return self.api_name if component == "api" else self.worker_name

    @property
    def own_service_account_name(self) -> str:
        """The ServiceAccount the operator makes: ``<name>-app``, never the namespace's
        ``default`` (a CharterFlow called ``default`` would otherwise take that one over)."""
        return f"{self.name}-app"

    @property
    def service_account_name(self) -> str:
        """The ServiceAccount the pods run as: ``spec.serviceAccount.name`` (an existing one,
        which the operator leaves alone) or the operator's own."""
        return self.spec["serviceAccount"].get("name") or self.own_service_account_name

    @property
    def config_name(self) -> str:
        return f"{self.name}-config"

    @property
    def jwt_secret_name(self) -> str:
        return f"{self.name}-jwt"

    @property
    def backup_name(self) -> str:
        return f"{self.name}-backup"

    @property
    def jobs_name(self) -> str:
        """The NetworkPolicy of the backup, restore and migration pods."""
        return f"{self.name}-jobs"

    @property
    def version(self) -> str:
        return str(self.spec["version"])

    @property
    def image(self) -> str:
        """The image every pod and Job of the spec's version runs: ``repository@digest`` when a
        digest pins it (the version still labels the pods and names the migrations), else
        ``repository:version``."""
        image = self.spec["image"]
        if image.get("digest"):
            return f"{image['repository']}@{image['digest']}"
        return f"{image['repository']}:{self.version}"

    def _job_name(self, kind: str, detail: str, salt: str) -> str:
        """``<name>-<kind>[-<detail>]-<hash of salt>``, cut to fit a label value.

        The hash keeps names that differ only in what the cut or the character mapping removed
        (``1.0`` and ``1-0``, another repository) apart.
        """
        digest = hashlib.sha256(salt.encode()).hexdigest()[:8]
        readable = re.sub(r"[^a-z0-9]+", "-", detail.lower()).strip("-")
        stem = "-".join(part for part in (self.name, kind, readable) if part)
        return f"{stem[: MAX_JOB_NAME - len(digest) - 1].rstrip('-.')}-{digest}"

    def migration_job_name(self, phase: str) -> str:
        """``<name>-migrate-<version>-<hash>`` (expand) or ``<name>-contract-<version>-<hash>``."""
        kind = "migrate" if phase == "expand" else "contract"
        return self._job_name(kind, self.version, self.image)

    @property
    def restore_job_name(self) -> str:
        return self._job_name("restore", "", json.dumps(self.spec["restore"], sort_keys=True))

    def backup_now_job_name(self, token: str) -> str:
        return self._job_name("backup-now", "", token)

    @property
    def final_backup_job_name(self) -> str:
        """One per CharterFlow object (its uid): a recreated one gets its own."""
        return self._job_name("final-backup", "", self.uid)

    # --- labels and metadata ---------------------------------------------------------------------

    def selector_labels(self, component: str) -> dict[str, str]:
        """Labels that select a component's pods; never the version (selectors are fixed)."""
        return {
            api.NAME_LABEL: "charterflow",
            api.INSTANCE_LABEL: self.name,
            api.COMPONENT_LABEL: component,
        }

    def selector(self, component: str) -> str:
        """The label selector (as text) of a component's objects."""
        return f"{api.INSTANCE_LABEL}={self.name},{api.COMPONENT_LABEL}={component}"

    def labels(self, component: str) -> dict[str, str]:
        """Every child's labels (pods add ``spec.podLabels`` under these: ours win)."""
        return {
            **self.selector_labels(component),
            api.MANAGED_BY_LABEL: api.MANAGED_BY,
            api.VERSION_LABEL: self.version,
        }

    def owner_reference(self) -> dict[str, Any]:
        """Controller reference: deleting the CharterFlow garbage-collects every child."""
        return {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def meta(self, name: str, component: str, **extra: Any) -> dict[str, Any]:
        """A child's metadata: namespace, labels, owner reference, and ``extra``."""
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component),
            "ownerReferences": [self.owner_reference()],
            **extra,
        }

    def controls(self, child: Mapping[str, Any]) -> bool:
        """Whether this CharterFlow is the child's controller (only then may it be pruned)."""
        refs = child["metadata"].get("ownerReferences") or []
        return any(ref.get("uid") == self.uid and ref.get("controller") for ref in refs)

    # --- Secrets the pods read -----------------------------------------------------------------

    def ca_refs(self) -> list[SecretRef]:
        """The CA bundles mounted as files (``spec.database.tls``, ``spec.redis.tls``); ``env``
        is the dependency they verify."""
        refs = []
        for dependency in ("database", "redis"):
            tls = self.spec[dependency].get("tls")
            if tls:
                ref = tls["caSecretRef"]
                where = f"spec.{dependency}.tls.caSecretRef"
                refs.append(SecretRef(dependency, ref["name"], ref["key"], where))
        return refs

    def secret_refs(self) -> list[SecretRef]:
        """Every Secret key that becomes an environment variable of the application pods."""
        spec = self.spec
        db, redis = spec["database"]["urlSecretRef"], spec["redis"]["urlSecretRef"]
        refs = [
            SecretRef(contract.DATABASE_URL, db["name"], db["key"], "spec.database.urlSecretRef"),
            SecretRef(contract.REDIS_URL, redis["name"], redis["key"], "spec.redis.urlSecretRef"),
        ]
        if read := spec["database"].get("readUrlSecretRef"):
            where = "spec.database.readUrlSecretRef"
            refs.append(SecretRef(contract.DATABASE_READ_URL, read["name"], read["key"], where))
        jwt = spec["auth"].get("jwtSecretRef")
        if jwt:
            where = "spec.auth.jwtSecretRef"
            refs.append(SecretRef(contract.JWT_SECRET, jwt["name"], jwt["key"], where))
            if jwt.get("previousKey"):
                env = contract.JWT_PREVIOUS_SECRETS
                refs.append(SecretRef(env, jwt["name"], jwt["previousKey"], where))
        else:
            refs.append(SecretRef(contract.JWT_SECRET, self.jwt_secret_name, JWT_KEY, "generated"))
        creds = spec["storage"]["s3"].get("credentialsSecretRef")
        if creds:
            where = "spec.storage.s3.credentialsSecretRef"
            for env, key in (
                (contract.AWS_ACCESS_KEY_ID, creds["accessKeyIdKey"]),
                (contract.AWS_SECRET_ACCESS_KEY, creds["secretAccessKeyKey"]),
            ):
                refs.append(SecretRef(env, creds["name"], key, where))
        oidc = spec["auth"].get("oidc")
        if oidc:
            ref, where = oidc["clientSecretRef"], "spec.auth.oidc.clientSecretRef"
            refs.append(SecretRef(contract.OIDC_CLIENT_SECRET, ref["name"], ref["key"], where))
        smtp_creds = spec.get("email", {}).get("smtp", {}).get("credentialsSecretRef")
        if smtp_creds:
            where = "spec.email.smtp.credentialsSecretRef"
            for env, key in (
                (contract.SMTP_USERNAME, smtp_creds["usernameKey"]),
                (contract.SMTP_PASSWORD, smtp_creds["passwordKey"]),
            ):
                refs.append(SecretRef(env, smtp_creds["name"], key, where))
        refs.extend(self.model_key_refs())
        return refs

    def model_key_refs(self) -> list[SecretRef]:
        """The model servers' API keys (``spec.llm``, ``spec.llm.embeddings``), if any."""
        llm = self.spec.get("llm") or {}
        refs = []
        for env, where, ref in (
            (contract.LLM_API_KEY, "spec.llm.apiKeySecretRef", llm.get("apiKeySecretRef")),
            (
                contract.EMBEDDINGS_API_KEY,
                "spec.llm.embeddings.apiKeySecretRef",
                (llm.get("embeddings") or {}).get("apiKeySecretRef"),
            ),
        ):
            if ref:
                refs.append(SecretRef(env, ref["name"], ref["key"], where))
        return refs

    def env_secret_refs(self) -> list[EnvSecretRef]:
        """Secrets that ``env`` (``secretKeyRef``) and ``envFrom`` (``secretRef``) of the API and
        the worker name: checked like the core ones and part of the checksum, so that a change
        (a rotated LLM key, say) rolls the pods and a missing one reads MissingSecret."""
        found: list[EnvSecretRef] = []
        for component in ("api", "worker"):
            settings = self.spec[component]
            for index, var in enumerate(settings.get("env") or []):
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref.get("name"):
                    where = f"spec.{component}.env[{index}]"
                    optional = bool(ref.get("optional"))
                    found.append(EnvSecretRef(ref["name"], ref.get("key"), optional, where))
            for index, source in enumerate(settings.get("envFrom") or []):
                ref = source.get("secretRef")
                if ref and ref.get("name"):
                    where = f"spec.{component}.envFrom[{index}]"
                    found.append(EnvSecretRef(ref["name"], None, bool(ref.get("optional")), where))
        return found


@dataclass(frozen=True)
class EnvSecretRef:
    """A Secret named by ``env``/``envFrom``: a key of it (``key``) or all of it (None)."""

    name: str
    key: str | None
    optional: bool
    field: str


def referenced_secret_names(name: str, spec: Mapping[str, Any]) -> set[str]:
    """Names of the Secrets a CharterFlow depends on (for the Secret watch)."""
    cf = CharterFlow(name, "", "", with_defaults(spec))
    refs = (*cf.secret_refs(), *cf.ca_refs(), *cf.env_secret_refs())
    return {ref.name for ref in refs}
