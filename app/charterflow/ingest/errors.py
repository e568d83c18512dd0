"""The two ways ingestion can fail: the document is bad (fail now) or the world is (retry)."""

from __future__ import annotations


class BadDocument(Exception):
    """The document itself cannot be ingested; retrying cannot help. The message is shown
    to people as the document's ``error``, so it must be readable and free of internals."""


class TransientError(Exception):
    """A dependency failed (storage, database, embeddings endpoint); worth retrying."""


class Busy(TransientError):
    """Another worker holds a live lease on the document; try again after it expires."""


class Deferred(TransientError):
    """The document's uploader already has ``INGEST_USER_CONCURRENCY`` documents in progress;
    queue it again later. Not an attempt: the document was never claimed."""
