"""The Dramatiq side: the Redis broker, the ``ingest_document`` actor and its follow-up
``store_sentences`` (a ready document's sentence vectors), on the same queue at a lower priority.

Messages are acknowledged only after the actor returns (Dramatiq acks late), so a worker
that dies mid-document leaves its message to be redelivered once its heartbeat is older than
``WORKER_HEARTBEAT_TIMEOUT_SECONDS``. Failures are retried with exponential backoff
by Dramatiq's Retries middleware; bad documents end ``failed`` without retrying.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from charterflow.ingest.errors import Deferred
from charterflow.settings import Settings

QUEUE = "ingest"
ACTOR = "ingest_document"
SENTENCES_ACTOR = "store_sentences"
#: Dramatiq runs lower numbers first among the messages a worker has prefetched, so a
#: follow-up waits while ingest messages are at hand (same queue: the worker's queue name
#: and ``charterflow_ingest_queue_depth`` stay as the operator knows them).
INGEST_PRIORITY = 0
SENTENCES_PRIORITY = 100
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 5 * 60_000
#: How long a deferred document (its uploader at ``INGEST_USER_CONCURRENCY``) waits.
DEFER_MS = 3_000
#: Out of a million broker commands, how many also requeue dead workers' messages. Dramatiq's
#: default (1000, 0.1%) can leave them waiting many minutes after the heartbeat timeout; the
#: check is one sorted-set range query, so we run it on 10% of commands.
MAINTENANCE_CHANCE = 100_000


def make_broker(settings: Settings) -> RedisBroker:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is required for the Dramatiq broker")
    return RedisBroker(
        url=settings.redis_url,
        heartbeat_timeout=int(settings.worker_heartbeat_timeout_seconds * 1000),
        maintenance_chance=MAINTENANCE_CHANCE,
        socket_timeout=30,
        socket_connect_timeout=settings.dependency_timeout_seconds,
        health_check_interval=30,
    )


def declare_ingest_actor(
    broker: RedisBroker, settings: Settings, handler: Callable[[str], object]
) -> dramatiq.Actor:  # type: ignore[type-arg]
    """Declare ``ingest_document`` on ``broker``; ``handler`` runs it (workers only)."""

    def ingest_document(document_id: str) -> None:
        try:
            handler(document_id)
        except Deferred:
            # The uploader has their share of workers: back of the queue, without spending
            # one of the message's retries, so other people's documents go first.
            actor.send_with_options(args=(document_id,), delay=DEFER_MS)

    # The document's own attempt counter decides when it has failed; message retries also
    # cover waiting out another worker's lease (``Busy``) and database outages, hence 3x.
    limit = settings.ingest_max_attempts * 3

    def retry_when(retries: int, _exc: BaseException) -> bool:
        return retries < limit

    actor: dramatiq.Actor = dramatiq.Actor(  # type: ignore[type-arg]
        ingest_document,
        broker=broker,
        actor_name=ACTOR,
        queue_name=QUEUE,
        priority=INGEST_PRIORITY,
        options={
            "min_backoff": MIN_BACKOFF_MS,
            "max_backoff": MAX_BACKOFF_MS,
            "retry_when": retry_when,
            "time_limit": 60 * 60_000,
        },
    )
    return actor


def declare_sentences_actor(
    broker: RedisBroker, handler: Callable[[str], object]
) -> dramatiq.Actor:  # type: ignore[type-arg]
    """Declare ``store_sentences`` on ``broker`` (workers only: the worker sends it once a
    document is ready). Idempotent, so Dramatiq's default retries are safe."""

    def store_sentences(document_id: str) -> None:
        handler(document_id)

    return dramatiq.Actor(
        store_sentences,
        broker=broker,
        actor_name=SENTENCES_ACTOR,
        queue_name=QUEUE,
        priority=SENTENCES_PRIORITY,
        options={
            "min_backoff": MIN_BACKOFF_MS,
            "max_backoff": MAX_BACKOFF_MS,
            "max_retries": 5,
            "time_limit": 60 * 60_000,
        },
    )


def _not_here(document_id: str) -> None:
    raise RuntimeError("ingestion runs in `charterflow worker`, not in the API")


def make_sender(settings: Settings) -> dramatiq.Actor:  # type: ignore[type-arg]
    """The actor as the API sees it: it only sends messages."""
    return declare_ingest_actor(make_broker(settings), settings, _not_here)


def queue_depth(broker: RedisBroker) -> int:
    """Messages waiting in the ingest queue, delayed retries included."""
    return int(broker.do_qsize(QUEUE)) + int(broker.do_qsize(f"{QUEUE}.DQ"))
