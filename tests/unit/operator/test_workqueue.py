"""The reconcile work queue with real threads: coalescing, and isolation of failures."""

from __future__ import annotations

import threading

from charterflow_operator.workqueue import Key, WorkQueue

WAIT = 10  # seconds; only a broken queue waits this long


def test_a_key_waiting_is_queued_once_and_others_are_served() -> None:
    gate = threading.Event()
    done: list[Key] = []
    finished = threading.Event()

    def work(key: Key) -> None:
        gate.wait(WAIT)
        done.append(key)
        if key == ("ns", "last"):
            finished.set()

    queue = WorkQueue(work, failed=lambda key: None)
    queue.start(1)  # one worker, so the queue's order is the order of the passes
    queue.put(("ns", "busy"))
    for _ in range(5):  # while "busy" runs or waits: five events for "a" ask for one pass
        queue.put(("ns", "a"))
    queue.put(("ns", "b"))
    queue.put(("ns", "last"))
    gate.set()
    assert finished.wait(WAIT)
    assert done == [("ns", "busy"), ("ns", "a"), ("ns", "b"), ("ns", "last")]
    queue.put(("ns", "a"))  # once taken, a new event asks for a new pass
    finished.clear()
    queue.put(("ns", "last"))
    assert finished.wait(WAIT)
    assert done[4:] == [("ns", "a"), ("ns", "last")]


def test_a_failing_pass_is_reported_and_the_worker_goes_on() -> None:
    failed: list[Key] = []
    served = threading.Event()

    def work(key: Key) -> None:
        if key[1] == "bad":
            raise RuntimeError("boom")
        served.set()

    queue = WorkQueue(work, failed=failed.append)
    queue.start(1)
    queue.put(("ns", "bad"))
    queue.put(("ns", "good"))
    assert served.wait(WAIT)
    assert failed == [("ns", "bad")]
