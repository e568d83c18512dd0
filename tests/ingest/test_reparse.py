"""Documents stored by the old, line-by-line parser are parsed again (``charterflow reindex``,
workers at start), and the citations into them follow: real SQLite, real files, the real
screen FAQ (tests/ingest/documents)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from charterflow import cli
from charterflow.ingest.blocks import HEADING_SEPARATOR
from charterflow.ingest.parsers import PARSER_VERSION, normalize
from charterflow.ingest.pipeline import Outcome, ingest
from charterflow.ingest.reparse import Locator, reparse_stale
from charterflow.models import (
    Charter,
    CharterVersion,
    Chunk,
    Conversation,
    Document,
    Message,
    Note,
    new_id,
    utcnow,
)
from charterflow.retrieval.search import search
from charterflow.retrieval.text import SEGMENTER_VERSION
from charterflow.services import filetypes
from sqlalchemy import select, update

from tests.ingest.test_pipeline import add_document, document, make_ctx

FAQ = (Path(__file__).parent / "documents" / "screen-FAQ-excerpt.txt").read_bytes()
#: A sentence that the FAQ wraps over three lines (so the old text has newlines in it).
QUOTE_START = "Screen always parses"
QUOTE_END = "(CTRL-A)."


def _as_before_issue_24(ctx, doc_id: str) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    """Make the document look stored by the old parser: its text normalised line by line,
    one chunk per 1000 characters, no parser version; returns the old text and a citation
    of a sentence that spans line breaks in it."""
    old = normalize(FAQ.decode())
    start = old.index(QUOTE_START)
    end = old.index(QUOTE_END, start) + len(QUOTE_END)
    assert "\n" in old[start:end]
    with ctx.session_factory() as db:
        model = db.scalar(select(Chunk.embedding_model).where(Chunk.document_id == doc_id))
        vector = db.scalar(select(Chunk.embedding).where(Chunk.document_id == doc_id))
        db.query(Chunk).filter(Chunk.document_id == doc_id).delete()
        doc = db.get(Document, doc_id)
        assert doc is not None
        ids = []
        for ordinal, at in enumerate(range(0, len(old), 1000)):
            chunk = Chunk(
                id=new_id(),
                document_id=doc_id,
                notebook_id=doc.notebook_id,
                workspace_id=doc.workspace_id,
                ordinal=ordinal,
                text=old[at : at + 1000],
                start=at,
                end=min(at + 1000, len(old)),
                page=None,
                embedding=vector,
                embedding_model=model,
                sentence_embeddings=b"\x00" * 8,  # split by the old segmenter
                created_at=utcnow(),
            )
            db.add(chunk)
            ids.append(chunk.id)
        doc.parser_version = None
        db.commit()
    citation = {
        "document_id": doc_id,
        "document_title": "doc",
        "chunk_id": ids[start // 1000],
        "text": old[start:end],
        "start": start,
        "end": end,
        "page": None,
        "score": 0.5,
    }
    return old, citation


def _cite_everywhere(ctx, doc_id: str, citation: dict) -> None:  # type: ignore[no-untyped-def]
    other = {**citation, "document_id": "another-document", "start": 3, "end": 9}
    with ctx.session_factory() as db:
        doc = db.get(Document, doc_id)
        assert doc is not None
        conv = Conversation(workspace_id=doc.workspace_id, notebook_id=doc.notebook_id, title="t")
        db.add(conv)
        db.flush()
        db.add(
            Message(
                conversation_id=conv.id,
                question="q",
                retrieval_query="q",
                answer="a",
                mode="extractive",
                citations=[citation, other],
            )
        )
        db.add(
            Note(
                workspace_id=doc.workspace_id,
                notebook_id=doc.notebook_id,
                title="n",
                citations=[citation],
            )
        )
        charter = Charter(
            workspace_id=doc.workspace_id,
            notebook_id=doc.notebook_id,
            template="sop",
            title="c",
            sections=[{"key": "purpose", "text": "x", "citations": [citation]}],
        )
        db.add(charter)
        db.flush()
        db.add(
            CharterVersion(
                charter_id=charter.id,
                number=1,
                title="c",
                sections=charter.sections,
                change="draft",
            )
        )
        db.commit()


def _citations(ctx) -> list[dict]:  # type: ignore[no-untyped-def]
    with ctx.session_factory() as db:
        found = [c for m in db.scalars(select(Message)) for c in m.citations]
        found += [c for n in db.scalars(select(Note)) for c in n.citations]
        for owner in [*db.scalars(select(Charter)), *db.scalars(select(CharterVersion))]:
            found += [c for s in owner.sections for c in s["citations"]]
    return found


def test_reindex_parses_old_documents_again_and_moves_their_citations(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, FAQ, filetypes.TXT)
    assert ingest(ctx, doc_id) is Outcome.ready
    assert document(ctx, doc_id).parser_version == PARSER_VERSION
    _, citation = _as_before_issue_24(ctx, doc_id)
    _cite_everywhere(ctx, doc_id, citation)

    assert reparse_stale(ctx) == 1
    assert reparse_stale(ctx) == 0  # done: nothing stale any more
    doc = document(ctx, doc_id)
    assert (doc.status, doc.parser_version) == ("ready", PARSER_VERSION)
    with ctx.session_factory() as db:
        chunks = list(db.scalars(select(Chunk).where(Chunk.document_id == doc_id)))
    assert len(chunks) == doc.chunk_count
    assert all(c.sentence_embeddings is None for c in chunks)  # the old rows are gone
    assert any(c.heading and HEADING_SEPARATOR not in c.heading for c in chunks)
    by_id = {c.id: c for c in chunks}
    moved = [c for c in _citations(ctx) if c["document_id"] == doc_id]
    assert len(moved) == 4  # the turn, the note, the charter and its version
    for c in moved:
        assert c["text"] == (
            "Screen always parses the user input for its escape character (CTRL-A)."
        )
        holder = by_id[c["chunk_id"]]
        assert holder.start <= c["start"] < c["end"] <= holder.end
        assert holder.text[c["start"] - holder.start : c["end"] - holder.start] == c["text"]
    untouched = [c for c in _citations(ctx) if c["document_id"] == "another-document"]
    assert untouched == [{**citation, "document_id": "another-document", "start": 3, "end": 9}]


def test_a_document_reingested_meanwhile_is_left_alone(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, FAQ, filetypes.TXT)
    assert ingest(ctx, doc_id) is Outcome.ready
    with ctx.session_factory() as db:
        db.execute(update(Document).where(Document.id == doc_id).values(status="pending"))
        db.commit()
    assert reparse_stale(ctx) == 0


def test_the_cli_reindex_command_reparses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = make_ctx(tmp_path)
    doc_id = add_document(ctx, FAQ, filetypes.TXT)
    assert ingest(ctx, doc_id) is Outcome.ready
    _as_before_issue_24(ctx, doc_id)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:{tmp_path}/app.db")
    monkeypatch.setenv("UPLOAD_PATH", str(tmp_path / "uploads"))
    monkeypatch.setenv("JWT_SECRET", "test-signing-key-" + "k" * 32)
    monkeypatch.setattr(sys, "argv", ["charterflow", "reindex"])
    assert cli.main(["reindex"]) == 0
    doc = document(ctx, doc_id)
    assert doc.parser_version == PARSER_VERSION
    with ctx.session_factory() as db:
        versions = set(
            db.scalars(select(Chunk.sentence_version).where(Chunk.document_id == doc_id))
        )
    assert versions == {SEGMENTER_VERSION}  # the sentence vectors followed


def test_the_locator_finds_a_quote_whatever_its_spacing_and_hyphens() -> None:
    text = "The boot loader needs essential startup data. A small root is less prone to corruption."
    locator = Locator(text)
    start, end = locator.find("essential start-\nup data.", near=0)  # type: ignore[misc]
    assert text[start:end] == "essential startup data."
    # A quote whose middle is gone (a running header inside it) is placed by its start.
    span = locator.find(
        "A small root is less prone to corruption The Root Filesystem 7 than a large one.", near=40
    )
    assert span is not None
    assert text[span[0] : span[1]] == "A small root is less prone to corruption."
    assert locator.find("nothing of the sort", near=0) is None


def test_search_hits_carry_their_heading_path(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    faq = (Path(__file__).parent / "documents" / "debian-faq-excerpt.txt").read_bytes()
    doc_id = add_document(ctx, faq, filetypes.TXT)
    assert ingest(ctx, doc_id) is Outcome.ready
    with ctx.session_factory() as db:
        notebook_id = db.get(Document, doc_id).notebook_id  # type: ignore[union-attr]
        hits = search(db, ctx.embedder, notebook_id, "Debian free to use and redistribute")
    assert hits
    assert hits[0].heading == HEADING_SEPARATOR.join(
        ["Chapter 1. Definitions and overview", "1.2. What is Debian GNU/Linux?"]
    )
