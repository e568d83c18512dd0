"""Sliding-window request limits: in Redis when configured (shared by every replica), else
in this process.

A fixed one-minute window lets a client send twice its limit across a window boundary, and
makes a limit's effect depend on where in the minute requests fall. Here the count is the
current window's hits plus the previous window's, weighted by how much of it still lies
within the last ``window`` seconds (the sliding-window counter): two integers per key, no
boundary burst. Refused requests are not counted, so ``Retry-After`` is exact: the time
until one more request fits, if nothing else arrives.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from charterflow.logging import get_logger

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    from redis.commands.core import AsyncScript

log = get_logger("charterflow.ratelimit")
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until a request would be allowed; 0 when allowed
    #: The value of ``ahit_all``'s ``epoch_key`` read in the same call (Redis only), if allowed.
    epoch: int | None = None


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict: ...

    async def ahit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        """``hit`` from the event loop (no worker thread needed to wait for Redis)."""
        ...

    async def ahit_all(
        self,
        hits: Sequence[tuple[str, int]],
        window: int = WINDOW_SECONDS,
        epoch_key: str | None = None,
    ) -> Verdict:
        """``(key, limit)`` pairs counted in order in one step (one Redis round trip); the
        first that refuses stops the count and is the verdict. ``epoch_key``: a counter read
        in the same step (``Verdict.epoch``; None where there is no Redis)."""
        ...


def weighted_count(previous: int, current: int, elapsed: float) -> float:
    """The requests seen in the last window: ``elapsed`` is the fraction (0 to 1) of the
    current window that has passed, so ``1 - elapsed`` of the previous one still counts."""
    return previous * (1.0 - elapsed) + current


def retry_after(previous: int, current: int, elapsed: float, limit: int, window: int) -> int:
    """Seconds until one more request fits under ``limit``, if no other request arrives."""
    if current + 1 <= limit and previous > 0:
        # Later in this window the previous window's share has decayed enough.
        fits_at = 1.0 - (limit - current - 1) / previous
        if fits_at < 1.0:
            return _whole_seconds((fits_at - elapsed) * window)
    # In the next window this window's hits become the decaying "previous".
    fits_at = 1.0 - (limit - 1) / current if current else 0.0
    return _whole_seconds((1.0 - elapsed + max(0.0, fits_at)) * window)


def _whole_seconds(seconds: float) -> int:
    """Rounded up (ignoring float noise such as 20.000000000000004), at least 1."""
    return max(1, math.ceil(seconds - 1e-9))


def _now(window: int) -> tuple[int, float]:
    """The current window's index and the fraction of it that has passed."""
    index, offset = divmod(time.time(), window)
    return int(index), offset / window


def _decide(previous: int, current: int, elapsed: float, limit: int, window: int) -> Verdict:
    if weighted_count(previous, current + 1, elapsed) <= limit:
        return Verdict(True, 0)
    return Verdict(False, retry_after(previous, current, elapsed, limit, window))


class MemoryRateLimiter:
    """Per-process counters, for a single development process."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        index, elapsed = _now(window)
        with self._lock:
            if len(self._counts) > 10_000:  # drop windows that no longer count
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= index - 1}
            previous = self._counts.get((key, index - 1), 0)
            current = self._counts.get((key, index), 0)
            verdict = _decide(previous, current, elapsed, limit, window)
            if verdict.allowed:
                self._counts[(key, index)] = current + 1
        return verdict

    async def ahit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        return self.hit(key, limit, window)  # a dict update: no I/O to wait for

    async def ahit_all(
        self,
        hits: Sequence[tuple[str, int]],
        window: int = WINDOW_SECONDS,
        epoch_key: str | None = None,
    ) -> Verdict:
        return _hit_all(self, hits, window)


# Atomic read-decide-count in Redis for one or more limits, in order: KEYS = previous, current
# window of each, then optionally one more key, a counter read when all are allowed; ARGV =
# elapsed, ttl, then each limit. The first limit that refuses stops the count (the ones before
# it were counted, as separate calls would have). Returns {0, 0, 0, that counter (0 if absent)}
# when all allowed, else {its position (from 1), its previous, its current count}.
_HIT_SCRIPT = """
local elapsed, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local limits = math.floor(#KEYS / 2)
for i = 1, limits do
  local previous = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local current = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if previous * (1 - elapsed) + current + 1 <= tonumber(ARGV[i + 2]) then
    redis.call('INCR', KEYS[2 * i])
    redis.call('EXPIRE', KEYS[2 * i], ttl)
  else
    return {i, previous, current}
  end
end
local counter = 0
if #KEYS > 2 * limits then
  counter = tonumber(redis.call('GET', KEYS[#KEYS]) or '0')
end
return {0, 0, 0, counter}
"""


class RedisRateLimiter:
    """One counter per key and window in Redis, read and bumped atomically by a script, so
    that all replicas share the counts.

    If Redis cannot be reached the request is let through (and logged): rate limiting must
    not turn a Redis outage into an API outage.
    """

    def __init__(self, client: redis.Redis, prefix: str = "charterflow:rl:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_HIT_SCRIPT)
        self._async_script: AsyncScript | None = None

    def attach_async(self, client: redis.asyncio.Redis | None) -> None:
        """Let ``ahit`` wait for Redis on the event loop with ``client`` (a ``redis.asyncio``
        client of the serving loop); None: ``ahit`` uses a worker thread again."""
        self._async_script = client.register_script(_HIT_SCRIPT) if client else None

    def _call(
        self, hits: Sequence[tuple[str, int]], window: int, epoch_key: str | None = None
    ) -> tuple[list[str], list[str]]:
        index, elapsed = _now(window)
        keys = [f"{self.prefix}{key}:{i}" for key, _ in hits for i in (index - 1, index)]
        keys += [epoch_key] if epoch_key else []
        return keys, [repr(elapsed), str(2 * window + 1), *(str(limit) for _, limit in hits)]

    def bump(self, key: str) -> None:
        """Increment the counter ``key`` (one that ``ahit_all`` reads as ``epoch_key``); a
        Redis failure is logged, not raised."""
        import redis

        try:
            self.client.incr(key)
        except redis.RedisError as exc:
            log.warning("could not bump a counter in Redis", key=key, error=type(exc).__name__)

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        import redis

        keys, args = self._call([(key, limit)], window)
        try:
            answer = self._script(keys=keys, args=args)
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable; allowing", error=type(exc).__name__)
            return Verdict(True, 0)
        return _verdict(answer, [(key, limit)], float(args[0]), window)

    async def ahit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        return await self.ahit_all([(key, limit)], window)

    async def ahit_all(
        self,
        hits: Sequence[tuple[str, int]],
        window: int = WINDOW_SECONDS,
        epoch_key: str | None = None,
    ) -> Verdict:
        import redis

        script = self._async_script
        if script is None:
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(_hit_all, self, hits, window)
        keys, args = self._call(hits, window, epoch_key)
        try:
            answer = await script(keys=keys, args=args)
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable; allowing", error=type(exc).__name__)
            return Verdict(True, 0)
        return _verdict(answer, hits, float(args[0]), window)


def _hit_all(limiter: RateLimiter, hits: Sequence[tuple[str, int]], window: int) -> Verdict:
    """Each limit in turn, stopping at the first that refuses."""
    for key, limit in hits:
        verdict = limiter.hit(key, limit, window)
        if not verdict.allowed:
            return verdict
    return Verdict(True, 0)


def _verdict(
    answer: Sequence[int], hits: Sequence[tuple[str, int]], elapsed: float, window: int
) -> Verdict:
    """The script's answer as a verdict (``Retry-After`` computed here, from its counts)."""
    refused, previous, current = (int(x) for x in answer[:3])
    if not refused:
        return Verdict(True, 0, int(answer[3]))
    limit = hits[refused - 1][1]
    return Verdict(False, retry_after(previous, current, elapsed, limit, window))


def make_rate_limiter(client: redis.Redis | None) -> RateLimiter:
    return RedisRateLimiter(client) if client is not None else MemoryRateLimiter()
