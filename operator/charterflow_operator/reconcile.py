"""One reconcile pass: read the CharterFlow, apply its children, write its status.

Children are written with server-side apply under one field manager (force), so a pass over
an unchanged world writes nothing and a hand edit of a field we own is undone. Force is used
only on objects this CharterFlow controls: a name held by anything else is reported
(``NameConflict``), never adopted. The work queue
(workqueue.py) sees to it that passes of one CharterFlow never overlap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import NotFoundError

from charterflow_operator import api, children, metrics
from charterflow_operator.api import Condition, Phase
from charterflow_operator.children.config import jwt_owner_references, jwt_secret
from charterflow_operator.children.monitoring import monitoring_children
from charterflow_operator.deletion import FinalBackup, waits_for_backup
from charterflow_operator.dependencies import DependencyProbe
from charterflow_operator.instance import CharterFlow, Manifest
from charterflow_operator.kube import Kube, api_message, merge_patch, namespace_terminating
from charterflow_operator.leadership import Leadership
from charterflow_operator.observe import Body, PassResult, backup_report, newest_backup, reported
from charterflow_operator.rollout_gate import RolloutGate
from charterflow_operator.status import compute
from charterflow_operator.workqueue import Backoff, Key, WorkQueue

log = logging.getLogger(__name__)
DEPLOYMENT = (api.DEPLOYMENT.api_version, api.DEPLOYMENT.kind)


class MissingSecretError(Exception):
    """A Secret (or key) that the spec references does not exist."""


class NameConflictError(Exception):
    """A child's name is held by an object that this CharterFlow does not control."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler:
    """Reconciles CharterFlows through ``kube``; ``enqueue`` asks for a pass (the queue's
    threads run it), ``reconcile`` runs one in the calling thread."""

    def __init__(
        self, kube: Kube, backoff: Backoff | None = None, leadership: Leadership | None = None
    ) -> None:
        self.kube = kube
        self.leadership = leadership or Leadership.standalone()
        self.gate = RolloutGate(kube)
        self.final_backup = FinalBackup(kube)
        self.dependencies = DependencyProbe(kube)
        self.backoff = backoff or Backoff()
        self.queue = WorkQueue(self.run_pass, self.backoff.refused)
        self._unmonitored: set[Key] = set()  # told (by an Event) that monitoring cannot be made

    def enqueue(self, namespace: str, name: str) -> None:
        """Ask for a pass (from Kopf's handlers); returns at once."""
        self.queue.put((namespace, name))

    def pass_due(self, namespace: str, name: str, backstop: float) -> bool:
        """Whether the backstop should reconcile this CharterFlow now (see ``Backoff.due``)."""
        return self.backoff.due((namespace, name), backstop)

    def run_pass(self, key: Key) -> None:
        """One timed pass, as the queue's threads run it: metrics, and the backoff's clock.
        None at all while another replica leads (see leadership.py)."""
        if not self.leadership.leads(key[0]):
            metrics.SKIPPED.inc()
            return
        started = time.perf_counter()
        try:
            self.reconcile(*key)
            metrics.RECONCILES.labels(result="success").inc()
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            metrics.ERRORS.inc()
            raise
        finally:
            metrics.DURATION.observe(time.perf_counter() - started)
            self.backoff.passed(key)

    # --- one pass --------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        body = self.kube.get(api.API_VERSION, api.KIND, namespace, name)
        if body is not None and waits_for_backup(body):
            self.final_backup.finish(CharterFlow.from_body(body), body, _now())
            return
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._forget(namespace, name)  # garbage collection removes the children
            return
        cf = CharterFlow.from_body(body)
        self.final_backup.settle(cf, body)
        result = self._converge(cf, body)
        if result.apply_error or result.name_conflict:
            # Retried sooner, with backoff: the object in the way is not ours, so its removal
            # sends us no event.
            self.backoff.refused((namespace, name))
        else:
            self.backoff.accepted((namespace, name))
        backups = self.gate.backups(cf)
        report = self._backup_report(cf, backups, (body.get("status") or {}).get("lastBackup"))
        result = dataclasses.replace(result, backups=backups, backup_report=report)
        if not result.paused and _pods_unready(result):
            result = dataclasses.replace(result, outage=self.dependencies.outage(cf))
        status = compute(body, cf, result, _now())
        metrics.READY.labels(namespace, name).set(1 if status.get("phase") == Phase.READY else 0)
        old = body.get("status") or {}
        if status != old:
            try:
                self.kube.patch_status(namespace, name, merge_patch(old, status))
            except NotFoundError:  # deleted during the pass (its namespace, say): nobody to tell
                self._forget(namespace, name)
                return
            self._announce(body, old, status)

    def _forget(self, namespace: str, name: str) -> None:
        """Drop what is kept about a CharterFlow that is gone or going."""
        self.backoff.forget((namespace, name))
        self._unmonitored.discard((namespace, name))
        with contextlib.suppress(KeyError):
            metrics.READY.remove(namespace, name)

    def _converge(self, cf: CharterFlow, body: Body) -> PassResult:
        if cf.spec["paused"]:
            return PassResult(paused=True, **self._read_workloads(cf))
        try:
            desired = children.build(cf, self._secret_data(cf))
            for manifest in desired.base:
                self._apply(cf, manifest)
            request = self.gate.backup_request(cf, body, desired.digest)
            gate = self.gate.before_rollout(cf, body)
            if not gate.open:
                return PassResult(
                    restore=gate.restore,
                    migration=gate.migration,
                    backup_request=request,
                    **self._read_workloads(cf),
                )
            applied = {(m["kind"], m["metadata"]["name"]): m for m in desired.workloads}
            for manifest in desired.workloads:
                applied[(manifest["kind"], manifest["metadata"]["name"])] = self._apply(
                    cf, manifest
                )
            for api_version, kind, child in desired.absent:
                self._prune(cf, api_version, kind, child)
            self._monitoring(cf, body)
            api_deployment = applied[(api.DEPLOYMENT.kind, cf.api_name)]
            worker_deployment = applied[(api.DEPLOYMENT.kind, cf.worker_name)]
            migration = self.gate.after_rollout(cf, body, api_deployment, worker_deployment)
        except MissingSecretError as exc:
            return PassResult(missing_secret=str(exc), **self._read_workloads(cf))
        except NameConflictError as exc:
            log.warning("%s/%s: %s", cf.namespace, cf.name, exc)
            return PassResult(name_conflict=str(exc), **self._read_workloads(cf))
        except ApiException as exc:  # the dynamic client's DynamicApiError is one too
            message = api_message(exc)
            if namespace_terminating(exc):
                log.info("%s/%s: its namespace is being deleted", cf.namespace, cf.name)
            else:
                log.warning(
                    "applying children of %s/%s refused: %s", cf.namespace, cf.name, message
                )
            return PassResult(apply_error=message, **self._read_workloads(cf))
        return PassResult(
            api=api_deployment,
            worker=worker_deployment,
            cronjob=applied.get((api.CRONJOB.kind, cf.backup_name)),
            restore=gate.restore,
            migration=migration,
            backup_request=request,
        )

    def _backup_report(
        self, cf: CharterFlow, backups: tuple[dict[str, Any], ...], old: Mapping[str, Any] | None
    ) -> dict[str, str] | None:
        """What the pod of the newest finished backup Job said, read once per Job (status
        carries it afterwards): the key written, or why it failed."""
        latest = newest_backup(backups)
        if latest is None or reported(old, latest):
            return None
        return backup_report(self.gate.termination_message(cf, latest.job))

    def _apply(self, cf: CharterFlow, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a child that is ours or absent; a name held by an object we
        do not control (the user's, another CharterFlow's) raises ``NameConflictError``."""
        meta = manifest["metadata"]
        found = self.kube.get(manifest["apiVersion"], manifest["kind"], cf.namespace, meta["name"])
        if found is not None and not cf.controls(found):
            raise NameConflictError(
                f"{manifest['kind']} {meta['name']!r} exists and is not controlled by this "
                "CharterFlow; the operator does not take it over: rename or delete that object"
            )
        if found is not None and manifest["kind"] == api.DEPLOYMENT.kind:
            self._keep_replicas(cf, manifest, found)
        return self.kube.apply(manifest)

    def _keep_replicas(self, cf: CharterFlow, manifest: Manifest, found: Mapping[str, Any]) -> None:
        """With autoscaling on (``replicas`` not in our manifest), the replica count the HPA
        starts from: the current one when we still hold the field (autoscaling was just turned
        on), the HPA's minimum when it is 0 (scaled down by hand, as the manual restore does:
        an HPA never scales up from 0)."""
        if "replicas" in manifest["spec"]:
            return
        current = int(found["spec"].get("replicas", 1))
        if current == 0:
            component = manifest["metadata"]["labels"][api.COMPONENT_LABEL]
            self._hold_replicas(found, cf.spec[component]["autoscaling"]["minReplicas"])
        elif _owns_replicas(found):
            self._hold_replicas(found, current)

    def _hold_replicas(self, deployment: Mapping[str, Any], replicas: int) -> None:
        """Autoscaling was turned on: ``replicas`` leaves our applied configuration. Server-side
        apply would reset a field that no manager owns any more to its default (1), taking
        pods away before the HPA acts; so another manager first co-owns the value, which then
        stays until the HPA's scale writes take the field over."""
        meta = deployment["metadata"]
        holder = {
            "apiVersion": api.DEPLOYMENT.api_version,
            "kind": api.DEPLOYMENT.kind,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "spec": {"replicas": replicas},
        }
        self.kube.apply(holder, manager=api.HANDOFF_MANAGER)
        log.info(
            "%s/%s: replicas %s handed over to the HPA", meta["namespace"], meta["name"], replicas
        )

    def _read_workloads(self, cf: CharterFlow) -> dict[str, Any]:
        ns = cf.namespace
        return {
            "api": self.kube.get(*DEPLOYMENT, ns, cf.api_name),
            "worker": self.kube.get(*DEPLOYMENT, ns, cf.worker_name),
            "cronjob": self.kube.get(api.CRONJOB.api_version, api.CRONJOB.kind, ns, cf.backup_name),
        }

    def _monitoring(self, cf: CharterFlow, body: Body) -> None:
        """Apply (or prune) the PodMonitors and PrometheusRule; when the cluster lacks their
        CRDs, say so once in a Warning Event rather than failing the whole pass."""
        key = (cf.namespace, cf.name)
        wanted = monitoring_children(cf)
        served = all(self.kube.serves(k.api_version, k.kind) for k in api.MONITORING_KINDS)
        if wanted is None:
            self._unmonitored.discard(key)
            if served:
                names = (cf.api_name, cf.worker_name)
                for kind, name in [
                    *((api.POD_MONITOR, n) for n in names),
                    (api.PROMETHEUS_RULE, cf.name),
                ]:
                    self._prune(cf, kind.api_version, kind.kind, name)
            return
        if not served:
            if key not in self._unmonitored:
                self._unmonitored.add(key)
                message = (
                    "spec.monitoring.enabled is true but the cluster does not serve "
                    "monitoring.coreos.com/v1 PodMonitor and PrometheusRule: install the "
                    "Prometheus Operator's CRDs; no monitoring objects were created"
                )
                log.warning("%s/%s: %s", cf.namespace, cf.name, message)
                self.kube.post_event(body, "Warning", api.Reason.MONITORING_UNAVAILABLE, message)
            return
        self._unmonitored.discard(key)
        for manifest in wanted:
            self._apply(cf, manifest)

    def _prune(self, cf: CharterFlow, api_version: str, kind: str, name: str) -> None:
        """Delete an optional child that is no longer wanted, only if we control it."""
        found = self.kube.get(api_version, kind, cf.namespace, name)
        if found is not None and cf.controls(found):
            self.kube.delete(api_version, kind, cf.namespace, name)

    def _secret_data(self, cf: CharterFlow) -> dict[str, dict[str, str]]:
        """Data of every referenced Secret (for the checksum); raises on a missing one."""
        data: dict[str, dict[str, str]] = {}
        if not cf.spec["auth"].get("jwtSecretRef"):
            data[cf.jwt_secret_name] = self._ensure_jwt_secret(cf)
        for ref in (*cf.secret_refs(), *cf.ca_refs()):
            if ref.name not in data:
                found = self.kube.read_secret(cf.namespace, ref.name)
                if found is None:
                    raise MissingSecretError(
                        f"Secret {ref.name!r} ({ref.field}) not found in {cf.namespace}"
                    )
                data[ref.name] = found
            if ref.key not in data[ref.name]:
                raise MissingSecretError(
                    f"Secret {ref.name!r} has no key {ref.key!r} ({ref.field})"
                )
        for extra in cf.env_secret_refs():  # env/envFrom: optional ones may be absent
            if extra.name not in data:
                found = self.kube.read_secret(cf.namespace, extra.name)
                if found is None:
                    if extra.optional:
                        continue
                    raise MissingSecretError(
                        f"Secret {extra.name!r} ({extra.field}) not found in {cf.namespace}"
                    )
                data[extra.name] = found
            if extra.key and extra.key not in data[extra.name] and not extra.optional:
                raise MissingSecretError(
                    f"Secret {extra.name!r} has no key {extra.key!r} ({extra.field})"
                )
        return data

    def _ensure_jwt_secret(self, cf: CharterFlow) -> dict[str, str]:
        """Create ``<name>-jwt`` once, never overwriting or rotating it; returns its data.

        A generated one (labelled as ours) has its owner set by ``spec.deletionPolicy``: nobody
        (it survives the CharterFlow) or, for Delete, the CharterFlow. One a user made is used
        as it is."""
        found = self.kube.get(
            api.SECRET.api_version, api.SECRET.kind, cf.namespace, cf.jwt_secret_name
        )
        if found is not None:
            self._settle_jwt_owner(cf, found)
            return dict(found.get("data") or {})
        created = self.kube.create_secret(jwt_secret(cf, secrets.token_urlsafe(48)))
        if created is None:  # another pass created it first: keep that one
            return self.kube.read_secret(cf.namespace, cf.jwt_secret_name) or {}
        log.info("generated JWT secret %s/%s", cf.namespace, cf.jwt_secret_name)
        return created

    def _settle_jwt_owner(self, cf: CharterFlow, secret: Mapping[str, Any]) -> None:
        meta = secret["metadata"]
        labels = meta.get("labels") or {}
        generated = labels.get(api.MANAGED_BY_LABEL) == api.MANAGED_BY
        if not generated or labels.get(api.INSTANCE_LABEL) != cf.name:
            return
        wanted = jwt_owner_references(cf)
        if (meta.get("ownerReferences") or []) != wanted:
            patch = {"metadata": {"ownerReferences": wanted or None}}
            self.kube.patch(
                api.SECRET.api_version, api.SECRET.kind, cf.namespace, meta["name"], patch
            )
            log.info(
                "JWT secret %s/%s: owner set for deletionPolicy %s",
                cf.namespace,
                meta["name"],
                cf.spec["deletionPolicy"],
            )

    def _announce(
        self, body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        """A Kubernetes Event when the phase or the Ready reason changes."""
        before = _ready_of(old)
        after = _ready_of(new)
        if old.get("phase") == new["phase"] and before == after:
            return
        kind = "Warning" if new["phase"] == Phase.DEGRADED else "Normal"
        message = f"phase {new['phase']}: {after[1]}"
        log.info("%s/%s %s", body["metadata"]["namespace"], body["metadata"]["name"], message)
        self.kube.post_event(body, kind, after[0] or new["phase"], message)


def _pods_unready(result: PassResult) -> bool:
    """Some API or worker pods exist but are not ready (only then are the pods asked why)."""
    for deployment in (result.api, result.worker):
        status = (deployment or {}).get("status") or {}
        if int(status.get("replicas", 0)) > int(status.get("readyReplicas", 0)):
            return True
    return False


def _owns_replicas(deployment: Mapping[str, Any]) -> bool:
    """Whether our field manager's applied configuration holds the Deployment's replicas."""
    for entry in deployment["metadata"].get("managedFields") or []:
        if entry.get("manager") == api.FIELD_MANAGER and entry.get("operation") == "Apply":
            fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
            return "f:replicas" in fields
    return False


def _ready_of(status: Mapping[str, Any]) -> tuple[str, str]:
    for condition in status.get("conditions", []):
        if condition.get("type") == Condition.READY:
            return condition.get("reason", ""), condition.get("message", "")
    return "", ""
