"""Extractive answers on real documents nobody here wrote (tests/fixtures/corpus): whole
sentences, the answer below an FAQ's question rather than the question, a list with the sentence
that introduces it, "The sources don't answer this." when nothing is relevant; answers limited
to chosen documents; follow-ups rewritten only when they depend on the conversation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import API, Account, Api
from tests.ingest.conftest import wait_settled

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
NOT_FOUND = "The sources don't answer this."
_MARK = re.compile(r" ?\[\d+\]")
#: A whole sentence ends with its punctuation (before any closing quote or bracket).
_ENDS = re.compile(r"[.!?:][\"')\]`]*$")


@pytest.fixture(scope="module")
def corpus(api: Api) -> dict[str, Any]:
    """A notebook with the hard-wrapped GNU Screen FAQ, zstd's contributor guide (Markdown)
    and the first chapters of the Debian FAQ (hard-wrapped), as shipped."""
    owner = api.register("Quinn")
    nb = api.notebook(owner)
    ids = {}
    for name in ("screen-FAQ.txt", "zstd-CONTRIBUTING.md", "debian-faq-ch1-2.txt"):
        r = api.upload(owner, nb["id"], name, (CORPUS / name).read_bytes())
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    docs = wait_settled(api, owner, list(ids.values()))
    assert all(d["status"] == "ready" for d in docs.values()), docs
    return {"owner": owner, "nb": nb["id"], "ids": ids}


def _ask(api: Api, who: Account, nb: str, question: str, **body: Any) -> dict[str, Any]:
    r = api.client.post(
        f"{API}/notebooks/{nb}/ask", json={"question": question, **body}, headers=who.headers
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _whole(citation: dict[str, Any]) -> bool:
    """The cited text starts a sentence and ends one (not a line of a hard-wrapped file)."""
    text = citation["text"].strip()
    return bool(_ENDS.search(text)) and (text[0].isupper() or text[0] in "\"'`(")


def test_an_faq_is_answered_by_the_answer_below_the_question(
    api: Api, corpus: dict[str, Any]
) -> None:
    body = _ask(
        api, corpus["owner"], corpus["nb"], "Why does sed not work when I configure screen?"
    )
    assert body["mode"] == "extractive"
    assert body["quoted"] is True
    assert body["model"] is None
    first = body["citations"][0]
    assert first["document_id"] == corpus["ids"]["screen-FAQ.txt"]
    # The answer paragraph (hard-wrapped over five lines), not the question line above it.
    assert "regular expressions used" in body["answer"]
    assert "GNU sed version 2.03" in body["answer"]
    assert "I cannot configure screen" not in body["answer"]
    assert not body["answer"].startswith("A:")
    for citation in body["citations"]:
        assert _whole(citation), citation["text"]
        assert "heading" in citation
    # The answer is the citations' text, each once, line breaks of the file collapsed.
    quoted = [" ".join(c["text"].split()) for c in body["citations"]]
    assert _MARK.sub("", body["answer"]) == " ".join(quoted)
    assert len(set(quoted)) == len(quoted)


def test_a_sentence_introducing_a_list_brings_the_list(api: Api, corpus: dict[str, Any]) -> None:
    body = _ask(api, corpus["owner"], corpus["nb"], "What is the latest version of Debian?")
    first = body["citations"][0]
    assert first["document_id"] == corpus["ids"]["debian-faq-ch1-2.txt"]
    assert "Currently there are three versions of Debian GNU/Linux:" in first["text"]
    assert "bullseye" in first["text"]  # the first item, in the next paragraph
    assert "What is the latest version of Debian?" not in body["answer"]  # nor the contents


def test_nothing_relevant_says_so_exactly(api: Api, corpus: dict[str, Any]) -> None:
    body = _ask(api, corpus["owner"], corpus["nb"], "What is the boiling point of water?")
    assert body == {
        "answer": NOT_FOUND,
        "mode": "extractive",
        "quoted": False,
        "model": None,
        "citations": [],
        "warning": None,
    }


def test_ask_only_these_documents(api: Api, corpus: dict[str, Any]) -> None:
    owner, nb, ids = corpus["owner"], corpus["nb"], corpus["ids"]
    question = "Why does sed not work when I configure screen?"
    only = [ids["zstd-CONTRIBUTING.md"], ids["debian-faq-ch1-2.txt"]]
    body = _ask(api, owner, nb, question, document_ids=only)
    assert {c["document_id"] for c in body["citations"]} <= set(only)
    assert "GNU sed version 2.03" not in body["answer"]
    body = _ask(api, owner, nb, question, document_ids=[ids["screen-FAQ.txt"]])
    assert {c["document_id"] for c in body["citations"]} == {ids["screen-FAQ.txt"]}

    other = api.register("Rory")
    theirs = api.notebook(other)
    foreign = api.upload(other, theirs["id"], "t.txt", b"Screen is a terminal multiplexer.\n")
    for bad in (["nope"], [ids["screen-FAQ.txt"], foreign.json()["id"]]):
        r = api.client.post(
            f"{API}/notebooks/{nb}/ask",
            json={"question": question, "document_ids": bad},
            headers=owner.headers,
        )
        assert r.status_code == 422, r.text
        detail = r.json()["detail"][0]
        assert detail["loc"] == ["body", "document_ids"]
        assert ids["screen-FAQ.txt"] not in detail["msg"]
    for bad_body in ({"document_ids": []}, {"document_ids": ["x"] * 101}):
        r = api.client.post(
            f"{API}/notebooks/{nb}/ask",
            json={"question": question, **bad_body},
            headers=owner.headers,
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "document_ids"]

    # A conversation turn is limited the same way.
    conversation = api.client.post(
        f"{API}/notebooks/{nb}/conversations", json={}, headers=owner.headers
    ).json()
    r = api.client.post(
        f"{API}/conversations/{conversation['id']}/messages",
        json={"question": question, "document_ids": only},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    assert {c["document_id"] for c in r.json()["citations"]} <= set(only)
    r = api.client.post(
        f"{API}/conversations/{conversation['id']}/messages",
        json={"question": question, "document_ids": ["nope"]},
        headers=owner.headers,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "document_ids"]


def _turn(api: Api, who: Account, conversation_id: str, question: str) -> dict[str, Any]:
    r = api.client.post(
        f"{API}/conversations/{conversation_id}/messages",
        json={"question": question},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _thread(api: Api, who: Account, nb: str) -> str:
    r = api.client.post(f"{API}/notebooks/{nb}/conversations", json={}, headers=who.headers)
    return str(r.json()["id"])


def _sources(turn: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(c["document_id"], c["start"], c["end"]) for c in turn["citations"]]


def test_an_unrelated_question_gets_what_a_new_thread_gets(
    api: Api, corpus: dict[str, Any]
) -> None:
    owner, nb = corpus["owner"], corpus["nb"]
    thread = _thread(api, owner, nb)
    first = _turn(api, owner, thread, "Why does sed not work when I configure screen?")
    assert first["citations"]
    for question in (
        "Which branch should a pull request to zstd be made from?",
        "Is it possible to download a file with Kermit while screen runs?",
        "How does one pronounce Debian?",
    ):
        in_thread = _turn(api, owner, thread, question)
        fresh = _turn(api, owner, _thread(api, owner, nb), question)
        assert in_thread["retrieval_query"] == question
        assert _sources(in_thread) == _sources(fresh)
        assert in_thread["answer"] == fresh["answer"]


def test_a_dependent_follow_up_carries_the_topic(api: Api, corpus: dict[str, Any]) -> None:
    owner, nb, ids = corpus["owner"], corpus["nb"], corpus["ids"]
    thread = _thread(api, owner, nb)
    _turn(api, owner, thread, "How should a pull request to zstd be prepared?")
    follow_up = _turn(api, owner, thread, "And what about its license agreement?")
    assert "zstd" in follow_up["retrieval_query"]
    assert follow_up["citations"]
    assert {c["document_id"] for c in follow_up["citations"]} == {ids["zstd-CONTRIBUTING.md"]}
    assert "CLA" in follow_up["answer"]
    fresh = _turn(api, owner, _thread(api, owner, nb), "And what about its license agreement?")
    assert fresh["retrieval_query"] == "And what about its license agreement?"
