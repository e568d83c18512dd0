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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from charterflow.logging import get_logger

if TYPE_CHECKING:
    import redis

log = get_logger("charterflow.ratelimit")
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until a request would be allowed; 0 when allowed


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict: ...


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


# Atomic read-decide-count in Redis: KEYS = previous, current window; ARGV = limit, elapsed,
# ttl. Returns {allowed (0/1), previous, current before this hit}.
_HIT_SCRIPT = """
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit, elapsed = tonumber(ARGV[1]), tonumber(ARGV[2])
if previous * (1 - elapsed) + current + 1 <= limit then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
  return {1, previous, current}
end
return {0, previous, current}
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

    def hit(self, key: str, limit: int, window: int = WINDOW_SECONDS) -> Verdict:
        import redis

        index, elapsed = _now(window)
        names = [f"{self.prefix}{key}:{index - 1}", f"{self.prefix}{key}:{index}"]
        try:
            allowed, previous, current = self._script(
                keys=names, args=[limit, repr(elapsed), 2 * window + 1]
            )
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable; allowing", error=type(exc).__name__)
            return Verdict(True, 0)
        if allowed:
            return Verdict(True, 0)
        return Verdict(False, retry_after(int(previous), int(current), elapsed, limit, window))


def make_rate_limiter(client: redis.Redis | None) -> RateLimiter:
    return RedisRateLimiter(client) if client is not None else MemoryRateLimiter()
