"""Fault injection for tests/e2e/test_namespaces.py, loaded by the operator under test only
(its PYTHONPATH names this directory): Kopf's second LIST of namespaces (the one its namespace
watch makes before watching; see operator/charterflow_operator/namespaces.py) waits until the
test has made a namespace, so that the namespace falls between Kopf's two LISTs every time.

``CHARTERFLOW_HOLD_NAMESPACE_LIST`` names a directory: the hold writes ``holding`` there, then
waits (at most a minute) for ``release``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

HOLD = os.environ.get("CHARTERFLOW_HOLD_NAMESPACE_LIST")

if HOLD:
    from kopf._cogs.clients import fetching

    _fetch_objs = fetching.fetch_objs
    _lists = 0

    async def _held_fetch_objs(*, resource: Any, **kwargs: Any) -> AsyncIterator[Any]:
        global _lists
        if resource.plural == "namespaces":
            _lists += 1
            if _lists == 2:
                await asyncio.to_thread(Path(HOLD, "holding").touch)
                for _ in range(600):
                    if await asyncio.to_thread(Path(HOLD, "release").exists):
                        break
                    await asyncio.sleep(0.1)
        async for item in _fetch_objs(resource=resource, **kwargs):
            yield item

    fetching.fetch_objs = _held_fetch_objs
