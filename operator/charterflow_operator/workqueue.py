"""A coalescing work queue of CharterFlow keys, served by a fixed set of threads, and the
backoff that decides when the backstop asks again for a key whose passes were refused.

Kopf's handlers only put ``(namespace, name)`` here and return, so Kopf drops each event's body
at once. (When every handler ran a whole pass on Kopf's thread pool, a burst of child events
queued hundreds of bodies behind the busy threads; that, not a leak, set the operator's memory
peak: bench/analysis.md.) A key already waiting is not queued twice: one pass serves all the
events that arrived before a worker took it. A key is never served by two threads at once: one
put while its pass runs is queued again when that pass ends (as client-go's work queue does).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable

Key = tuple[str, str]  # (namespace, name)
log = logging.getLogger(__name__)


class WorkQueue:
    """Keys waiting for ``work``; each is in the queue at most once, and in work at most once."""

    def __init__(self, work: Callable[[Key], None], failed: Callable[[Key], None]) -> None:
        self._work = work
        self._failed = failed
        self._queue: queue.SimpleQueue[Key] = queue.SimpleQueue()
        self._waiting: set[Key] = set()
        self._running: set[Key] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def put(self, key: Key) -> None:
        """Ask for ``work(key)``; returns at once."""
        with self._lock:
            if key in self._waiting:
                return
            self._waiting.add(key)
            if key in self._running:
                return  # queued when the running pass ends
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
                self._running.add(key)
            try:
                self._work(key)
            except Exception:  # a bug or an unreachable API server: logged, retried later
                log.exception("reconcile of %s/%s failed", *key)
                self._failed(key)
            finally:
                with self._lock:
                    self._running.discard(key)
                    again = key in self._waiting
                if again:
                    self._queue.put(key)


RETRY_FIRST_SECONDS = 5.0


def retry_delay(refusals: int, backstop: float) -> float:
    """Seconds of idleness before the next backstop pass: 5, 10, 20, ... after refused passes,
    never more than ``backstop`` (which is also the delay when nothing was refused)."""
    if refusals <= 0:
        return backstop
    return min(backstop, RETRY_FIRST_SECONDS * 2 ** min(refusals - 1, 16))


class Backoff:
    """When each key last had a pass, and how many passes in a row were refused (or raised)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_pass: dict[Key, float] = {}
        self._refusals: dict[Key, int] = {}

    def passed(self, key: Key) -> None:
        """A pass of ``key`` ended (however it ended)."""
        self._last_pass[key] = self._clock()

    def refused(self, key: Key) -> None:
        self._refusals[key] = self._refusals.get(key, 0) + 1

    def accepted(self, key: Key) -> None:
        self._refusals.pop(key, None)

    def forget(self, key: Key) -> None:
        self._refusals.pop(key, None)

    def due(self, key: Key, backstop: float) -> bool:
        """Whether the backstop should reconcile ``key`` now: idle for ``backstop`` seconds, or
        sooner (with backoff) while its passes are refused, since a refusal (a quota, an
        admission webhook) often goes away with no event to us."""
        ended = self._last_pass.get(key)
        idle = math.inf if ended is None else self._clock() - ended
        return idle >= retry_delay(self._refusals.get(key, 0), backstop)
