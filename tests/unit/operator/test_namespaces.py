"""The namespace resync (namespaces.py) and the backstop's leadership check off the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf
from charterflow_operator import handlers
from charterflow_operator.config import OperatorConfig
from charterflow_operator.leadership import Leadership
from charterflow_operator.namespaces import resync_once, revised
from kopf._cogs.structs.references import Insights

from tests.support.aio import run_coroutine

PATTERNS = ["cfop-*"]


def namespace(name: str, deleting: bool = False, content_left: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name}, "status": {"phase": "Active"}}
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        remaining = "True" if content_left else "False"
        body["status"] = {
            "phase": "Terminating",
            "conditions": [{"type": "NamespaceContentRemaining", "status": remaining}],
        }
    return body


def test_a_listed_namespace_kopf_missed_is_served_and_a_gone_one_is_not() -> None:
    listed = [namespace("cfop-new"), namespace("cfop-old"), namespace("default")]
    assert revised({"cfop-old", "cfop-gone"}, PATTERNS, listed) == {"cfop-old", "cfop-new"}


def test_deleted_namespaces_follow_kopfs_rule() -> None:
    listed = [
        namespace("cfop-done", deleting=True),  # content removed: Kopf drops it
        namespace("cfop-busy", deleting=True, content_left=True),  # kept as it is
        namespace("cfop-unseen", deleting=True, content_left=True),  # not added either
    ]
    assert revised({"cfop-done", "cfop-busy"}, PATTERNS, listed) == {"cfop-busy"}


def test_resync_wakes_kopfs_orchestrator_only_on_a_change() -> None:
    async def scenario() -> tuple[bool, bool, set[str | None], int]:
        insights = Insights()
        insights.namespaces.add("cfop-a")
        woken = 0

        async def orchestrator() -> None:  # waits as Kopf's does, on insights.revised
            nonlocal woken
            async with insights.revised:
                while True:
                    await insights.revised.wait()
                    woken += 1

        waiter = asyncio.create_task(orchestrator())
        await asyncio.sleep(0)
        listing = [namespace("cfop-a"), namespace("cfop-b")]
        changed = await resync_once(insights, PATTERNS, lambda: listing)
        await asyncio.sleep(0)
        again = await resync_once(insights, PATTERNS, lambda: listing)
        await asyncio.sleep(0)
        waiter.cancel()
        return changed, again, set(insights.namespaces), woken

    changed, again, served, woken = run_coroutine(scenario())
    assert (changed, again) == (True, False)
    assert served == {"cfop-a", "cfop-b"}
    assert woken == 1


def test_the_backstop_asks_for_leadership_off_the_event_loop() -> None:
    """A peering GET that blocks must not block the loop (and every Kopf watch with it): the
    lookup below waits for a coroutine to run while it is in progress; on the loop it would
    wait in vain (and time out)."""
    asked, loop_ran = threading.Event(), threading.Event()
    seen: list[bool] = []

    class SlowPeering:
        def get(self, *_: Any) -> dict[str, Any]:
            asked.set()
            seen.append(loop_ran.wait(timeout=5))
            return {"status": {}}

    leadership = Leadership(SlowPeering(), "me", 1, "cf", clusterwide=True)  # type: ignore[arg-type]

    class Reconciler:
        def __init__(self) -> None:
            self.leadership = leadership
            self.queued: list[tuple[str, str]] = []

        def pass_due(self, *_: Any) -> bool:
            return True

        def enqueue(self, namespace: str, name: str) -> None:
            self.queued.append((namespace, name))

    async def scenario() -> list[tuple[str, str]]:
        memo = kopf.Memo(config=OperatorConfig(resync_seconds=0.01))
        memo.reconciler = Reconciler()
        backstop = asyncio.create_task(handlers._backstop(memo, {("team-a", "x"): True}))  # type: ignore[arg-type]
        while not memo.reconciler.queued:
            await asyncio.sleep(0.01)
            if asked.is_set():
                loop_ran.set()  # reached during the GET only if it is off the loop
        backstop.cancel()
        return memo.reconciler.queued

    queued = run_coroutine(asyncio.wait_for(scenario(), timeout=30))
    assert queued[0] == ("team-a", "x")
    assert seen[0], "the loop stood still while the backstop read the peering object"
