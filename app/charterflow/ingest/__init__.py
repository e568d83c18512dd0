"""Ingestion: parse stored documents, chunk them, embed the chunks and store them for search."""

from charterflow.ingest.errors import BadDocument, TransientError

__all__ = ["BadDocument", "TransientError"]
