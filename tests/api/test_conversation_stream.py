"""Streamed turns (``Accept: text/event-stream``): extractive and from a local streaming model,
with a client that disconnects and a model that dies mid-answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.api.conftest import API, Account, Api
from tests.api.test_conversations import BOREALIS
from tests.ingest.conftest import wait_settled
from tests.support.llm import OpenAICompatible, Reply, StreamReply
from tests.support.processes import wait_until

SSE = {"Accept": "text/event-stream"}
Event = tuple[str, Any]


@pytest.fixture(scope="module")
def thread(api: Api) -> dict[str, Any]:
    owner = api.register("Stella")
    nb = api.notebook(owner)
    doc = api.upload(owner, nb["id"], "borealis.txt", BOREALIS).json()
    assert wait_settled(api, owner, [doc["id"]])[doc["id"]]["status"] == "ready"
    return {"owner": owner, "nb": nb["id"], "doc": doc["id"]}


def _conversation(api: Api, owner: Account, nb: str) -> str:
    r = api.client.post(f"{API}/notebooks/{nb}/conversations", json={}, headers=owner.headers)
    return str(r.json()["id"])


@contextmanager
def _events(api: Api, owner: Account, conversation: str, question: str) -> Iterator[Any]:
    """The response's events as they arrive, ``(name, data)``."""
    with api.client.stream(
        "POST",
        f"{API}/conversations/{conversation}/messages",
        json={"question": question},
        headers={**owner.headers, **SSE},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")

        def parse() -> Iterator[Event]:
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    yield str(name), json.loads(line[6:])

        yield parse()


def _turns(api: Api, owner: Account, conversation: str) -> list[dict[str, Any]]:
    r = api.client.get(f"{API}/conversations/{conversation}/messages", headers=owner.headers)
    return list(r.json()["items"])


def test_an_extractive_answer_streams_citations_sentences_then_the_stored_turn(
    api: Api, thread: dict[str, Any]
) -> None:
    owner = thread["owner"]
    conversation = _conversation(api, owner, thread["nb"])
    with _events(api, owner, conversation, "When is the Borealis application due?") as events:
        got = list(events)
    names = [n for n, _ in got]
    assert names[0] == "citations"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    cited = got[0][1]["citations"]
    assert cited[0]["document_id"] == thread["doc"]
    done = got[-1][1]
    assert "".join(d["text"] for n, d in got if n == "delta") == done["answer"]
    assert "fifteenth of May. [1]" in done["answer"]
    assert done["status"] == "complete"
    assert (done["quoted"], done["model"]) == (True, None)  # verbatim extracts, no model
    assert done["citations"] == cited
    assert 0 < done["timings"]["first_byte_ms"] <= done["timings"]["total_ms"]
    assert _turns(api, owner, conversation) == [done]


@pytest.fixture
def llm(with_model: Callable[[Reply], tuple[OpenAICompatible, Api]]) -> Any:
    """``llm(reply)`` → (the model server, the API using it)."""

    def start(reply: StreamReply | tuple[int, dict[str, Any]]) -> tuple[OpenAICompatible, Api]:
        return with_model(lambda _path, _body: reply)

    return start


def test_a_model_answer_streams_token_by_token(llm: Any, thread: dict[str, Any]) -> None:
    gate = threading.Event()
    pieces = ["The Borealis ", "application is due ", "on the fifteenth of May ", "[1] [9]", "."]
    server, api = llm(StreamReply(pieces, gate=gate))
    owner = thread["owner"]
    conversation = _conversation(api, owner, thread["nb"])
    with _events(api, owner, conversation, "When is the Borealis application due?") as events:
        got = [next(events), next(events)]
        assert got[1] == ("delta", {"text": pieces[0]})  # before the model wrote the rest
        gate.set()
        got += list(events)
    assert server.requests[0][1]["stream"] is True
    assert [d["text"] for n, d in got if n == "delta"] == pieces
    name, done = got[-1]
    assert name == "done"
    assert done["mode"] == "llm"
    assert (done["quoted"], done["model"]) == (False, "test-model")  # stored with the turn
    assert done["answer"] == "The Borealis application is due on the fifteenth of May [1]."
    assert [c["document_id"] for c in done["citations"]] == [thread["doc"]]
    assert _turns(api, owner, conversation)[-1]["status"] == "complete"


def test_a_streamed_answer_that_cites_nothing_is_stored_as_the_extracts(
    llm: Any, thread: dict[str, Any]
) -> None:
    """Every sentence must cite: a model that streamed only uncited text has said nothing that
    can be kept, so the stored turn (``done``, which the page shows) is the quoted extracts."""
    _server, api = llm(StreamReply(["The application ", "is due soon", "."]))
    owner = thread["owner"]
    conversation = _conversation(api, owner, thread["nb"])
    with _events(api, owner, conversation, "When is the Borealis application due?") as events:
        got = list(events)
    name, done = got[-1]
    assert name == "done"
    assert (done["mode"], done["quoted"]) == ("extractive", True)
    assert "cited no passage" in done["warning"]
    assert "is due soon" not in done["answer"]
    assert [c["document_id"] for c in done["citations"]] == [thread["doc"]]
    assert _turns(api, owner, conversation)[-1]["answer"] == done["answer"]


def test_a_client_that_disconnects_stops_the_model_and_the_turn_says_so(
    llm: Any, thread: dict[str, Any]
) -> None:
    pieces = ["The Borealis ", "application ", *(["is due "] * 100)]
    server, api = llm(StreamReply(pieces, delay=0.1))
    owner = thread["owner"]
    conversation = _conversation(api, owner, thread["nb"])
    with _events(api, owner, conversation, "When is the Borealis application due?") as events:
        assert next(events)[0] == "citations"
        assert next(events) == ("delta", {"text": pieces[0]})
    # Leaving the block closed the connection: the model's stream is cut before its end.
    wait_until(lambda: server.aborted == 1, 20, "the upstream stream to be closed")
    wait_until(lambda: bool(_turns(api, owner, conversation)), 20, "the interrupted turn")
    turn = _turns(api, owner, conversation)[0]
    assert turn["status"] == "interrupted"
    assert turn["answer"].startswith("The Borealis")
    assert "disconnected" in turn["warning"]


def test_a_model_that_dies_mid_answer_leaves_a_failed_turn(
    llm: Any, thread: dict[str, Any]
) -> None:
    pieces = ["The Borealis application ", "is due on [1] ", "the fifteenth", " of May."]
    _server, api = llm(StreamReply(pieces, cut_after=2))
    owner = thread["owner"]
    conversation = _conversation(api, owner, thread["nb"])
    with _events(api, owner, conversation, "When is the Borealis application due?") as events:
        got = list(events)
    assert [n for n, _ in got] == ["citations", "delta", "delta", "error"]
    error = got[-1][1]
    assert "stopped mid-answer" in error["detail"]
    turn = error["turn"]
    assert turn["status"] == "failed"
    assert turn["answer"] == "The Borealis application is due on [1]"
    assert turn["warning"] == error["detail"]
    assert _turns(api, owner, conversation) == [turn]


def test_a_model_down_before_its_first_token_gives_the_extractive_answer(
    llm: Any, thread: dict[str, Any]
) -> None:
    _server, api = llm((500, {"error": "boom"}))
    owner = thread["owner"]
    conversation = _conversation(api, owner, thread["nb"])
    with _events(api, owner, conversation, "When is the Borealis application due?") as events:
        got = list(events)
    name, done = got[-1]
    assert name == "done"
    assert done["mode"] == "extractive"
    assert "unavailable" in done["warning"]
    assert "fifteenth of May" in done["answer"]


def test_streaming_needs_the_same_access(api: Api, thread: dict[str, Any]) -> None:
    conversation = _conversation(api, thread["owner"], thread["nb"])
    stranger = api.register("Sid")
    r = api.client.post(
        f"{API}/conversations/{conversation}/messages",
        json={"question": "When?"},
        headers={**stranger.headers, **SSE},
    )
    assert r.status_code == 404
    assert isinstance(r, httpx.Response)
