"""A conversation turn streamed as Server-Sent Events: ``citations``, ``delta``…, ``done``.

``citations`` comes first: the sentences an extractive answer quotes, or the passages numbered
as the model sees them (its raw ``[n]`` markers in the deltas refer to that list; the stored
turn in ``done`` has them renumbered to the citations it keeps). Extractive answers stream
sentence by sentence; LLM answers token by token from the OpenAI-compatible stream.

Nothing half-written is presented as complete: a client that disconnects cancels the
upstream request and the turn is stored ``interrupted``; a model that fails mid-answer stores
a ``failed`` turn with what it said so far and why, sent as the ``error`` event. A model that
fails before its first token, or whose whole reply cites nothing, is replaced by the extractive
answer, with a ``warning`` (the stored turn in ``done`` is what the page shows).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from charterflow.logging import get_logger
from charterflow.models import Conversation, TurnStatus
from charterflow.retrieval import llm
from charterflow.retrieval.answer import NOT_FOUND, extractive, relevant_passages, unavailable
from charterflow.retrieval.citations import Answer, cite
from charterflow.retrieval.embedders import get_embedder
from charterflow.retrieval.llm import LLMError, cited_reply, stream_llm
from charterflow.retrieval.quotes import collapse
from charterflow.retrieval.search import Documents, Hit
from charterflow.schemas.conversations import MessageOut
from charterflow.services.conversations import (
    llm_prompt,
    recent_turns,
    record_ask,
    rewrite_query,
    store_turn,
)
from charterflow.settings import Settings

log = get_logger("charterflow.stream")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass
class _Prepared:
    query: str
    prompt: str
    relevant: list[Hit]
    extractive: Answer | None  # computed unless the model will answer


class _Turn:
    """What one streamed turn needs from the app, and how it is stored."""

    def __init__(
        self,
        request: Request,
        settings: Settings,
        conversation_id: str,
        question: str,
        top_k: int,
        user_id: str,
        documents: Documents = None,
    ) -> None:
        self.request = request
        self.documents = documents
        self.settings = settings
        self.factory: sessionmaker[Session] = request.app.state.session_factory
        self.conversation_id = conversation_id
        self.question = question
        self.top_k = top_k
        self.user_id = user_id
        self.embedder = get_embedder(settings)

    def prepare(self) -> _Prepared:
        with self.factory() as db:
            conversation = db.get(Conversation, self.conversation_id)
            assert conversation is not None  # checked by the route's dependency
            earlier = recent_turns(db, conversation.id)
            query = rewrite_query(self.question, earlier)
            relevant = relevant_passages(
                db, self.embedder, conversation.notebook_id, query, self.top_k, self.documents
            )
        mode = "llm" if llm.configured(self.settings) else "extractive"
        answered = None
        if not relevant:
            answered = Answer(NOT_FOUND, mode)
        elif mode == "extractive":
            answered = extractive(self.embedder, query, relevant)
        return _Prepared(query, llm_prompt(self.question, earlier), relevant, answered)

    def store(
        self, query: str, result: Answer, status: TurnStatus, timings: dict[str, float]
    ) -> dict[str, Any]:
        with self.factory() as db:
            conversation = db.get(Conversation, self.conversation_id)
            if conversation is None:  # deleted while the answer streamed
                return {}
            message = store_turn(
                db,
                conversation,
                question=self.question,
                retrieval_query=query,
                result=result,
                status=status,
                timings=timings,
                user_id=self.user_id,
            )
            record_ask(db, self.request, conversation, message, self.user_id)
            db.commit()
            return MessageOut.model_validate(message).model_dump(mode="json")


def _written(
    settings: Settings, content: str, relevant: list[Hit], *, partial: bool = False
) -> Answer:
    """What the model streamed, its markers mapped to citations, with the model's name
    (``partial``: cut short, so its last unfinished sentence is kept)."""
    result = cited_reply(content, relevant, partial=partial)
    result.model = settings.llm_model
    return result


def _sentences(result: Answer) -> list[str]:
    """The extractive answer's pieces as streamed: each cited sentence with its marker."""
    if not result.citations:
        return [result.answer]
    pieces = [f"{collapse(c.text)} [{n}]" for n, c in enumerate(result.citations, start=1)]
    return [p if i == 0 else f" {p}" for i, p in enumerate(pieces)]


async def stream_turn(
    request: Request,
    settings: Settings,
    conversation_id: str,
    question: str,
    top_k: int,
    user_id: str,
    documents: Documents = None,
) -> AsyncIterator[str]:
    """The SSE body of one turn (from ``documents`` only, if given); the turn is stored
    however the stream ends."""
    turn = _Turn(request, settings, conversation_id, question, top_k, user_id, documents)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    prepared = await run_in_threadpool(turn.prepare)
    query, relevant = prepared.query, prepared.relevant
    parts: list[str] = []
    result = prepared.extractive
    status = TurnStatus.complete

    def citations_event(citations: list[Any]) -> str:
        body = {"citations": [asdict(c) for c in citations], "retrieval_query": query}
        return sse("citations", body)

    def delta(piece: str) -> str:
        timings.setdefault("first_byte_ms", elapsed())
        parts.append(piece)
        return sse("delta", {"text": piece})

    try:
        if result is None:  # the model answers from these numbered passages
            yield citations_event([cite(h) for h in relevant])
            try:
                async for piece in stream_llm(settings, prepared.prompt, relevant):
                    yield delta(piece)
                result = _written(settings, "".join(parts), relevant)
                if not result.citations:  # every sentence must cite: nothing of it is kept
                    extracted = await run_in_threadpool(extractive, turn.embedder, query, relevant)
                    result = unavailable(LLMError("its answer cited no passage"), extracted)
            except LLMError as exc:
                if parts:
                    result = _written(settings, "".join(parts), relevant, partial=True)
                    result.warning = (
                        f"The language model stopped mid-answer ({exc}); the answer is incomplete."
                    )
                    status = TurnStatus.failed
                else:
                    extracted = await run_in_threadpool(extractive, turn.embedder, query, relevant)
                    result = unavailable(exc, extracted)
                    yield citations_event(result.citations)
                    for piece in _sentences(result):
                        yield delta(piece)
        else:
            yield citations_event(result.citations)
            for piece in _sentences(result):
                yield delta(piece)
    except (asyncio.CancelledError, GeneratorExit):  # the client went away: say so in the turn
        cut = (
            _written(settings, "".join(parts), relevant, partial=True) if result is None else result
        )
        cut.warning = "The client disconnected before the answer was complete."
        timings["total_ms"] = elapsed()
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(turn.store, query, cut, TurnStatus.interrupted, timings)
        raise
    timings["total_ms"] = elapsed()
    stored = await run_in_threadpool(turn.store, query, result, status, timings)
    if status is TurnStatus.complete:
        yield sse("done", stored)
    else:
        yield sse("error", {"detail": result.warning, "turn": stored})
