"""The model's reply as the app keeps it (retrieval/llm.py): only sentences that cite a passage,
markers renumbered to the citations returned; the timeouts and length come from settings."""

from __future__ import annotations

from charterflow.retrieval.llm import chat_request, cited_reply, timeout
from charterflow.retrieval.search import Hit
from charterflow.settings import Settings

PASSAGES = [
    Hit(f"c{n}", f"d{n}", f"Doc {n}", f"Passage {n} text.", 0, 16, None, 1.0, 0.9, None, None)
    for n in (1, 2, 3)
]


def test_uncited_sentences_are_dropped_and_markers_renumbered() -> None:
    reply = cited_reply(
        "Intake is on paper [2]. This is an industry-wide failure. Food is lost [3][9].", PASSAGES
    )
    assert reply.answer == "Intake is on paper [1]. Food is lost [2]."
    assert [c.document_id for c in reply.citations] == ["d2", "d3"]
    assert reply.mode == "llm"


def test_a_marker_after_the_full_stop_cites_the_sentence_before() -> None:
    reply = cited_reply("The limit is fifty. [1] Nothing else matters.", PASSAGES)
    assert reply.answer == "The limit is fifty. [1]"
    assert [c.document_id for c in reply.citations] == ["d1"]


def test_a_reply_citing_nothing_keeps_nothing() -> None:
    reply = cited_reply("I think so. Markers [7] name no passage.", PASSAGES)
    assert reply.answer == ""
    assert reply.citations == []


def test_a_reply_cut_short_keeps_its_unfinished_sentence() -> None:
    said = "It is due in May [1]. Uncited but done. The page limit is"
    assert cited_reply(said, PASSAGES, partial=True).answer == (
        "It is due in May [1]. The page limit is"
    )
    assert cited_reply(said, PASSAGES).answer == "It is due in May [1]."


def test_timeouts_and_length_come_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        llm_url="http://127.0.0.1:9/v1",
        llm_model="m",
        llm_timeout_seconds=7,
        llm_connect_timeout_seconds=2,
        llm_max_tokens=64,
    )
    bound = timeout(settings)
    assert (bound.read, bound.connect) == (7, 2)
    body = chat_request(settings, "When?", PASSAGES)
    assert body["max_tokens"] == 64
    assert body["model"] == "m"
    assert "[3] (Doc 3)\nPassage 3 text." in body["messages"][1]["content"]
