"""Conversations: follow-up questions rewritten from earlier turns, and turns stored.

A follow-up ("and what about its page limit?") names its topic only through the earlier turns,
so retrieving with it alone finds whatever has a page limit. Without a language model the
rewrite is deterministic: a question that refers back (``refers_back``: a pronoun such as
*it*/*its*/*they* standing for something said before, an opening *and*/*what about*, no topic
of its own) gets the content words of the latest question that did not refer back appended
to it. Any other question is asked as it is, so it finds exactly what it finds in a new
conversation: an earlier topic never leaks into it. The stored turn keeps both the question
and the ``retrieval_query`` used, so the rewrite is visible and testable.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from charterflow.models import Conversation, Message, TurnStatus, utcnow
from charterflow.retrieval.answer import Answer, answer
from charterflow.retrieval.embedders import STOP_WORDS, get_embedder, terms
from charterflow.retrieval.search import Documents
from charterflow.services import audit
from charterflow.settings import Settings

DEFAULT_TITLE = "New conversation"
HISTORY_TURNS = 5
_WORDS = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")
#: Words that stand for something said before, wherever they are in the question.
_PRONOUNS = frozenset(
    """it its it's itself they them their theirs themselves he she his her him hers this these
    those former latter""".split()  # noqa: SIM905 - a readable word list
)
#: "it" that stands for nothing ("is it possible to ...", "it is recommended to ...").
_DUMMY_IT = re.compile(
    r"\b(?:is|was|isn't|wasn't|would|will) it (?:be )?(?:possible|necessary|safe|true|ok|okay|"
    r"recommended|better|worth|advisable|allowed|legal|required|a good idea|normal|common)\b|"
    r"\bit(?: is|'s) (?:possible|necessary|safe|true|ok|okay|recommended|better|worth|advisable|"
    r"allowed|legal|required|a good idea|normal|common)\b",
    re.IGNORECASE,
)
#: "that", "one", "this" refer back only in these uses ("what does that mean?", "which one?",
#: "how do I do that?"), not as a conjunction or relative ("the files that ...", "one of the
#: ...") nor for the documents themselves ("what does this FAQ cover?").
_BACK_REFERENCES = re.compile(
    r"^that\b|\bthat\s*[?.!]*$|\bthat\s+(?:mean|means|work|works|happen|happens|apply|"
    r"applies|one|ones|file|files|option|options|package|command|step|version|case|way|thing|"
    r"part|directory|field|setting|error|problem|tool)\b|"
    r"\b(?:which|that|this|the other|another|the same|the first|the second|the last)\s+ones?\b|"
    r"\bthe same\s*[?.!]*$|\bthe same\s+(?:apply|applies|hold|holds|work|works|go|goes)\b|"
    r"\b(?:what|anything|something|who|where) else\b",
    re.IGNORECASE,
)
_ABOUT_THE_DOCUMENTS = re.compile(
    r"\b(?:this|these)\s+(?:documents?|faqs?|guides?|manuals?|standards?|specifications?|"
    r"specs?|pages?|sections?|chapters?|notebooks?|sources?|files? here)\b",
    re.IGNORECASE,
)
_OPENERS = re.compile(r"^(?:and|but|also|what about|how about)\b", re.IGNORECASE)
#: A question of one content word leans on the conversation only if that word names a
#: property of something ("the maximum?", "and the default?"), not a subject ("what is zlib?").
_PROPERTIES = frozenset(
    """default maximum minimum max min limit limits size length price cost version versions
    license licence deadline date author authors owner owners purpose example examples syntax
    reason reasons difference alternative alternatives format value values type types name
    number count option options requirement requirements exception exceptions meaning status
    weight priority order location path""".split()  # noqa: SIM905 - a readable word list
)


def refers_back(question: str) -> bool:
    """Whether ``question`` leans on an earlier turn for its topic: it opens with "and" or
    "what about", has a pronoun standing for something said before ("its page limit", not
    the "it" of "is it possible"), or has no topic of its own (no content word, or a single
    one naming a property: "and the maximum?")."""
    stripped = question.strip()
    if _OPENERS.match(stripped):
        return True
    plain = _ABOUT_THE_DOCUMENTS.sub(" ", _DUMMY_IT.sub(" ", stripped))
    words = {w.lower() for w in _WORDS.findall(plain)}
    if words & _PRONOUNS or _BACK_REFERENCES.search(plain):
        return True
    content = terms(stripped)
    return not content or (len(content) == 1 and content[0] in _STEMMED_PROPERTIES)


_STEMMED_PROPERTIES = frozenset(t for w in _PROPERTIES for t in terms(w))
_REFERS_BACK = _PRONOUNS | {"that", "one", "ones", "else", "same"}


def _content_words(text: str) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for word in _WORDS.findall(text):
        key = word.lower()
        if key in STOP_WORDS or key in _REFERS_BACK or key in seen:
            continue
        seen.add(key)
        out.append(word)
    return out


def rewrite_query(question: str, earlier: list[Message]) -> str:
    """The retrieval query for ``question`` given the ``earlier`` turns (newest first)."""
    if not earlier or not refers_back(question):
        return question
    anchor = next((m.question for m in earlier if not refers_back(m.question)), None)
    source = anchor if anchor is not None else earlier[0].retrieval_query
    have = set(terms(question))
    carried = [w for w in _content_words(source) if not set(terms(w)) <= have]
    return f"{question} {' '.join(carried)}".strip() if carried else question


def recent_turns(db: Session, conversation_id: str) -> list[Message]:
    """The latest complete turns of a conversation, newest first."""
    return list(
        db.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.status == TurnStatus.complete.value,
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(HISTORY_TURNS)
        )
    )


def llm_prompt(question: str, earlier: list[Message]) -> str:
    """What the model is asked: the follow-up with the earlier questions it refers back to."""
    if not earlier or not refers_back(question):
        return question
    before = "\n".join(f"- {m.question}" for m in reversed(earlier))
    return f"Earlier questions in this conversation:\n{before}\nFollow-up question: {question}"


def store_turn(
    db: Session,
    conversation: Conversation,
    *,
    question: str,
    retrieval_query: str,
    result: Answer,
    status: TurnStatus,
    timings: dict[str, float],
    user_id: str | None,
) -> Message:
    """Add the turn (and title an untitled conversation after its first question)."""
    message = Message(
        conversation_id=conversation.id,
        question=question,
        retrieval_query=retrieval_query,
        answer=result.answer,
        mode=result.mode,
        model=result.model,
        status=status.value,
        warning=result.warning,
        citations=[asdict(c) for c in result.citations],
        timings={k: round(v, 1) for k, v in timings.items()},
        created_by=user_id,
    )
    db.add(message)
    if conversation.title == DEFAULT_TITLE:
        conversation.title = question.strip()[:80] or DEFAULT_TITLE
    conversation.updated_at = utcnow()  # a new turn moves the conversation up the list
    db.flush()
    return message


def ask(
    db: Session,
    request: Request,
    settings: Settings,
    conversation: Conversation,
    question: str,
    top_k: int,
    user_id: str,
    documents: Documents = None,
) -> Message:
    """Answer ``question`` as the next turn of ``conversation`` and store it (one commit);
    with ``documents``, from those documents of the notebook only."""
    started = time.perf_counter()
    earlier = recent_turns(db, conversation.id)
    query = rewrite_query(question, earlier)
    result = answer(
        db,
        settings,
        get_embedder(settings),
        conversation.notebook_id,
        query,
        top_k,
        prompt=llm_prompt(question, earlier),
        documents=documents,
    )
    timings = {"total_ms": (time.perf_counter() - started) * 1000}
    message = store_turn(
        db,
        conversation,
        question=question,
        retrieval_query=query,
        result=result,
        status=TurnStatus.complete,
        timings=timings,
        user_id=user_id,
    )
    record_ask(db, request, conversation, message, user_id)
    db.commit()
    return message


def record_ask(
    db: Session, request: Request, conversation: Conversation, message: Message, user_id: str
) -> None:
    audit.record(
        db,
        request,
        "conversation.ask",
        target_type="conversation",
        target_id=conversation.id,
        workspace_id=conversation.workspace_id,
        actor_id=user_id,
        message_id=message.id,
        mode=message.mode,
        status=message.status,
    )
