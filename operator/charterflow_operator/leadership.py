"""Whether this replica leads, as Kopf's peering decides it, for the work Kopf does not run.

Kopf pauses its own watches when a peer with a higher priority (or the same one) is alive in the
peering object, but the backstop loop and the work queue's threads are ours: a replica demoted
while it ran (a higher-priority peer started after it) would keep reconciling beside the new
leader. Each pass therefore asks ``Leadership.leads`` first, which reads the same peering object
and applies Kopf's rule (cached for a second: a pass per CharterFlow must not cost a GET).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from charterflow_operator.kube import Kube

PEERING_API = "kopf.dev/v1"
CACHE_SECONDS = 1.0


def own_identity() -> str:
    """This process's name among the peers (given to Kopf too, so both speak of the same one)."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


IDENTITY = own_identity()


def _parse(when: str) -> dt.datetime:
    return dt.datetime.fromisoformat(when.replace("Z", "+00:00"))


def leads_in(
    peers: Mapping[str, Mapping[str, Any]], identity: str, priority: int, now: dt.datetime
) -> bool:
    """Kopf's rule over a peering object's ``status``: we lead unless another live peer has a
    higher priority or the same one (Kopf pauses every peer of a tie)."""
    for other, info in peers.items():
        if other == identity or not isinstance(info, Mapping):
            continue
        seen = info.get("lastseen")
        lifetime = dt.timedelta(seconds=int(info.get("lifetime", 60)))
        alive = seen is None or _parse(str(seen)) + lifetime > now
        if alive and int(info.get("priority", 0)) >= priority:
            return False
    return True


class Leadership:
    """``leads(namespace)``: always true standalone; with a peering object, Kopf's verdict."""

    def __init__(
        self,
        kube: Kube | None,
        identity: str,
        priority: int,
        peering: str | None,
        clusterwide: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.identity = identity
        self.priority = priority
        self.peering = peering
        self.clusterwide = clusterwide
        self._clock = clock
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    @classmethod
    def standalone(cls) -> Leadership:
        return cls(None, "", 0, None, True)

    def leads(self, namespace: str) -> bool:
        if self.kube is None or not self.peering:
            return True
        where = "" if self.clusterwide else namespace
        now = self._clock()
        with self._lock:
            cached = self._cache.get(where)
            if cached and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        kind = "ClusterKopfPeering" if self.clusterwide else "KopfPeering"
        body = self.kube.get(PEERING_API, kind, where, self.peering)
        peers = (body or {}).get("status") or {}
        verdict = leads_in(peers, self.identity, self.priority, dt.datetime.now(dt.UTC))
        with self._lock:
            self._cache[where] = (now, verdict)
        return verdict
