"""Fixed-window request counters: in Redis when configured (shared by every replica), else
in this process.

Each ``hit`` counts one request against ``key`` in the current window and says whether it
is allowed and, if not, how many seconds until the window resets (the ``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from charterflow.logging import get_logger

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = get_logger("charterflow.ratelimit")
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window resets; 0 when allowed


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict: ...

    async def ahit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        """``hit`` from the event loop (no worker thread needed to wait for Redis)."""
        ...


def _window(window: int) -> tuple[int, int]:
    """The current window's index and the whole seconds left in it (at least 1)."""
    now = time.time()
    index = int(now // window)
    return index, max(1, math.ceil((index + 1) * window - now))


class MemoryRateLimiter:
    """Per-process counters, for a single development process."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        index, left = _window(window)
        with self._lock:
            if len(self._counts) > 10_000:  # drop finished windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= index}
            count = self._counts.get((key, index), 0) + 1
            self._counts[(key, index)] = count
        return Verdict(True, 0) if count <= limit else Verdict(False, left)

    async def ahit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        return self.hit(key, limit, window)  # a dict update: no I/O to wait for


class RedisRateLimiter:
    """INCR + EXPIRE on one key per window, so that all replicas share the counts.

    If Redis cannot be reached the request is let through (and logged): rate limiting must
    not turn a Redis outage into an API outage.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "charterflow:rl:",
        async_client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.prefix = prefix

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        import redis

        index, left = _window(window)
        name = f"{self.prefix}{key}:{index}"
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable; allowing", error=type(exc).__name__)
            return Verdict(True, 0)
        return Verdict(True, 0) if count <= limit else Verdict(False, left)

    async def ahit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        import redis

        if self.async_client is None:
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(self.hit, key, limit, window)
        index, left = _window(window)
        name = f"{self.prefix}{key}:{index}"
        try:
            async with self.async_client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window + 1)
                count = int((await pipe.execute())[0])
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable; allowing", error=type(exc).__name__)
            return Verdict(True, 0)
        return Verdict(True, 0) if count <= limit else Verdict(False, left)


def make_rate_limiter(
    client: redis.Redis | None, async_client: redis.asyncio.Redis | None = None
) -> RateLimiter:
    if client is None:
        return MemoryRateLimiter()
    return RedisRateLimiter(client, async_client=async_client)
