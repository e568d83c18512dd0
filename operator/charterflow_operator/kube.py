"""The Kubernetes API as the operator uses it: a small ``Kube`` protocol, and ``ApiKube``, its
implementation on the official client. Reconcile and the rollout gate see only the protocol, so
their unit tests run on an in-memory one (tests/unit/operator/fake_kube.py).

Errors are the client's own: ``ApiException`` (a refusal, with its status), and from the dynamic
client ``ConflictError`` (create: it exists) and ``NotFoundError`` (status patch: it is gone).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from charterflow_operator import api
from charterflow_operator.instance import Manifest

log = logging.getLogger(__name__)
# A kind found missing (a CRD not installed) is looked up again after this long.
MISSING_KIND_SECONDS = 30


class Kube(Protocol):
    """What a reconcile pass asks of the API server."""

    def apply(self, manifest: Manifest, manager: str = api.FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply under the operator's field manager (forcing conflicts)."""

    def create(self, manifest: Manifest) -> dict[str, Any]:
        """Create once; raises ``ConflictError`` when it exists (Jobs are never updated)."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None: ...

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict]: ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete with dependents in the background; absent is fine."""

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        """A JSON merge patch (metadata such as ownerReferences and finalizers)."""

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's (base64) data, or None when there is no such Secret."""

    def create_secret(self, manifest: Manifest) -> dict[str, str] | None:
        """Create a Secret; its data, or None when one of that name exists already."""

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch a CharterFlow's status; raises ``NotFoundError`` when it is gone."""

    def post_event(self, about: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        """A core/v1 Event on ``about``; never raises."""

    def serves(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (a CRD that may not be installed)."""


def api_message(exc: ApiException) -> str:
    """``403 Forbidden: <the API server's Status message>``; never the request body (which
    may carry secret values) nor the response headers."""
    message = ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        message = str(json.loads(exc.body or "").get("message") or "")
    return f"{exc.status} {exc.reason}: {message}" if message else f"{exc.status} {exc.reason}"


def namespace_terminating(exc: ApiException) -> bool:
    """The refusal that every create meets in a namespace being deleted: not an RBAC gap, and
    nothing to fix; the namespace's deletion removes the CharterFlow soon."""
    return exc.status == 403 and "because it is being terminated" in api_message(exc)


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


class ApiKube:
    """``Kube`` on the official client: the dynamic client for any kind, CoreV1 for Secrets
    and Events."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.dynamic = DynamicClient(api_client)
        self.core = client.CoreV1Api(api_client)
        self._missing: dict[tuple[str, str], float] = {}  # kinds not served, since when

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def serves(self, api_version: str, kind: str) -> bool:
        """Discovery, re-read when the kind is not in its cache (so CRDs installed later are
        found) but at most every ``MISSING_KIND_SECONDS`` for a kind found missing."""
        missing_since = self._missing.get((api_version, kind))
        if missing_since is not None and time.monotonic() - missing_since < MISSING_KIND_SECONDS:
            return False
        try:
            self.resource(api_version, kind)
        except ResourceNotFoundError:
            self._missing[(api_version, kind)] = time.monotonic()
            return False
        self._missing.pop((api_version, kind), None)
        return True

    def apply(self, manifest: Manifest, manager: str = api.FIELD_MANAGER) -> dict[str, Any]:
        res = self.resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        result = self.dynamic.server_side_apply(
            res,
            body=manifest,
            name=meta["name"],
            namespace=meta["namespace"],
            field_manager=manager,
            force_conflicts=True,
        )
        return result.to_dict()

    def create(self, manifest: Manifest) -> dict[str, Any]:
        res = self.resource(manifest["apiVersion"], manifest["kind"])
        created = self.dynamic.create(
            res,
            body=manifest,
            namespace=manifest["metadata"]["namespace"],
            field_manager=api.FIELD_MANAGER,
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
        with contextlib.suppress(NotFoundError):
            self.dynamic.delete(
                self.resource(api_version, kind), name, namespace, propagation_policy="Background"
            )

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        self.dynamic.patch(
            self.resource(api_version, kind),
            body=dict(patch),
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            return dict(self.core.read_namespaced_secret(name, namespace).data or {})
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None

    def create_secret(self, manifest: Manifest) -> dict[str, str] | None:
        namespace = manifest["metadata"]["namespace"]
        try:
            return dict(self.core.create_namespaced_secret(namespace, manifest).data or {})
        except ApiException as exc:
            if exc.status != 409:
                raise
            return None

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        res = self.resource(api.API_VERSION, api.KIND)
        self.dynamic.patch(
            res.status,
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

    def post_event(self, about: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        """(What ``kubectl describe`` shows.) An Event that cannot be written (its namespace is
        being deleted, say) is logged in one line."""
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
            source=client.V1EventSource(component=api.FIELD_MANAGER),
            reporting_component=api.FIELD_MANAGER,
        )
        try:
            self.core.create_namespaced_event(meta["namespace"], event)
        except ApiException as exc:
            log.warning(
                "event %s on %s/%s not written: %s",
                reason,
                meta["namespace"],
                meta["name"],
                api_message(exc),
            )
