"""Lexical search on PostgreSQL leaves the table's common terms out of its looser levels.

The frequencies come from ``ANALYZE`` (``pg_stats.most_common_elems`` of ``chunks.tsv``), so
these tests run on the real PostgreSQL and compare the same query before and after it. The
notebook holds 41 chunks: 40 say "widget report itemN" and one says "widget zebra quantum".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from charterflow.db import make_engine, make_session_factory
from charterflow.models import Chunk, Document, Notebook, User, Workspace
from charterflow.retrieval import search
from charterflow.retrieval.embedders import HashingEmbedder
from charterflow.retrieval.search import _pg_lexical, _tsquery_levels, _unquote
from charterflow.settings import Settings
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.api.conftest import BASE, migrated

COMMON = 40  # chunks with "widget report": fewer than autovacuum's analyse threshold of 50


@dataclass
class Notes:
    """A notebook of ``COMMON + 1`` chunks, and a way to open sessions on it."""

    settings: Settings
    notebook_id: str
    rare_id: str

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session on a new engine: the term frequencies are cached per engine."""
        engine = make_engine(self.settings)
        try:
            with make_session_factory(engine)() as db:
                yield db
        finally:
            engine.dispose()

    def analyse(self) -> None:
        engine = make_engine(self.settings)
        try:
            with engine.connect() as conn:
                conn.execute(text("ANALYZE chunks"))
                conn.commit()
        finally:
            engine.dispose()


@pytest.fixture
def notes(postgres_url: str, tmp_path: Path) -> Notes:
    settings = migrated(
        Settings(
            _env_file=None, database_url=postgres_url, upload_path=tmp_path / "uploads", **BASE
        )
    )
    embedder = HashingEmbedder()
    texts = [f"widget report item{i}" for i in range(COMMON)] + ["widget zebra quantum"]
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as db:
            user = User(email="terms@example.com", name="T", password_hash="x")
            db.add(user)
            db.flush()
            ws = Workspace(name="W", created_by=user.id)
            db.add(ws)
            db.flush()
            nb = Notebook(workspace_id=ws.id, title="N", created_by=user.id)
            db.add(nb)
            db.flush()
            doc = Document(
                workspace_id=ws.id, notebook_id=nb.id, title="D", filename="d.txt",
                media_type="text/plain", size_bytes=0, sha256="", storage_key=f"k/{nb.id}",
                status="ready",
            )  # fmt: skip
            db.add(doc)
            db.flush()
            chunks = [
                Chunk(
                    document_id=doc.id,
                    notebook_id=nb.id,
                    workspace_id=ws.id,
                    ordinal=i,
                    text=body,
                    start=0,
                    end=len(body),
                    embedding=vector,
                    embedding_model=embedder.name,
                )
                for i, (body, vector) in enumerate(zip(texts, embedder.embed(texts), strict=True))
            ]
            db.add_all(chunks)
            db.commit()
            return Notes(settings, nb.id, chunks[-1].id)
    finally:
        engine.dispose()


def lexical(notes: Notes, query: str) -> list[str]:
    with notes.session() as db:
        return _pg_lexical(db, notes.notebook_id, query, 50)


@pytest.mark.services
def test_a_term_in_every_chunk_stops_matching_everything_after_analyse(notes: Notes) -> None:
    # Never analysed: no frequencies, so "widget" stays in the any-term level, as before.
    assert len(lexical(notes, "widget zebra orchid")) == COMMON + 1
    notes.analyse()
    # Now the any-term level is "zebra | orchid": only the chunk with a rare term matches.
    assert lexical(notes, "widget zebra orchid") == [notes.rare_id]


@pytest.mark.services
def test_rare_terms_still_find_their_chunk(notes: Notes) -> None:
    notes.analyse()
    assert lexical(notes, "zebra quantum") == [notes.rare_id]
    with notes.session() as db:
        hits = search.search(db, HashingEmbedder(), notes.notebook_id, "quantum zebra")
        assert hits[0].chunk_id == notes.rare_id
        assert hits[0].lexical_rank == 1


@pytest.mark.services
def test_the_all_terms_level_keeps_common_terms(notes: Notes) -> None:
    notes.analyse()
    # Both terms are common: only the strict level runs, and it still needs both of them.
    found = lexical(notes, "widget report")
    assert len(found) == COMMON
    assert notes.rare_id not in found


@pytest.mark.services
def test_loose_levels_rank_only_a_bounded_pool(
    notes: Notes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "LOOSE_LEVEL_POOL", 5)
    # Not analysed, so "report | orchid" matches 40 chunks; only 5 of them are ranked.
    assert len(lexical(notes, "report orchid")) == 5
    # The all-terms level is not bounded.
    assert len(lexical(notes, "report")) == COMMON


def test_looser_levels_use_only_the_uncommon_terms() -> None:
    a, b, c, d = "'a'", "'b'", "'c'", "'d'"
    assert _tsquery_levels([a, b, c, d], [b, c, d]) == [
        "'a' & 'b' & 'c' & 'd'",
        "('c' & 'd') | ('b' & 'd') | ('b' & 'c')",
        "'b' | 'c' | 'd'",
    ]
    assert _tsquery_levels([a, b, c], [c]) == ["'a' & 'b' & 'c'", "'c'"]
    assert _tsquery_levels([a, b], []) == ["'a' & 'b'"]
    assert _tsquery_levels([a], [a]) == ["'a'"]  # no level twice


def test_tsquery_literals_unquote_to_pg_stats_lexemes() -> None:
    assert _unquote("'zebra'") == "zebra"
    assert _unquote("'it''s'") == "it's"
