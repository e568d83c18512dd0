"""One reconcile pass: read the CharterFlow, apply its children, write its status.

Children are written with server-side apply under one field manager (force), so a pass over
an unchanged world writes nothing and a hand edit of a field we own is undone. Reconciles of
one CharterFlow never overlap: requests that arrive during a pass coalesce into one more pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from charterflow_operator import builders, metrics
from charterflow_operator.builders import FIELD_MANAGER, Manifest, Owner
from charterflow_operator.lifecycle import Lifecycle
from charterflow_operator.status import (
    Body,
    Observed,
    backup_words,
    compute,
    newest_backup,
    reported,
)
from charterflow_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)


class MissingSecretError(Exception):
    """A Secret (or key) that the spec references does not exist."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_message(exc: ApiException) -> str:
    """``403 Forbidden: <the API server's Status message>``; never the request body (which
    may carry secret values) nor the response headers."""
    message = ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        message = str(json.loads(exc.body or "").get("message") or "")
    return f"{exc.status} {exc.reason}: {message}" if message else f"{exc.status} {exc.reason}"


def _namespace_terminating(exc: ApiException) -> bool:
    """The refusal that every create meets in a namespace being deleted: not an RBAC gap, and
    nothing to fix; the namespace's deletion removes the CharterFlow soon."""
    return exc.status == 403 and "because it is being terminated" in _api_message(exc)


@dataclass
class _State:
    running: bool = False
    dirty: bool = False


class Kube:
    """Thin typed wrapper over the dynamic client: apply, get, delete by apiVersion/kind."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.dynamic = DynamicClient(api_client)
        self.core = client.CoreV1Api(api_client)

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: Manifest) -> dict[str, Any]:
        res = self.resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        result = self.dynamic.server_side_apply(
            res,
            body=manifest,
            name=meta["name"],
            namespace=meta["namespace"],
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return result.to_dict()

    def create(self, manifest: Manifest) -> dict[str, Any]:
        """Create once (Jobs: their pod template cannot be changed by a later apply)."""
        res = self.resource(manifest["apiVersion"], manifest["kind"])
        created = self.dynamic.create(
            res,
            body=manifest,
            namespace=manifest["metadata"]["namespace"],
            field_manager=FIELD_MANAGER,
        )
        return created.to_dict()

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        try:
            found = self.dynamic.get(self.resource(api_version, kind), name, namespace)
        except NotFoundError:
            return None
        return found.to_dict()

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict]:
        found = self.dynamic.get(
            self.resource(api_version, kind), namespace=namespace, label_selector=selector
        )
        return found.to_dict().get("items") or []

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete with its dependents in the background (a Job's pods go too)."""
        with contextlib.suppress(NotFoundError):
            self.dynamic.delete(
                self.resource(api_version, kind), name, namespace, propagation_policy="Background"
            )

    def post_event(self, about: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        """A core/v1 Event on ``about`` (what ``kubectl describe`` shows); an Event that cannot
        be written (its namespace is being deleted, say) is logged in one line, never raised."""
        meta = about["metadata"]
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{meta['name']}.", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=about["apiVersion"],
                kind=about["kind"],
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=kind,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=FIELD_MANAGER),
            reporting_component=FIELD_MANAGER,
        )
        try:
            self.core.create_namespaced_event(meta["namespace"], event)
        except ApiException as exc:
            log.warning(
                "event %s on %s/%s not written: %s",
                reason,
                meta["namespace"],
                meta["name"],
                _api_message(exc),
            )

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        res = self.resource(builders.API_VERSION, builders.KIND)
        self.dynamic.patch(
            res.status,
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )


class Reconciler:
    """Reconciles CharterFlows; safe to call from any thread, one pass at a time per object.

    ``enqueue`` is how events ask for a pass; ``request`` runs one in the calling thread."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.kube = Kube(api_client)
        self.lifecycle = Lifecycle(self.kube)
        self._lock = threading.Lock()
        self._states: dict[Key, _State] = {}
        self._last_pass: dict[Key, float] = {}
        self._refusals: dict[Key, int] = {}  # passes in a row refused (or failed)
        self.queue = WorkQueue(lambda key: self.request(*key), self._failed)

    def enqueue(self, namespace: str, name: str) -> None:
        """Ask for a pass (from Kopf's handlers); returns at once: the queue's threads run it."""
        self.queue.put((namespace, name))

    def _failed(self, key: Key) -> None:
        """A pass raised: the backstop retries it with backoff, as a refused one."""
        self._refusals[key] = self._refusals.get(key, 0) + 1

    def pass_due(self, namespace: str, name: str, backstop: float) -> bool:
        """Whether the backstop should reconcile this CharterFlow now: idle for ``backstop``
        seconds, or sooner (with backoff) while the API server keeps refusing its children,
        since a refusal (a quota, an admission webhook) often goes away with no event to us."""
        key = (namespace, name)
        ended = self._last_pass.get(key)
        idle = math.inf if ended is None else time.monotonic() - ended
        return idle >= retry_delay(self._refusals.get(key, 0), backstop)

    def request(self, namespace: str, name: str) -> None:
        """Reconcile now, or (if a pass is running) make that pass run once more."""
        key = (namespace, name)
        with self._lock:
            state = self._states.setdefault(key, _State())
            if state.running:
                state.dirty = True
                return
            state.running = True
        try:
            while True:
                with self._lock:
                    state.dirty = False
                self._timed(namespace, name)
                with self._lock:
                    if not state.dirty:
                        break
        finally:
            with self._lock:
                state.running = False

    def _timed(self, namespace: str, name: str) -> None:
        started = time.perf_counter()
        try:
            self.reconcile(namespace, name)
            metrics.RECONCILES.labels(result="success").inc()
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            metrics.ERRORS.inc()
            raise
        finally:
            metrics.DURATION.observe(time.perf_counter() - started)
            self._last_pass[(namespace, name)] = time.monotonic()

    # --- one pass --------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        body = self.kube.get(builders.API_VERSION, builders.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._forget(namespace, name)  # garbage collection removes the children
            return
        owner = Owner.from_body(body)
        observed = self._converge(owner, body)
        key = (namespace, name)
        if observed.apply_error:
            self._refusals[key] = self._refusals.get(key, 0) + 1
        else:
            self._refusals.pop(key, None)
        backups = self.lifecycle.backups(owner)
        words = self._backup_words(owner, backups, (body.get("status") or {}).get("lastBackup"))
        observed = dataclasses.replace(observed, backups=backups, backup_words=words)
        status = compute(body, owner, observed, _now())
        metrics.READY.labels(namespace, name).set(1 if status.get("phase") == "Ready" else 0)
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
        with self._lock:
            self._states.pop((namespace, name), None)
        self._refusals.pop((namespace, name), None)
        with contextlib.suppress(KeyError):
            metrics.READY.remove(namespace, name)

    def _converge(self, owner: Owner, body: Body) -> Observed:
        if owner.spec["paused"]:
            return Observed(paused=True, **self._read_workloads(owner))
        try:
            secret_data = self._secret_data(owner)
            children = builders.build(owner, secret_data)
            for manifest in children.base:
                self.kube.apply(manifest)
            request = self.lifecycle.backup_request(owner, body, children.digest)
            gate = self.lifecycle.before_rollout(owner, body)
            if not gate.open:
                return Observed(
                    restore=gate.restore,
                    migration=gate.migration,
                    backup_request=request,
                    **self._read_workloads(owner),
                )
            applied = {(m["kind"], m["metadata"]["name"]): m for m in children.workloads}
            for manifest in children.workloads:
                applied[(manifest["kind"], manifest["metadata"]["name"])] = self.kube.apply(
                    manifest
                )
            for api_version, kind, child in children.absent:
                self._prune(owner, api_version, kind, child)
            api = applied[("Deployment", builders.api_name(owner))]
            worker = applied[("Deployment", builders.worker_name(owner))]
            migration = self.lifecycle.after_rollout(owner, body, api, worker)
        except MissingSecretError as exc:
            return Observed(missing_secret=str(exc), **self._read_workloads(owner))
        except ApiException as exc:  # the dynamic client's DynamicApiError is one too
            message = _api_message(exc)
            if _namespace_terminating(exc):
                log.info("%s/%s: its namespace is being deleted", owner.namespace, owner.name)
            else:
                log.warning(
                    "applying children of %s/%s refused: %s", owner.namespace, owner.name, message
                )
            return Observed(apply_error=message, **self._read_workloads(owner))
        return Observed(
            api=api,
            worker=worker,
            cronjob=applied.get(("CronJob", builders.backup_name(owner))),
            restore=gate.restore,
            migration=migration,
            backup_request=request,
        )

    def _backup_words(
        self, owner: Owner, backups: tuple[dict[str, Any], ...], old: Mapping[str, Any] | None
    ) -> dict[str, str] | None:
        """What the pod of the newest finished backup Job said, read once per Job (status
        carries it afterwards): the key written, or why it failed."""
        latest = newest_backup(backups)
        if latest is None or reported(old, latest):
            return None
        return backup_words(self.lifecycle.termination_message(owner, latest.job))

    def _read_workloads(self, owner: Owner) -> dict[str, Any]:
        ns = owner.namespace
        return {
            "api": self.kube.get("apps/v1", "Deployment", ns, builders.api_name(owner)),
            "worker": self.kube.get("apps/v1", "Deployment", ns, builders.worker_name(owner)),
            "cronjob": self.kube.get("batch/v1", "CronJob", ns, builders.backup_name(owner)),
        }

    def _prune(self, owner: Owner, api_version: str, kind: str, name: str) -> None:
        """Delete an optional child that is no longer wanted, only if we control it."""
        found = self.kube.get(api_version, kind, owner.namespace, name)
        if found is None:
            return
        refs = found["metadata"].get("ownerReferences") or []
        if any(ref.get("uid") == owner.uid and ref.get("controller") for ref in refs):
            self.kube.delete(api_version, kind, owner.namespace, name)

    def _secret_data(self, owner: Owner) -> dict[str, dict[str, str]]:
        """Data of every referenced Secret (for the checksum); raises on a missing one."""
        data: dict[str, dict[str, str]] = {}
        if not owner.spec["auth"].get("jwtSecretRef"):
            data[builders.jwt_secret_name(owner)] = self._ensure_jwt_secret(owner)
        for ref in builders.secret_refs(owner):
            if ref.name not in data:
                try:
                    secret = self.kube.core.read_namespaced_secret(ref.name, owner.namespace)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    raise MissingSecretError(
                        f"Secret {ref.name!r} ({ref.field}) not found in {owner.namespace}"
                    ) from None
                data[ref.name] = dict(secret.data or {})
            if ref.key not in data[ref.name]:
                raise MissingSecretError(
                    f"Secret {ref.name!r} has no key {ref.key!r} ({ref.field})"
                )
        return data

    def _ensure_jwt_secret(self, owner: Owner) -> dict[str, str]:
        """Create ``<name>-jwt`` once, never overwriting or rotating it; returns its data."""
        name = builders.jwt_secret_name(owner)
        try:
            return dict(self.kube.core.read_namespaced_secret(name, owner.namespace).data or {})
        except ApiException as exc:
            if exc.status != 404:
                raise
        manifest = builders.jwt_secret(owner, secrets.token_urlsafe(48))
        try:
            created = self.kube.core.create_namespaced_secret(owner.namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            # another pass created it first: keep that one
            created = self.kube.core.read_namespaced_secret(name, owner.namespace)
        else:
            log.info("generated JWT secret %s/%s", owner.namespace, name)
        return dict(created.data or {})

    def _announce(
        self, body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        """A Kubernetes Event when the phase or the Ready reason changes."""
        before = _ready_of(old)
        after = _ready_of(new)
        if old.get("phase") == new["phase"] and before == after:
            return
        kind = "Warning" if new["phase"] == "Degraded" else "Normal"
        message = f"phase {new['phase']}: {after[1]}"
        log.info("%s/%s %s", body["metadata"]["namespace"], body["metadata"]["name"], message)
        self.kube.post_event(body, kind, after[0] or new["phase"], message)


RETRY_FIRST_SECONDS = 5.0


def retry_delay(refusals: int, backstop: float) -> float:
    """Seconds of idleness before the next backstop pass: 5, 10, 20, ... after refused passes,
    never more than ``backstop`` (which is also the delay when nothing was refused)."""
    if refusals <= 0:
        return backstop
    return min(backstop, RETRY_FIRST_SECONDS * 2 ** min(refusals - 1, 16))


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) from ``old`` to ``new``: keys that went become null."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def _ready_of(status: Mapping[str, Any]) -> tuple[str, str]:
    for condition in status.get("conditions", []):
        if condition.get("type") == "Ready":
            return condition.get("reason", ""), condition.get("message", "")
    return "", ""
