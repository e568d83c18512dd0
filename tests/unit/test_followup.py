"""The deterministic follow-up rewrite: which questions refer back, and what they carry."""

from __future__ import annotations

from charterflow.models import Message
from charterflow.services.conversations import llm_prompt, refers_back, rewrite_query


def _turn(question: str, query: str | None = None) -> Message:
    return Message(question=question, retrieval_query=query or question)


def test_questions_that_refer_back() -> None:
    assert refers_back("and what about its page limit?")
    assert refers_back("Who approves it?")
    assert refers_back("What about June?")
    assert refers_back("Why?")
    assert not refers_back("When is the Borealis grant application due?")
    assert not refers_back("What is the Falcon pilot budget?")


def test_a_follow_up_carries_the_latest_standalone_question_terms() -> None:
    earlier = [  # newest first
        _turn("and who approves it?", "and who approves it? Borealis grant application due"),
        _turn("When is the Borealis grant application due?"),
        _turn("What is the Falcon pilot budget?"),
    ]
    query = rewrite_query("and what about its page limit?", earlier)
    assert query == "and what about its page limit? Borealis grant application due"


def test_a_standalone_question_is_kept_as_asked() -> None:
    earlier = [_turn("When is the Borealis grant application due?")]
    assert rewrite_query("What is the Falcon pilot budget?", earlier) == (
        "What is the Falcon pilot budget?"
    )
    assert rewrite_query("and its page limit?", []) == "and its page limit?"


def test_terms_already_in_the_follow_up_are_not_repeated() -> None:
    earlier = [_turn("What is the Atlas report page limit?")]
    assert rewrite_query("and the Atlas deadline?", earlier) == (
        "and the Atlas deadline? report page limit"
    )


def test_the_model_sees_the_earlier_questions_only_for_a_follow_up() -> None:
    earlier = [_turn("When is the Borealis grant application due?")]
    prompt = llm_prompt("and its page limit?", earlier)
    assert "When is the Borealis grant application due?" in prompt
    assert prompt.endswith("Follow-up question: and its page limit?")
    assert llm_prompt("What is the Falcon budget?", earlier) == "What is the Falcon budget?"


def test_a_question_with_a_topic_of_its_own_is_not_a_follow_up() -> None:
    # Each of these once picked up the earlier topic ("there", "that", "one", "it").
    for question in (
        "How do I build a Python package?",
        "Is there a Java version of zlib?",
        "Is it possible to build a Python package without setuptools?",
        "Which files that are in /etc must be kept?",
        "How does one pronounce Debian?",
        "What is one of the reasons to choose Debian?",
        "What does this FAQ cover?",
        "What is zlib?",
    ):
        assert not refers_back(question), question
        earlier = [_turn("What exit codes does GNU sed return?")]
        assert rewrite_query(question, earlier) == question


def test_follow_ups_that_lean_on_the_conversation() -> None:
    for question in (
        "What does that mean?",
        "How do I do that?",
        "Which one is faster?",
        "What else?",
        "Can they be nested?",
        "Does the same apply to testing?",
        "And the maximum?",
        "What is the default?",
    ):
        assert refers_back(question), question
    earlier = [_turn("What exit codes does GNU sed return?")]
    assert (
        rewrite_query("And the maximum?", earlier) == "And the maximum? exit codes GNU sed return"
    )
