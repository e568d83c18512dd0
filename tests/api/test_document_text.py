"""A document's extracted text through the API: stitched from overlapping chunks at their
offsets, paged in bounded windows, with page starts; a citation's paragraph by its offsets."""

from __future__ import annotations

from typing import Any

import pytest
from charterflow.models import Chunk, Document
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.api.conftest import API, Account, Api
from tests.ingest.conftest import wait_settled
from tests.ingest.samples import PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3, pdf

# Paragraphs long enough that the text needs several overlapping chunks.
PARAGRAPHS = [
    "Harbour operations handbook",
    "Tugs are assigned by the duty pilot. " * 12
    + "The pilot boards the vessel at the outer buoy, never inside the breakwater.",
    "Mooring lines are inspected every morning at seven. " * 10
    + "A frayed line is replaced before the next tide, and the replacement is logged.",
    ("Fuel is delivered by barge on Wednesdays. " * 14).strip(),
    "Visitors sign in at the gatehouse and wear a high-visibility vest on the quay.",
]
TEXT = "\n\n".join(PARAGRAPHS)


@pytest.fixture(scope="module")
def owner(api: Api) -> Account:
    return api.register("Hana")


@pytest.fixture(scope="module")
def docs(api: Api, owner: Account) -> dict[str, Any]:
    ws = api.client.post(f"{API}/workspaces", json={"name": "Port"}, headers=owner.headers)
    nb = api.notebook(owner, ws.json()["id"])["id"]
    text_doc = api.client.post(
        f"{API}/notebooks/{nb}/documents/text",
        json={"title": "Harbour", "text": TEXT},
        headers=owner.headers,
    ).json()
    pdf_doc = api.upload(owner, nb, "falcon.pdf", pdf([PDF_PAGE_1, PDF_PAGE_2, PDF_PAGE_3])).json()
    settled = wait_settled(api, owner, [text_doc["id"], pdf_doc["id"]])
    assert {d["status"] for d in settled.values()} == {"ready"}, settled
    return {"ws": ws.json()["id"], "text": text_doc["id"], "pdf": pdf_doc["id"]}


def _text(api: Api, who: Account, doc: str, **params: Any) -> Any:
    return api.client.get(f"{API}/documents/{doc}/text", params=params, headers=who.headers)


def _chunks(api: Api, doc: str) -> list[Chunk]:
    with Session(api.engine) as db:
        return list(db.scalars(select(Chunk).where(Chunk.document_id == doc)))


def test_the_text_holds_every_chunk_at_its_offsets(
    api: Api, owner: Account, docs: dict[str, Any]
) -> None:
    chunks = _chunks(api, docs["text"])
    assert len(chunks) > 2  # overlapping chunks, so stitching is exercised
    body = _text(api, owner, docs["text"], limit=100_000).json()
    text = body["text"]
    assert body["offset"] == 0
    assert body["length"] == len(text) == max(c.end for c in chunks)
    assert body["next_offset"] is None
    assert body["clipped_end"] is False
    assert body["pages"] == []  # plain text has no pages
    for c in chunks:
        assert text[c.start : c.end] == c.text
    assert text.split("\n\n") == PARAGRAPHS


def test_small_windows_page_through_the_same_text(
    api: Api, owner: Account, docs: dict[str, Any]
) -> None:
    whole = _text(api, owner, docs["text"], limit=100_000).json()["text"]
    parts, offset, windows = [], 0, 0
    while offset is not None:
        body = _text(api, owner, docs["text"], offset=offset, limit=500).json()
        assert body["offset"] == offset
        assert 0 < len(body["text"]) <= 500
        parts.append(body["text"])
        offset = body["next_offset"]
        windows += 1
        assert windows < 100
    assert "".join(parts) == whole
    assert windows >= len(whole) // 500


def test_a_pdf_gives_where_each_page_begins(api: Api, owner: Account, docs: dict[str, Any]) -> None:
    body = _text(api, owner, docs["pdf"]).json()
    assert [p["page"] for p in body["pages"]] == [1, 2, 3]
    text = body["text"]
    for page, first_words in zip(
        body["pages"], ("Falcon launch plan", "Budget.", "Risks."), strict=True
    ):
        assert text[page["start"] :].startswith(first_words)
    for c in _chunks(api, docs["pdf"]):
        assert text[c.start : c.end] == c.text
        starts = [p["start"] for p in body["pages"] if p["page"] == c.page]
        assert starts
        assert starts[0] <= c.start


def test_a_citations_paragraph_is_the_block_around_its_offsets(
    api: Api, owner: Account, docs: dict[str, Any]
) -> None:
    whole = _text(api, owner, docs["text"], limit=100_000).json()["text"]
    sentence = "A frayed line is replaced before the next tide, and the replacement is logged."
    start = whole.index(sentence)
    body = _text(api, owner, docs["text"], start=start, end=start + len(sentence)).json()
    paragraph = next(p for p in whole.split("\n\n") if sentence in p)
    assert body["text"] == paragraph
    assert body["offset"] == whole.index(paragraph)
    assert body["text"][start - body["offset"] :].startswith(sentence)
    assert body["clipped_start"] is False
    assert body["clipped_end"] is False
    assert body["next_offset"] is None
    # A span across two paragraphs gets both; the first paragraph's heading alone is a block.
    two = whole.index("Visitors sign in")
    both = _text(api, owner, docs["text"], start=two - 30, end=two + 8).json()
    assert both["text"].endswith(PARAGRAPHS[-1])
    assert "\n\n" in both["text"]
    title = _text(api, owner, docs["text"], start=0, end=7).json()
    assert title["text"] == "Harbour operations handbook"


def test_bad_offsets_are_400_and_an_unfinished_document_409(
    api: Api, owner: Account, docs: dict[str, Any]
) -> None:
    length = _text(api, owner, docs["text"]).json()["length"]
    for params in (
        {"start": 10},
        {"end": 10},
        {"start": 20, "end": 10},
        {"start": 0, "end": length + 1},
        {"offset": length + 1},
    ):
        r = _text(api, owner, docs["text"], **params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["detail"]
    for params in ({"offset": -1}, {"limit": 0}, {"limit": 100_001}, {"start": "x", "end": 2}):
        assert _text(api, owner, docs["text"], **params).status_code == 422, params
    with Session(api.engine) as db:
        db.execute(update(Document).where(Document.id == docs["pdf"]).values(status="processing"))
        db.commit()
    try:
        r = _text(api, owner, docs["pdf"])
        assert r.status_code == 409
        assert "processing" in r.json()["detail"]
    finally:
        with Session(api.engine) as db:
            db.execute(update(Document).where(Document.id == docs["pdf"]).values(status="ready"))
            db.commit()


def test_strangers_get_404_and_viewers_read(api: Api, owner: Account, docs: dict[str, Any]) -> None:
    stranger = api.register("Stan")
    assert _text(api, stranger, docs["text"]).status_code == 404
    assert _text(api, stranger, "0" * 32).status_code == 404
    viewer = api.register("Vic")
    api.add_member(owner, docs["ws"], viewer, "viewer")
    r = _text(api, viewer, docs["text"], start=0, end=7)
    assert r.status_code == 200
    assert r.json()["text"] == "Harbour operations handbook"
