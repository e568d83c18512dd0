"""The language-model client: an OpenAI-compatible chat-completions server (Ollama, vLLM,
llama.cpp's server, hosted APIs) asked to answer from numbered passages only.

Every sentence of a reply must cite a passage as ``[n]``: sentences citing none are dropped,
markers are renumbered to the citations returned and markers naming no passage are dropped; a
reply left with nothing cited counts as no answer. ``LLM_TIMEOUT_SECONDS`` and
``LLM_CONNECT_TIMEOUT_SECONDS`` bound how long a model may take. Anything the server does wrong
(unreachable, an error status, a malformed or empty reply, a stream cut short) is an
``LLMError``, so callers fall back to extracts in one way (``answer.model_or_extracts``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from charterflow.retrieval.citations import Answer, cite
from charterflow.retrieval.embedders import endpoint
from charterflow.retrieval.search import Hit
from charterflow.retrieval.text import sentences
from charterflow.settings import Settings

_MARKER = re.compile(r"\[(\d{1,3})\]")
_LEADING_MARKERS = re.compile(r"(\s*\[\d{1,3}\])+")
_FINISHED = re.compile(r"([.!?][\"')\]]*|\[\d{1,3}\])\s*$")
SYSTEM_PROMPT = (
    "You answer questions using ONLY the numbered passages provided. Cite every statement "
    "with the number of the passage that supports it, like [1] or [2]. If the passages do "
    "not contain the answer, say that you could not find it, and cite nothing. Be concise."
)


class LLMError(RuntimeError):
    """The language model could not give an answer (unreachable, error status, bad reply)."""


def configured(settings: Settings) -> bool:
    """Whether answers are written by a model: ``LLM_URL`` set (settings require ``LLM_MODEL``)."""
    return bool(settings.llm_url)


def chat_request(settings: Settings, question: str, passages: list[Hit]) -> dict[str, Any]:
    """The chat-completions body asking the model to answer ``question`` from ``passages``."""
    numbered = "\n\n".join(
        f"[{n}] ({hit.document_title}{f', page {hit.page}' if hit.page else ''})\n{hit.text}"
        for n, hit in enumerate(passages, start=1)
    )
    return {
        "model": settings.llm_model,
        "temperature": 0,
        "max_tokens": settings.llm_max_tokens,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"},
        ],
    }


def timeout(settings: Settings) -> httpx.Timeout:
    """``LLM_TIMEOUT_SECONDS`` for reading (a whole plain reply, or each streamed piece),
    ``LLM_CONNECT_TIMEOUT_SECONDS`` for connecting."""
    return httpx.Timeout(settings.llm_timeout_seconds, connect=settings.llm_connect_timeout_seconds)


def llm_headers(settings: Settings) -> dict[str, str]:
    if settings.llm_api_key:
        return {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"}
    return {}


def _cites(sentence: str, passages: list[Hit]) -> bool:
    return any(1 <= int(n) <= len(passages) for n in _MARKER.findall(sentence))


def cited_reply(content: str, passages: list[Hit], partial: bool = False) -> Answer:
    """The model's reply with only its sentences that cite a passage, their ``[n]`` renumbered
    to the citations returned; markers naming no passage are dropped. A marker after the
    sentence's full stop (``... page 4. [2]``) belongs to that sentence. ``partial``: a reply
    cut short, whose last, unfinished sentence is kept as said (it may not have reached its
    marker yet; the turn says it is incomplete)."""
    content = content.strip()
    parts: list[str] = []
    for s, e in sentences(content):
        piece = content[s:e]
        lead = _LEADING_MARKERS.match(piece)
        if parts and lead:  # markers opening a sentence cite the one before (``fifty. [1] Next``)
            parts[-1] += f" {lead.group(0).strip()}"
            piece = piece[lead.end() :].strip()
            if not _MARKER.sub("", piece).strip(" .,;:!?"):
                parts[-1] += piece
                continue
        parts.append(piece)
    cut = partial and bool(parts) and not _FINISHED.search(parts[-1])
    content = " ".join(
        p for i, p in enumerate(parts) if _cites(p, passages) or (cut and i == len(parts) - 1)
    )
    order: dict[int, int] = {}

    def renumber(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(passages):
            return ""
        order.setdefault(n, len(order) + 1)
        return f"[{order[n]}]"

    text = re.sub(r" +([.,;:!?])", r"\1", _MARKER.sub(renumber, content)).strip()
    citations = [cite(passages[n - 1]) for n in order]
    return Answer(text, "llm", citations)


def ask_llm(settings: Settings, question: str, passages: list[Hit]) -> Answer:
    """Ask the chat model to answer from ``passages`` only; map its ``[n]`` to citations."""
    if not settings.llm_url or not settings.llm_model:
        raise LLMError("LLM_URL and LLM_MODEL are not set")
    try:
        r = httpx.post(
            endpoint(settings.llm_url, "/chat/completions"),
            json=chat_request(settings, question, passages),
            headers=llm_headers(settings),
            timeout=timeout(settings),
        )
        r.raise_for_status()
        content = str(r.json()["choices"][0]["message"]["content"]).strip()
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise LLMError(type(exc).__name__) from exc
    if not content:
        raise LLMError("empty reply")
    answer = cited_reply(content, passages)
    if not answer.citations:
        raise LLMError("no sentence of the reply cited a passage")
    return answer


async def stream_llm(settings: Settings, question: str, passages: list[Hit]) -> AsyncIterator[str]:
    """The model's answer as it is generated (OpenAI ``stream: true``), piece by piece.

    Leaving the iteration early (a client that disconnected) closes the upstream request.
    Raises ``LLMError`` for an error status, a broken stream or a reply that stops short.
    """
    if not settings.llm_url or not settings.llm_model:
        raise LLMError("LLM_URL and LLM_MODEL are not set")
    body = {**chat_request(settings, question, passages), "stream": True}
    url = endpoint(settings.llm_url, "/chat/completions")
    finished = False
    try:
        async with (
            httpx.AsyncClient(timeout=timeout(settings)) as client,
            client.stream("POST", url, json=body, headers=llm_headers(settings)) as response,
        ):
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                choice = json.loads(data)["choices"][0]
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield str(piece)
                if choice.get("finish_reason"):
                    finished = True
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise LLMError(type(exc).__name__) from exc
    if not finished:
        raise LLMError("the stream ended before the answer was complete")
