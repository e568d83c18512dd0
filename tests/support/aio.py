"""Running a coroutine from a synchronous test, whatever the main thread is doing.

Playwright's sync API (the browser tier) keeps an event loop running on the main thread for
the rest of the session, so ``asyncio.run`` there fails in a full ``make test`` run while it
passes when the file runs alone. A fresh loop on a thread of its own works in both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)`` on a new thread; its result, or its exception."""
    with ThreadPoolExecutor(1, thread_name_prefix="test-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()
