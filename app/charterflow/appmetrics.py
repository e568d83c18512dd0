"""Metrics beyond HTTP, shared by the API and the worker: what users did (business counters) and
how the database pool and queries behave.

Business counters count committed audit events (``services/audit.py``), so a request that
rolled back counts nothing, and every path that records the event (the JSON API, the streamed
answer, the web UI) is counted in one place. Database metrics read the engine's pool at scrape
time and time each statement with SQLAlchemy's cursor events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

# Audit action -> the business counter it increments (answers are counted by their mode).
REGISTER = "user.register"
UPLOAD = "document.upload"
ASK = "conversation.ask"


class BusinessMetrics:
    """Counters of what users did, labelled only by bounded values (never ids)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registrations = Counter(
            "charterflow_registrations_total", "Accounts registered.", registry=registry
        )
        self.uploads = Counter(
            "charterflow_uploads_total",
            "Sources added to a notebook (files, URLs, pasted text).",
            registry=registry,
        )
        self.questions = Counter(
            "charterflow_questions_total", "Questions asked in conversations.", registry=registry
        )
        self.answers = Counter(
            "charterflow_answers_total",
            "Answers given, by mode (llm, extractive) and status (complete, partial, failed).",
            ["mode", "status"],
            registry=registry,
        )

    def count(self, action: str, detail: dict[str, Any]) -> None:
        """Count one committed audit event (other actions are ignored)."""
        if action == REGISTER:
            self.registrations.inc()
        elif action == UPLOAD:
            self.uploads.inc()
        elif action == ASK:
            self.questions.inc()
            mode = str(detail.get("mode") or "none")
            self.answers.labels(mode, str(detail.get("status") or "complete")).inc()

    def watch(self, factory: sessionmaker[Session]) -> None:
        """Count the audit events that sessions of ``factory`` commit."""
        from charterflow.models import AuditEvent

        key = "charterflow.audit_events"

        @event.listens_for(factory, "after_flush")
        def _collect(session: Session, _ctx: Any) -> None:
            found = [o for o in session.new if isinstance(o, AuditEvent)]
            if found:
                session.info.setdefault(key, []).extend(found)

        @event.listens_for(factory, "after_commit")
        def _count(session: Session) -> None:
            for audit in session.info.pop(key, []):
                self.count(audit.action, audit.detail or {})

        @event.listens_for(factory, "after_rollback")
        def _forget(session: Session) -> None:
            session.info.pop(key, None)


class PoolCollector(Collector):
    """The engine's connection pool, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.pool
        values = {  # metric name: (help, pool method)
            "charterflow_db_pool_checked_out": ("Connections in use.", "checkedout"),
            "charterflow_db_pool_overflow": (
                "Connections open beyond the pool size (negative: unused room).",
                "overflow",
            ),
            "charterflow_db_pool_size": ("Configured pool size.", "size"),
        }
        for name, (doc, attr) in values.items():
            reader = getattr(pool, attr, None)
            if reader is None:  # SQLite's pools have no overflow
                continue
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], float(reader()))
            yield gauge


class DatabaseMetrics:
    """Pool gauges and statement durations of one engine, on ``registry``."""

    def __init__(self, registry: CollectorRegistry, engine: Engine) -> None:
        self.duration = Histogram(
            "charterflow_db_query_duration_seconds",
            "Time from sending a statement to its result, by statement kind.",
            ["statement"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=registry,
        )
        self.registry, self.engine = registry, engine
        self.pool = PoolCollector(engine)
        registry.register(self.pool)
        self._local = threading.local()

        event.listen(engine, "before_cursor_execute", self._start)
        event.listen(engine, "after_cursor_execute", self._stop)

    def _start(self, *_: Any) -> None:
        self._local.started = time.perf_counter()

    def _stop(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        started = getattr(self._local, "started", None)
        if started is not None:
            self._local.started = None
            self.duration.labels(statement_kind(statement)).observe(time.perf_counter() - started)

    def close(self) -> None:
        """Stop timing and leave the registry (a process-wide one outlives this engine)."""
        event.remove(self.engine, "before_cursor_execute", self._start)
        event.remove(self.engine, "after_cursor_execute", self._stop)
        self.registry.unregister(self.pool)
        self.registry.unregister(self.duration)


# Statement kinds kept as labels; anything else is "other" (the label set stays bounded).
KINDS = ("select", "insert", "update", "delete", "with")


def statement_kind(statement: str) -> str:
    """``select``/``insert``/``update``/``delete``/``with`` or ``other``."""
    word = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else ""
    return word if word in KINDS else "other"
