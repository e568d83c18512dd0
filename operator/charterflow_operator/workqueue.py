"""A coalescing work queue of CharterFlow keys, served by a fixed set of threads.

Kopf's handlers only put ``(namespace, name)`` here and return, so Kopf drops each event's body
at once. (When every handler ran a whole pass on Kopf's thread pool, a burst of child events
queued hundreds of bodies behind the busy threads; that, not a leak, set the operator's memory
peak: bench/analysis.md.) A key already waiting is not queued twice: one pass serves all the
events that arrived before a worker took it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

Key = tuple[str, str]  # (namespace, name)
log = logging.getLogger(__name__)


class WorkQueue:
    """Keys waiting for ``work``; each is in the queue at most once."""

    def __init__(self, work: Callable[[Key], None], failed: Callable[[Key], None]) -> None:
        self._work = work
        self._failed = failed
        self._queue: queue.SimpleQueue[Key] = queue.SimpleQueue()
        self._waiting: set[Key] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def put(self, key: Key) -> None:
        """Ask for ``work(key)``; returns at once."""
        with self._lock:
            if key in self._waiting:
                return
            self._waiting.add(key)
        self._queue.put(key)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def start(self, workers: int) -> None:
        """Start ``workers`` daemon threads (they end with the process)."""
        for number in range(workers):
            thread = threading.Thread(target=self._serve, name=f"reconcile-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            key = self._queue.get()
            with self._lock:
                self._waiting.discard(key)  # an event from now on needs another pass
            try:
                self._work(key)
            except Exception:  # a bug or an unreachable API server: logged, retried later
                log.exception("reconcile of %s/%s failed", *key)
                self._failed(key)
