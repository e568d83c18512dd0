"""Kopf wiring: which events trigger a reconcile, and the operator settings chosen on purpose.

Every trigger (create, update, resume, a child's change, a referenced Secret's change, the
backstop loop) puts the CharterFlow's key on the reconciler's work queue and returns; the
queue's threads run the same idempotent ``Reconciler.reconcile``. Kopf only decides *when*.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kubernetes import client, config

from charterflow_operator import api, metrics, namespaces
from charterflow_operator.config import OperatorConfig
from charterflow_operator.deletion import waits_for_backup
from charterflow_operator.instance import referenced_secret_names
from charterflow_operator.kube import ApiKube
from charterflow_operator.leadership import IDENTITY, Leadership
from charterflow_operator.reconcile import Reconciler

GROUP_VERSION = api.API_VERSION
PLURAL = api.PLURAL
CHILD_LABELS = {api.MANAGED_BY_LABEL: api.MANAGED_BY}
# The backstop loop wakes this often to see which CharterFlows are due (config.resync_seconds).
BACKSTOP_TICK_SECONDS = 1.0


def _kube_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Kopf settings: our own annotation prefix, no finalizer, watches that cannot stall.

    Runs first (startup handlers run in registration order): the others use the reconciler.
    """
    chosen = OperatorConfig.from_env()
    memo.config = chosen
    prefix = api.GROUP
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    # No deletion handlers, so Kopf adds no finalizer: children go by garbage collection.
    settings.persistence.finalizer = f"{prefix}/finalizer"
    # A watch the server keeps open longer than this (or a silent TCP peer) is restarted.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Only warnings from Kopf itself become Events; our transitions are posted explicitly.
    settings.posting.level = logging.WARNING
    # A standby takes over from a leader that stopped renewing its peering claim this long ago.
    settings.peering.lifetime = chosen.peering_lifetime
    memo.api_client = _kube_client()
    kube = ApiKube(memo.api_client)
    peering = None if chosen.standalone else chosen.peering
    leadership = Leadership(
        kube, IDENTITY, chosen.priority, peering, clusterwide=not chosen.watch_namespaces
    )
    memo.reconciler = Reconciler(kube, leadership=leadership)
    memo.reconciler.queue.start(chosen.workers)
    metrics.serve(chosen.metrics_port)


@kopf.on.resume(GROUP_VERSION, PLURAL)
@kopf.on.create(GROUP_VERSION, PLURAL)
@kopf.on.update(GROUP_VERSION, PLURAL)
async def reconcile(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """The CharterFlow itself changed (or the operator started): converge it."""
    memo.reconciler.enqueue(namespace, name)


@kopf.index(GROUP_VERSION, PLURAL)
def instances(namespace: str, name: str, **_: Any) -> dict:
    """Every CharterFlow the operator watches, for the backstop."""
    return {(namespace, name): True}


async def _backstop(memo: kopf.Memo, known: kopf.Index) -> None:
    """Reconcile each CharterFlow that had no pass for a minute: a missed watch event cannot
    leave drift behind; one whose children were refused is retried sooner, with backoff.
    Not a Kopf timer, because Kopf timers put a finalizer on the object."""
    backstop = memo.config.resync_seconds
    while True:
        await asyncio.sleep(min(BACKSTOP_TICK_SECONDS, backstop))
        for namespace, name in list(known):
            if not memo.reconciler.pass_due(namespace, name, backstop):
                continue
            # A GET of the peering object (when not cached): on a thread, never on the loop
            # that runs every Kopf watch.
            if not await asyncio.to_thread(memo.reconciler.leadership.leads, namespace):
                continue  # Kopf paused its watches for a peer; our loop pauses too
            memo.reconciler.enqueue(namespace, name)


@kopf.on.startup()
async def start_backstop(memo: kopf.Memo, instances: kopf.Index, **_: Any) -> None:
    memo.backstop = asyncio.create_task(_backstop(memo, instances))


@kopf.on.startup()
async def start_namespace_resync(memo: kopf.Memo, **_: Any) -> None:
    """With ``WATCH_NAMESPACES``, correct the namespaces Kopf serves (namespaces.py: Kopf can
    miss a namespace made while it lists them). ``memo.insights`` is the set given to Kopf."""
    insights = getattr(memo, "insights", None)
    if insights is None or not memo.config.watch_namespaces:
        return
    memo.namespace_resync = asyncio.create_task(
        namespaces.resync(
            insights, memo.config.watch_namespaces, namespaces.lister(memo.api_client)
        )
    )


@kopf.on.cleanup()
async def stop_backstop(memo: kopf.Memo, **_: Any) -> None:
    for task in (getattr(memo, "backstop", None), getattr(memo, "namespace_resync", None)):
        if task is not None:
            task.cancel()


def _controller(body: kopf.Body) -> str | None:
    """The CharterFlow a child belongs to: its controller, else (a backup Job, which the
    CronJob controls) the instance label that every child carries."""
    metadata = body.get("metadata", {})
    for ref in metadata.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("apiVersion", "").startswith(api.GROUP + "/"):
            return ref.get("name")
    return (metadata.get("labels") or {}).get(api.INSTANCE_LABEL)


async def child_changed(
    type: str | None, body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any
) -> None:
    """A child changed or vanished: reconcile its owner (undoes drift, refreshes status)."""
    if type is None:
        return  # the initial listing; resume handlers cover it
    owner = _controller(body)
    if owner:
        memo.reconciler.enqueue(namespace, owner)


for _kind in api.CHILD_KINDS:
    kopf.on.event(_kind.api_version, _kind.plural, labels=CHILD_LABELS, id=f"child-{_kind.plural}")(
        child_changed
    )


def _backup_requested(body: kopf.Body, **_: Any) -> bool:
    token = body.get("metadata", {}).get("annotations", {}).get(api.BACKUP_NOW_ANNOTATION)
    handled = (body.get("status") or {}).get("backupRequest") or {}
    return bool(token) and token != handled.get("token")


@kopf.on.event(GROUP_VERSION, PLURAL, when=_backup_requested)
async def backup_now(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A new backup-now token. Not an update handler: Kopf leaves annotations under its own
    prefix (ours, ``charterflow.app/``) out of the diff, so their changes fire no update."""
    memo.reconciler.enqueue(namespace, name)


def _deletion_waits(body: kopf.Body, **_: Any) -> bool:
    return waits_for_backup(body)


@kopf.on.event(GROUP_VERSION, PLURAL, when=_deletion_waits)
async def deletion_waits(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A deletion waits for our final backup (deletionPolicy Snapshot): start it now. Kopf
    runs no update handler for an object being deleted."""
    memo.reconciler.enqueue(namespace, name)


@kopf.index(GROUP_VERSION, PLURAL)
def secret_users(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict:
    """(namespace, Secret name) -> CharterFlows that read that Secret."""
    return {(namespace, secret): name for secret in referenced_secret_names(name, spec)}


@kopf.on.event(api.SECRET.api_version, api.SECRET.plural)
async def secret_changed(
    type: str | None,
    namespace: str,
    name: str,
    secret_users: kopf.Index,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A referenced Secret appeared or changed: continue (MissingSecret) or roll the pods."""
    if type is None:
        return
    for owner in secret_users.get((namespace, name), []):
        memo.reconciler.enqueue(namespace, owner)
