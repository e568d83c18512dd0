"""A per-user cap on open answer streams (conversation SSE) in this API process.

A stream holds a connection, a model request and database sessions for as long as it lasts;
without a cap one user could open hundreds. Counted per process (each replica has its own
``MAX_STREAMS_PER_USER``): the cap bounds what one process spends, which is the point.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import AsyncIterator


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def open_count(self, user_id: str) -> int:
        with self._lock:
            return self._open[user_id]

    def hold(self, user_id: str, events: AsyncIterator[str]) -> AsyncIterator[str] | None:
        """``events`` wrapped so that it holds one of ``user_id``'s slots until it ends; None
        when every slot is taken. The slot is given back however the stream ends, also if
        it is never iterated (when the wrapper is collected)."""
        with self._lock:
            if self._open[user_id] >= self.limit:
                return None
            self._open[user_id] += 1
        done = threading.Event()

        def release() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._open[user_id] -= 1
                if self._open[user_id] <= 0:
                    del self._open[user_id]

        async def held() -> AsyncIterator[str]:
            try:
                async for event in events:
                    yield event
            finally:
                release()

        wrapped = held()
        weakref.finalize(wrapped, release)
        return wrapped
