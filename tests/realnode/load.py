"""A steady, bounded load from this host: a few threads, each one request at a time, paced.

Each request opens a new connection (as independent clients do), so a connection to a pod that
is going away is never reused: what is counted is what a client of the Service sees.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Load:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    threads: int = 3
    pause: float = 0.05
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the first few, with their time
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with httpx.Client(timeout=10, headers=self.headers) as http:
                    response = http.get(self.url)
                outcome = "" if response.status_code == 200 else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
                detail = f"{time.strftime('%H:%M:%S')} {outcome}: {exc}"
                with self._lock:
                    if len(self.errors) < 10:
                        self.errors.append(detail)
            with self._lock:
                if outcome:
                    self.failures[outcome] += 1
                else:
                    self.ok += 1
            time.sleep(self.pause)
