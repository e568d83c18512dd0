"""An in-memory ``Kube`` (charterflow_operator.kube): objects by (apiVersion, kind, namespace,
name), label-selector lists, refusals on demand, Events recorded. No controllers run: a test
plays the Job and Deployment controllers itself (``finish_job``, ``roll_out``).

It raises what the real client raises (``ApiException``, ``ConflictError``, ``NotFoundError``),
so reconcile's error paths run unchanged.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

Ref = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)
T = "2026-01-01T00:00:00Z"


def _error(status: int, reason: str, message: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "message": message}) if message else None
    return exc


def _apply_merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge of ``patch`` into ``target`` (null deletes)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _apply_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeKube:
    """The operator's view of the API server, in a dict."""

    def __init__(self) -> None:
        self.objects: dict[Ref, dict[str, Any]] = {}
        self.events: list[tuple[str, str, str]] = []  # (type, reason, message)
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.refusals: dict[str, ApiException] = {}  # kind -> what apply/create of it raises
        self.handoffs: list[tuple[str, str, str]] = []  # (manager, kind, name) of other applies
        self._uids = itertools.count(1)
        self.served: set[str] = set()  # optional kinds (CRDs) the fake API server serves

    # --- test setup ------------------------------------------------------------------------

    def add(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as the API server would (uid, generation), without a write record."""
        body = copy.deepcopy(dict(manifest))
        if body.get("kind") == "Secret" and "stringData" in body:  # as the API server stores it
            plain = body.pop("stringData")
            encoded = {k: base64.b64encode(v.encode()).decode() for k, v in plain.items()}
            body["data"] = {**(body.get("data") or {}), **encoded}
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        self.objects[self._ref(body)] = body
        return copy.deepcopy(body)

    def refuse(self, kind: str, message: str) -> None:
        """From now on, writes of ``kind`` are refused with 403 and ``message``."""
        self.refusals[kind] = _error(403, "Forbidden", message)

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        for (_, k, ns, n), body in self.objects.items():
            if (k, ns, n) == (kind, namespace, name):
                return body
        return None

    def kinds(self, namespace: str) -> list[str]:
        """``Kind/name`` of every object in ``namespace``, sorted."""
        return sorted(f"{k}/{n}" for (_, k, ns, n) in self.objects if ns == namespace)

    def finish_job(self, namespace: str, name: str, *, failed: bool = False) -> None:
        """Play the Job controller: the Job completed, or failed (BackoffLimitExceeded)."""
        job = self.find("Job", namespace, name)
        assert job is not None, f"no Job {namespace}/{name}"
        condition = {"type": "Complete", "status": "True", "lastTransitionTime": T}
        if failed:
            condition = {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastTransitionTime": T,
            }
        job["status"] = {"conditions": [condition]}
        if not failed:
            job["status"]["completionTime"] = T

    def roll_out(self, namespace: str) -> None:
        """Play the Deployment controller: every Deployment's pods are updated and ready."""
        for (_, kind, ns, _), body in self.objects.items():
            if kind == "Deployment" and ns == namespace:
                replicas = body["spec"].get("replicas", 1)
                body["status"] = {
                    "observedGeneration": body["metadata"]["generation"],
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": replicas,
                    "conditions": [{"type": "Available", "status": "True"}],
                }

    # --- the Kube protocol -------------------------------------------------------------------

    @staticmethod
    def _ref(body: Mapping[str, Any]) -> Ref:
        meta = body["metadata"]
        return (body["apiVersion"], body["kind"], meta.get("namespace", ""), meta["name"])

    def _check(self, kind: str) -> None:
        if kind in self.refusals:
            raise self.refusals[kind]

    def apply(
        self, manifest: Mapping[str, Any], manager: str = "charterflow-operator"
    ) -> dict[str, Any]:
        """Apply; the fake keeps no managed fields, so another ``manager``'s apply is only
        recorded (``handoffs``), not merged."""
        self._check(manifest["kind"])
        ref = self._ref(manifest)
        if manager != "charterflow-operator":  # sets what it applies, owns nothing
            self.handoffs.append((manager, manifest["kind"], manifest["metadata"]["name"]))
            return copy.deepcopy(_apply_merge(self.objects[ref], manifest))
        self.writes.append(("apply", manifest["kind"], manifest["metadata"]["name"]))
        old = self.objects.get(ref)
        body = copy.deepcopy(dict(manifest))
        if old is None:
            return self.add(body)
        body["metadata"] = {**old["metadata"], **body["metadata"]}
        body["metadata"].pop("managedFields", None)  # not tracked: a test sets them to look
        if body.get("spec") != old.get("spec"):
            body["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if "status" in old:
            body["status"] = old["status"]
        self.objects[ref] = body
        return copy.deepcopy(body)

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self._check(manifest["kind"])
        if self._ref(manifest) in self.objects:
            raise ConflictError(_error(409, "Conflict"))
        self.writes.append(("create", manifest["kind"], manifest["metadata"]["name"]))
        return self.add(manifest)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
        return [
            copy.deepcopy(body)
            for (v, k, ns, _), body in self.objects.items()
            if (v, k, ns) == (api_version, kind, namespace)
            and wanted.items() <= (body["metadata"].get("labels") or {}).items()
        ]

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        if self.objects.pop((api_version, kind, namespace, name), None) is not None:
            self.writes.append(("delete", kind, name))

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        body = self.objects.get((api_version, kind, namespace, name))
        if body is None:
            raise NotFoundError(_error(404, "Not Found"))
        self.writes.append(("patch", kind, name))
        _apply_merge(body, patch)

    def serves(self, api_version: str, kind: str) -> bool:
        return kind in self.served

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.find("Secret", namespace, name)
        if found is None:
            return None
        return dict(found.get("data") or {})

    def create_secret(self, manifest: Mapping[str, Any]) -> dict[str, str] | None:
        try:
            self.create({"apiVersion": "v1", **manifest})
        except ConflictError:
            return None
        return self.read_secret(manifest["metadata"]["namespace"], manifest["metadata"]["name"])

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        body = self.find("CharterFlow", namespace, name)
        if body is None:
            raise NotFoundError(_error(404, "Not Found"))
        self.writes.append(("status", "CharterFlow", name))
        body["status"] = _apply_merge(body.get("status") or {}, status)

    def post_event(self, about: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))
