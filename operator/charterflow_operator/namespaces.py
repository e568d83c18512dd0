"""The namespaces Kopf serves when ``WATCH_NAMESPACES`` names some (globs allowed), kept right
by a periodic re-listing, because Kopf alone can miss a namespace for good.

Kopf (1.45, ``kopf/_core/reactor/observation.py``) fills its set of served namespaces
(``Insights.namespaces``) from one LIST (``namespace_observer``, lines 49-60), then starts a
watch whose stream *lists again* before watching (``watching.continuous_watch``, lines 171-187)
and hands that second listing to ``process_discovered_namespace_event``, which drops every
listed object (lines 156-157: ``if raw_event['type'] is None: return``). A namespace created
between the two LISTs (or during any later re-list, after a 410) therefore never reaches the
set: Kopf starts no watch in it, and its CharterFlow gets no pass until the namespace itself is
modified. The e2e tier met this as a CharterFlow with no status for minutes: its namespace was
made right after a new operator answered its health check, while Kopf was between the LISTs.

``resync`` lists the namespaces every ``RESYNC_SECONDS`` and applies Kopf's own rule
(``revise_namespaces``) to the set, plus removes the ones gone; then Kopf's orchestrator starts or
stops the per-namespace watches as it does for its own changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from kopf._cogs.structs.references import Insights
from kopf._core.reactor.observation import revise_namespaces
from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
# How soon a namespace that Kopf missed is served; also one namespace LIST per period.
RESYNC_SECONDS = 5.0
LIST_TIMEOUT_SECONDS = 30

Lister = Callable[[], list[Mapping[str, Any]]]


def lister(api_client: client.ApiClient) -> Lister:
    """Every namespace as the API server writes it (camelCase keys, as Kopf reads them)."""
    core = client.CoreV1Api(api_client)

    def namespaces() -> list[Mapping[str, Any]]:
        response = core.list_namespace(
            _preload_content=False, _request_timeout=LIST_TIMEOUT_SECONDS
        )
        return list(json.loads(response.data)["items"])

    return namespaces


def revised(
    served: Collection[str | None], patterns: Iterable[str], listed: list[Mapping[str, Any]]
) -> set[str | None]:
    """The namespaces to serve, by Kopf's rule, given the listing: matching ones are added,
    deleted ones (and ones no longer listed) removed, terminating ones with content left kept
    as they are."""
    insights = Insights()
    insights.namespaces.update(served)
    revise_namespaces(insights=insights, namespaces=list(patterns), raw_bodies=listed)
    names = {body["metadata"]["name"] for body in listed}
    return {ns for ns in insights.namespaces if ns is None or ns in names}


async def resync_once(insights: Insights, patterns: Iterable[str], namespaces: Lister) -> bool:
    """List the namespaces and correct Kopf's set; True when it changed. The listing is read
    and applied while holding Kopf's lock on the set, so no watch event is applied between the
    two (the events Kopf applies afterwards are the same age or newer than the listing)."""
    async with insights.revised:
        listed = await asyncio.to_thread(namespaces)
        before = set(insights.namespaces)
        after = revised(before, patterns, listed)
        if after == before:
            return False
        insights.namespaces.clear()
        insights.namespaces.update(after)
        log.info(
            "namespaces Kopf had not noticed: serving %s, no longer %s",
            sorted(str(ns) for ns in after - before) or "-",
            sorted(str(ns) for ns in before - after) or "-",
        )
        insights.revised.notify_all()
        return True


async def resync(
    insights: Insights,
    patterns: Iterable[str],
    namespaces: Lister,
    period: float = RESYNC_SECONDS,
) -> None:
    """``resync_once`` every ``period`` seconds, once Kopf has made its first listing; ends if
    the namespaces may not be listed (Kopf then serves the exact names it was given)."""
    await insights.ready_namespaces.wait()
    while True:
        await asyncio.sleep(period)
        try:
            await resync_once(insights, patterns, namespaces)
        except ApiException as exc:
            if exc.status in (401, 403):
                log.warning("namespaces may not be listed (%s): no namespace resync", exc.status)
                return
            log.warning("namespace resync failed: %s %s", exc.status, exc.reason)
        except Exception:  # the API server is unreachable for now: the next period retries
            log.warning("namespace resync failed", exc_info=True)
