"""Charters drafted from a notebook's sources: templates, section drafts, versions, export.

A charter is about its title (its subject): only the documents about it are drafted from
(``subject_documents``: those with a passage that supports the title about as well as the best
one does). Each section of a template has a retrieval question and the phrases that name its
subject; drafting searches those documents with the title and the question together and keeps
whole sentences (``retrieval.quotes``) that name the section's subject ("The main risk is
..."), or else that support the question (the relevance rule of answers). Licence notices,
contact lines, tables of contents and headings never qualify.

- extractive (default): those sentences, each followed by its citation;
- ``LLM_URL``: the model writes the section from the passages holding those sentences only;
  sentences that cite no passage are dropped, so every sentence that remains carries its
  citations. If the model fails, the section is drafted extractively with a ``warning``.

A section no sentence supports says so (``status: unsupported``) instead of inventing text.
Every save (draft, title, section edit or redraft, restore) appends a version; sections it
did not change refer to the version holding their body (``SAME_AS``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import HTTPException, status
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from charterflow.models import Charter, CharterVersion
from charterflow.retrieval import llm, quotes
from charterflow.retrieval.answer import (
    Judge,
    extractive,
    model_or_extracts,
)
from charterflow.retrieval.citations import Answer
from charterflow.retrieval.embedders import Embedder, get_embedder, supports, terms, vector_cache
from charterflow.retrieval.search import search
from charterflow.retrieval.text import sentences
from charterflow.services.markdown import (
    MARKER,
    References,
    block,
    inline,
    markers,
    references_section,
    without_markers,
)
from charterflow.services.workspaces import lock_workspace
from charterflow.settings import Settings

UNSUPPORTED = "No passage in this notebook's sources supports this section."
SECTION_CANDIDATES = 12
SECTION_SENTENCES = 4
#: Passages searched for the charter's subject, to find the documents about it.
SUBJECT_CANDIDATES = 20
#: A document is about the subject if its best passage is this close to the best document's
#: (all-MiniLM-L6-v2 on the Debian corpus: the subject's own document leads the next by 0.08+).
SUBJECT_MARGIN = 0.05
#: How much a document's title counts beside its best passage in telling what it is about.
TITLE_WEIGHT = 0.5


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    #: What retrieval looks for (and what the model is asked to cover).
    query: str
    #: Phrases (regular expressions, case-insensitive) that mark a sentence as this section's
    #: subject ("The main risk is ..."), however far its meaning is from the question.
    keywords: tuple[str, ...] = ()

    def mentions(self, sentence: str) -> bool:
        return any(re.search(k, sentence, re.IGNORECASE) for k in self.keywords)


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    sections: tuple[SectionSpec, ...]

    def section(self, key: str) -> SectionSpec | None:
        return next((s for s in self.sections if s.key == key), None)


_S = SectionSpec
TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "product-charter",
            "Product charter",
            (
                _S(
                    "problem",
                    "Problem",
                    "What problem or need must be solved?",
                    (r"\bproblems?\b", r"\bpain points?\b", r"\bchallenges?\b"),
                ),
                _S(
                    "users",
                    "Users",
                    "Who are the users and customers?",
                    (r"\busers?\b", r"\bcustomers?\b", r"\baudiences?\b", r"\bpersonas?\b"),
                ),
                _S(
                    "goals",
                    "Goals",
                    "What are the goals and objectives?",
                    (r"\bgoals?\b", r"\bobjectives?\b", r"\baims?\b"),
                ),
                _S(
                    "scope",
                    "Scope",
                    "What is in scope and included?",
                    (r"(?<!not )\bin scope\b", r"\bscope (?:of|includes|covers)\b"),
                ),
                _S(
                    "out-of-scope",
                    "Out of scope",
                    "What is out of scope, excluded or not done?",
                    (r"\bout of scope\b", r"\bnot in scope\b", r"\bexcluded\b", r"\bnon-goals?\b"),
                ),
                _S(
                    "risks",
                    "Risks",
                    "What are the risks, threats and dependencies?",
                    (r"\brisks?\b", r"\bthreats?\b", r"\bdependenc(?:y|ies)\b"),
                ),
                _S(
                    "success-measures",
                    "Success measures",
                    "How is success measured: metrics and targets?",
                    (r"\bsuccess\b", r"\bmetrics?\b", r"\bKPIs?\b", r"\bmeasured\b"),
                ),
            ),
        ),
        Template(
            "sop",
            "Standard operating procedure",
            (
                _S(
                    "purpose",
                    "Purpose",
                    "What is the purpose of the procedure?",
                    (r"\bpurpose\b", r"\bthis procedure (?:is|exists)\b"),
                ),
                _S(
                    "scope",
                    "Scope",
                    "What does the procedure apply to and cover?",
                    (r"\bscope\b", r"\bapplies to\b"),
                ),
                _S(
                    "roles",
                    "Roles",
                    "Which roles are responsible, and for what?",
                    (r"\broles?\b", r"\bresponsib", r"\bowners?\b", r"\baccountable\b"),
                ),
                _S(
                    "steps",
                    "Steps",
                    "What are the steps of the procedure?",
                    (r"\bsteps?\b", r"^(?:first|then|next|finally)\b"),
                ),
                _S(
                    "checks",
                    "Checks",
                    "Which checks, reviews and verifications apply?",
                    (r"\bchecks?\b", r"\bverif", r"\breview", r"\baudit", r"\bapprov"),
                ),
            ),
        ),
    )
}
TemplateKey = Literal["product-charter", "sop"]


def _only_cited_sentences(result: Answer) -> Answer:
    """The model's section without the sentences that cite nothing, renumbered."""
    text = result.answer
    kept = " ".join(text[s:e] for s, e in sentences(text) if MARKER.search(text[s:e]))
    refs = References()
    cited = [asdict(c) for c in result.citations]
    body = refs.renumber(kept, cited)
    by_key = {(c.document_id, c.start, c.end): c for c in result.citations}
    result.answer = body
    result.citations = [by_key[(c["document_id"], c["start"], c["end"])] for c in refs.items]
    return result


def _judge(embedder: Embedder, spec: SectionSpec, query: str, named: bool) -> Judge:
    """A sentence belongs in the section if it is no boilerplate (licence, contact, contents)
    and, with ``named``, names the section's subject ("The main risk is ..."), else supports
    the section's ``query`` as answers are judged (``supports``, and the answers' sentence
    bar). ``similarity`` is to the query alone: the passages were found with the subject and
    the query together, in the subject's documents, so every sentence of them is near the
    subject; what sets a section's sentences apart is the section's question."""

    def judge(sentence: str, similarity: float) -> float | None:
        if quotes.boilerplate(sentence):
            return None
        if named:
            near = embedder.lexical or similarity >= embedder.min_similarity
            if not near or not spec.mentions(sentence):
                return None  # ("a tool for this purpose" names no procedure's purpose)
            return 1.0 + similarity
        return similarity if supports(embedder, query, sentence, similarity) else None

    return judge


def quoted_key(text: str) -> str:
    """What makes two quotes the same sentence, however they were wrapped or cased."""
    return quotes.collapse(text).casefold()


def _unused(judge: Judge, taken: frozenset[str]) -> Judge:
    """``judge``, refusing any sentence that a quote in ``taken`` already holds."""

    def unused(sentence: str, similarity: float) -> float | None:
        key = quoted_key(sentence)
        return None if any(key in quote for quote in taken) else judge(sentence, similarity)

    return unused


def subject_documents(db: Session, embedder: Embedder, notebook_id: str, subject: str) -> list[str]:
    """The documents of the notebook about ``subject`` (a charter's title, less the words that
    name a kind of document, such as "SOP" or "charter").

    Semantic embedders: the documents whose best passage for the subject, plus
    ``TITLE_WEIGHT`` times their title's similarity to it, comes within ``SUBJECT_MARGIN`` of
    the best document's. Word-overlap vectors rank a long passage low for a one-word subject,
    so with them the documents qualify whose passages found for the subject share at least
    half as many of its words as the best one's. Licence and contact passages never count.
    """
    topic = _topic(subject)
    wanted = set(terms(topic))
    best: dict[str, float] = {}
    titles: dict[str, str] = {}
    for hit in search(db, embedder, notebook_id, topic, limit=SUBJECT_CANDIDATES):
        if _mostly_boilerplate(hit.text):
            continue
        if embedder.lexical:
            share = len(wanted & set(terms(hit.text))) / max(len(wanted), 1)
            if share:
                best[hit.document_id] = max(best.get(hit.document_id, 0.0), share)
        elif supports(embedder, topic, hit.text, hit.similarity):
            best[hit.document_id] = max(best.get(hit.document_id, -1.0), hit.similarity)
            titles[hit.document_id] = hit.document_title
    if embedder.lexical:  # the documents with at least half as many of its words as the most
        return sorted(d for d, share in best.items() if share * 2 >= max(best.values()))
    if len(best) < 2:
        return sorted(best)
    # Two documents can both say much about a subject; the one named after it is about it.
    vectors = vector_cache.embed(embedder, [topic, *titles.values()])
    named = dict(zip(titles, (vectors[1:] @ vectors[0]).tolist(), strict=True))
    score = {d: sim + TITLE_WEIGHT * named[d] for d, sim in best.items()}
    top = max(score.values())
    return sorted(d for d, x in score.items() if x >= top - SUBJECT_MARGIN)


#: Words of a title that name the kind of document, not its subject.
_KINDS = re.compile(
    r"\b(?:SOPs?|standard operating procedures?|procedures?|product charters?|charters?|"
    r"drafts?|plans?|briefs?|templates?)\b",
    re.IGNORECASE,
)


def _topic(subject: str) -> str:
    """``subject`` without the words naming a kind of document (all of it if nothing is left)."""
    topic = " ".join(_KINDS.sub(" ", subject).split())
    return topic if terms(topic) else subject


def _mostly_boilerplate(text: str) -> bool:
    """Whether most of a passage's sentences are licence, contact or contents lines."""
    spans = quotes.units(text)
    flagged = sum(1 for u in spans if quotes.boilerplate(text[u.start : u.end]))
    return bool(spans) and flagged * 2 > len(spans)


def draft_section(
    db: Session,
    settings: Settings,
    notebook_id: str,
    template: Template,
    spec: SectionSpec,
    charter_title: str,
    query: str | None = None,
    documents: list[str] | None = None,
    taken: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One section drafted from the sentences that support its question (or ``query``) about
    the charter's subject (its title), from the documents on that subject only
    (``documents``: computed by ``subject_documents`` unless given), never quoting what
    ``taken`` holds (what the charter's earlier sections quote, ``quoted_key``)."""
    query = query or spec.query
    embedder = get_embedder(settings)
    if documents is None:
        documents = subject_documents(db, embedder, notebook_id, charter_title)
    section: dict[str, Any] = {"key": spec.key, "title": spec.title, "query": query}
    about = f"{_topic(charter_title)}: {query}"
    hits = (
        search(db, embedder, notebook_id, about, limit=SECTION_CANDIDATES, documents=documents)
        if documents
        else []
    )
    result = None
    if query == spec.query and spec.keywords:  # sentences naming the subject first
        named = _unused(_judge(embedder, spec, query, named=True), taken)
        result = extractive(embedder, query, hits, SECTION_SENTENCES, named)
    if result is None or not result.citations:
        judge = _unused(_judge(embedder, spec, query, named=False), taken)
        result = extractive(embedder, query, hits, SECTION_SENTENCES, judge)
    if not result.citations:
        return {
            **section,
            "body": UNSUPPORTED,
            "citations": [],
            "status": "unsupported",
            "mode": None,
            "model": None,
            "warning": None,
        }
    # The model sees only the passages holding a sentence that supports the section.
    used = {c.chunk_id for c in result.citations}
    passages = [h for h in hits if h.chunk_id in used]
    prompt = (
        f'Draft the "{spec.title}" section of the {template.title.lower()} '
        f'"{charter_title}" in at most {SECTION_SENTENCES + 1} sentences. {query}'
    )

    def write() -> Answer:
        drafted = _only_cited_sentences(llm.ask_llm(settings, prompt, passages))
        if not drafted.citations:
            raise llm.LLMError("its draft cited nothing")
        return drafted

    extracted = result
    result = model_or_extracts(settings, write, lambda: extracted, what="draft")
    return {
        **section,
        "body": result.answer,
        "citations": [asdict(c) for c in result.citations],
        "status": "drafted",
        "mode": result.mode,
        "model": result.model,
        "warning": result.warning,
    }


def draft(
    db: Session, settings: Settings, notebook_id: str, template: Template, title: str
) -> list[dict[str, Any]]:
    """Every section of ``template``, drafted from the documents about ``title``. A sentence
    serves one section only (the first that it supports): otherwise one passage near every
    section's question ("Purpose", "Scope" and "Steps" alike) fills them all with itself."""
    documents = subject_documents(db, get_embedder(settings), notebook_id, title)
    sections: list[dict[str, Any]] = []
    taken: frozenset[str] = frozenset()
    for spec in template.sections:
        section = draft_section(
            db, settings, notebook_id, template, spec, title, documents=documents, taken=taken
        )
        taken |= {quoted_key(c["text"]) for c in section["citations"]}
        sections.append(section)
    return sections


#: Bounds on what a charter's history can take (issue 26, item 4): every save stored the
#: whole charter as a version, so one large charter edited at the rate limit filled the disk.
MAX_CHARTER_BYTES = 1024 * 1024  # the title and sections, as stored (JSON)
MAX_VERSIONS = 100  # kept per charter; older ones are deleted as new ones are saved
#: A version's section that an earlier kept version already holds is stored as
#: ``{"key": ..., "same_as": n}``: version ``n`` holds its body whole (never a reference
#: itself), so 25 edits of one section beside a large one store the large one once.
SAME_AS = "same_as"


def stored_bytes(charter: Charter) -> int:
    """What the charter's title and sections take as stored JSON (one version's worth)."""
    sections = json.dumps(charter.sections, ensure_ascii=False, separators=(",", ":"))
    return len(charter.title.encode()) + len(sections.encode())


#: A kept version as candidates for sharing: its number, its stored entries, its whole sections.
Known = tuple[int, list[dict[str, Any]], list[dict[str, Any]]]


def compact(sections: list[dict[str, Any]], known: list[Known]) -> list[dict[str, Any]]:
    """``sections`` as a version stores them: each one equal to a section of a ``known``
    version becomes a reference to the version holding that body, the others stay whole."""
    out: list[dict[str, Any]] = []
    for section in sections:
        holder = next(
            (
                entry.get(SAME_AS, number)
                for number, stored, whole in known
                for entry, same in zip(stored, whole, strict=False)
                if entry["key"] == section["key"]
                and (same if SAME_AS in entry else entry) == section
            ),
            None,
        )
        out.append({"key": section["key"], SAME_AS: holder} if holder else dict(section))
    return out


def whole_sections(db: Session, version: CharterVersion) -> list[dict[str, Any]]:
    """The version's sections with every reference replaced by the body it names."""
    wanted = {e[SAME_AS] for e in version.sections if SAME_AS in e}
    rows = db.scalars(
        select(CharterVersion).where(
            CharterVersion.charter_id == version.charter_id, CharterVersion.number.in_(wanted)
        )
    )
    holders = {v.number: {s["key"]: s for s in v.sections} for v in rows} if wanted else {}
    return [
        dict(holders[e[SAME_AS]][e["key"]]) if SAME_AS in e else dict(e) for e in version.sections
    ]


def _forget_before(db: Session, charter_id: str, cutoff: int) -> None:
    """Delete the versions numbered ``cutoff`` or less; a kept version referring to a body
    one of them holds gets that body (the oldest such one), later ones refer to it."""
    doomed = db.scalars(
        select(CharterVersion).where(
            CharterVersion.charter_id == charter_id, CharterVersion.number <= cutoff
        )
    ).all()
    if not doomed:
        return
    bodies = {(v.number, s["key"]): s for v in doomed for s in v.sections if SAME_AS not in s}
    moved: dict[tuple[int, str], int] = {}
    kept = db.scalars(
        select(CharterVersion)
        .where(CharterVersion.charter_id == charter_id, CharterVersion.number > cutoff)
        .order_by(CharterVersion.number)
    ).all()
    for version in kept:
        entries = []
        for entry in version.sections:
            old = (entry.get(SAME_AS, cutoff + 1), entry["key"])
            if old[0] <= cutoff:
                if old in moved:
                    entry = {"key": entry["key"], SAME_AS: moved[old]}
                else:
                    entry, moved[old] = dict(bodies[old]), version.number
            entries.append(entry)
        if entries != version.sections:
            version.sections = entries
    db.execute(
        delete(CharterVersion).where(
            CharterVersion.charter_id == charter_id, CharterVersion.number <= cutoff
        )
    )
    db.flush()


def record_version(
    db: Session,
    charter: Charter,
    user_id: str | None,
    change: str,
    known: Sequence[tuple[CharterVersion, list[dict[str, Any]]]] = (),
) -> CharterVersion:
    """Keep the charter as it now is as version ``charter.version`` (flushed); 409 when it
    is larger than ``MAX_CHARTER_BYTES``. Only the newest ``MAX_VERSIONS`` are kept.
    Sections equal to one of a ``known`` version (with its whole sections) are stored as
    references (``compact``)."""
    size = stored_bytes(charter)
    if size > MAX_CHARTER_BYTES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"The charter would take {size} bytes, more than {MAX_CHARTER_BYTES}; shorten it",
        )
    cutoff = charter.version - MAX_VERSIONS
    _forget_before(db, charter.id, cutoff)
    # Read after ``_forget_before``: the references of kept versions name kept versions only.
    usable = [(v.number, v.sections, whole) for v, whole in known if v.number > cutoff]
    version = CharterVersion(
        charter_id=charter.id,
        number=charter.version,
        title=charter.title,
        sections=compact([dict(s) for s in charter.sections], usable),
        change=change,
        created_by=user_id,
    )
    db.add(version)
    db.flush()
    return version


def save(
    db: Session,
    charter: Charter,
    user_id: str | None,
    change: str,
    apply: Callable[[Charter], None],
    restored: CharterVersion | None = None,
) -> CharterVersion:
    """Apply a change to the charter as its next version. The row is re-read locked
    (PostgreSQL), so concurrent saves apply one after the other to the latest sections and
    never take the same version number. Unchanged sections (and with ``restored``, those
    equal to that version's) refer to the version holding their body."""
    # The workspace first (the quota check takes it too), then the charter: the order a
    # workspace's deletion locks them in, so the two never wait on each other.
    lock_workspace(db, charter.workspace_id)
    db.refresh(charter, with_for_update=True)
    before = [dict(s) for s in charter.sections]
    known: list[tuple[CharterVersion, list[dict[str, Any]]]] = []
    previous = _version_row(db, charter.id, charter.version)
    if previous is not None:  # the charter as it stands is that version, whole
        known.append((previous, before))
    if restored is not None:
        known.append((restored, whole_sections(db, restored)))
    apply(charter)
    charter.version += 1
    return record_version(db, charter, user_id, change, known)


def _version_row(db: Session, charter_id: str, number: int) -> CharterVersion | None:
    return db.scalar(
        select(CharterVersion).where(
            CharterVersion.charter_id == charter_id, CharterVersion.number == number
        )
    )


def edited_citations(
    body: str,
    current: list[dict[str, Any]],
    policy: Literal["drop_unused", "keep"],
    given: list[dict[str, Any]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """A section's edited text and the citations it keeps (see ``SectionUpdate``).

    ``given`` (a list) replaces ``current``; an empty one also removes the text's ``[n]``
    (the older ``drop``). Otherwise ``keep`` keeps ``current`` as it is, and ``drop_unused``
    keeps only the citations the text cites, renumbered in the order it cites them, so no
    citation the new text does not use reaches the export. ValueError: a ``[n]`` naming no
    citation.
    """
    if given is not None and not given:
        return without_markers(body), []
    cited = current if given is None else given
    unknown = sorted(n for n in markers(body) if not 1 <= n <= len(cited))
    if unknown:
        raise ValueError(
            f"The text cites {', '.join(f'[{n}]' for n in unknown)}, which the section's "
            f"{len(cited)} citation(s) do not include"
        )
    if given is not None or policy == "keep":
        return body, list(cited)
    refs = References()
    text = refs.renumber(body, cited)
    return text, [dict(c) for c in refs.items]


def replace_section(sections: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """A new list (JSON columns track assignment, not mutation) with ``new`` in its place."""
    return [new if s["key"] == new["key"] else s for s in sections]


def to_markdown(charter: Charter) -> str:
    """The charter as Markdown: its sections, then references numbered across them."""
    template = TEMPLATES.get(charter.template)
    refs = References()
    lines = [
        f"# {inline(charter.title)}",
        "",
        f"_{template.title if template else charter.template} · version {charter.version}_",
        "",
    ]
    for section in charter.sections:
        lines += [f"## {inline(section['title'])}", ""]
        citations = section.get("citations") or []
        if section.get("status") == "unsupported":
            lines += [f"_{UNSUPPORTED}_", ""]
            continue
        body = refs.renumber(section.get("body", ""), citations)
        unreferenced = [
            refs.number(c)
            for n, c in enumerate(citations, start=1)
            if f"[{n}]" not in section.get("body", "")
        ]
        if unreferenced:
            body += " (see also " + " ".join(f"[{n}]" for n in unreferenced) + ")"
        lines += [block(body), ""]
    return "\n".join(lines + references_section(refs.items))
