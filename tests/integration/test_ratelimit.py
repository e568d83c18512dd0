"""Sliding-window limits, in memory and in a real Redis, at fixed instants (the clock is the
only thing replaced: the counting, the script and Redis are real)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from charterflow import ratelimit
from charterflow.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, retry_after

from tests.support.aio import run_coroutine

WINDOW = 60
START = 1_800_000_000 - 1_800_000_000 % WINDOW  # the beginning of a window


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisRateLimiter(client)
    client.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [float(START)]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    return now


def hits(limiter: RateLimiter, n: int, limit: int = 3) -> list[bool]:
    return [limiter.hit("k", limit, WINDOW).allowed for _ in range(n)]


def test_a_window_boundary_gives_no_second_burst(limiter: RateLimiter, clock: list[float]) -> None:
    """Three hits just before a boundary, then more just after: a fixed window would allow
    three more at once; the sliding window still counts the first three."""
    clock[0] = START + WINDOW - 0.2
    assert hits(limiter, 3) == [True, True, True]
    clock[0] = START + WINDOW + 0.2
    verdict = limiter.hit("k", 3, WINDOW)
    assert not verdict.allowed
    # The earliest moment one more fits: when two thirds of the old hits have slid out.
    assert verdict.retry_after == retry_after(3, 0, 0.2 / WINDOW, 3, WINDOW) == 20
    clock[0] = START + WINDOW + 20.3
    assert hits(limiter, 2) == [True, False]


def test_refused_requests_do_not_extend_the_wait(limiter: RateLimiter, clock: list[float]) -> None:
    assert hits(limiter, 5) == [True, True, True, False, False]
    clock[0] = START + 30
    assert hits(limiter, 50) == [False] * 50
    clock[0] = START + WINDOW  # this window's 3 hits now weigh 3 * (1 - 0)
    assert not limiter.hit("k", 3, WINDOW).allowed
    clock[0] = START + WINDOW + WINDOW / 3 + 0.1  # 3 * 2/3 = 2 counted: one more fits
    assert hits(limiter, 2) == [True, False]


def test_keys_are_counted_apart(limiter: RateLimiter, clock: list[float]) -> None:
    assert hits(limiter, 4) == [True, True, True, False]
    assert limiter.hit("other", 3, WINDOW).allowed


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "limit", "expected"),
    [
        (3, 0, 0.0, 3, 20),  # wait for a third of the old window to slide out
        (0, 3, 0.5, 3, 50),  # full now: next window, once a third of this one's hits aged
        (0, 1, 0.5, 1, 90),  # limit 1: the hit weighs until the next window has passed
        (4, 3, 0.9, 3, 26),  # this window is full: a third into the next one
    ],
)
def test_retry_after_is_the_first_instant_that_fits(
    previous: int, current: int, elapsed: float, limit: int, expected: int
) -> None:
    assert retry_after(previous, current, elapsed, limit, WINDOW) == expected


def test_the_event_loop_path_shares_the_counts_of_the_thread_path(
    redis_url: str, clock: list[float]
) -> None:
    """``ahit`` (the per-address limit, on the event loop with redis.asyncio) and ``hit``
    (the per-user limit, on a worker thread) count in the same Redis keys by the same script."""

    import redis
    import redis.asyncio

    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, prefix=f"rl-async-{START}:")

    async def run() -> list[bool]:
        async_client = redis.asyncio.Redis.from_url(redis_url)
        limiter.attach_async(async_client)
        try:
            return [(await limiter.ahit("k", 3, WINDOW)).allowed for _ in range(2)]
        finally:
            limiter.attach_async(None)
            await async_client.aclose()

    try:
        assert run_coroutine(run()) == [True, True]
        assert [limiter.hit("k", 3, WINDOW).allowed for _ in range(2)] == [True, False]
    finally:
        client.close()


def test_several_limits_count_in_one_call_in_order_up_to_the_first_refusal(
    limiter: RateLimiter, clock: list[float], request: pytest.FixtureRequest
) -> None:
    """``ahit_all`` (the address and user limits of a request, one Redis call): as if each
    were hit in turn, stopping at the first refusal, whose ``Retry-After`` it answers."""
    import uuid

    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"

    async def run() -> list[tuple[bool, int]]:
        async_client = None
        if isinstance(limiter, RedisRateLimiter):  # the script itself, on the event loop
            import redis.asyncio

            async_client = redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
            limiter.attach_async(async_client)
        try:
            verdicts = [
                await limiter.ahit_all([(a, 5), (b, 1)]),  # both counted
                await limiter.ahit_all([(a, 5), (b, 1)]),  # a counted, b refused
                await limiter.ahit_all([(b, 1), (a, 5)]),  # b refused first: a not counted
            ]
        finally:
            if async_client is not None:
                limiter.attach_async(None)  # type: ignore[attr-defined]
                await async_client.aclose()
        return [(v.allowed, v.retry_after) for v in verdicts]

    answers = run_coroutine(run())
    wait = retry_after(0, 1, 0.0, 1, WINDOW)  # b's, with one hit counted at the window's start
    assert answers == [(True, 0), (False, wait), (False, wait)]
    # a holds 2 hits: 3 more fit under its limit of 5.
    assert [limiter.hit(a, 5, WINDOW).allowed for _ in range(4)] == [True, True, True, False]
