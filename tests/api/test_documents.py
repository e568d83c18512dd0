"""Uploads: type from content, exact size limit, streaming, and row/object consistency."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator

import docx
import pytest
from charterflow.models import Document
from fpdf import FPDF
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.api.conftest import API, Account, Api
from tests.ingest.conftest import wait_settled
from tests.ingest.samples import pptx_bytes, xlsx_bytes
from tests.support.processes import free_port

MiB = 1024 * 1024


def _pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Charter: ship the studio.")
    return bytes(pdf.output())


def _docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Standard operating procedure")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


SAMPLES = {
    "charter.pdf": (_pdf(), "application/pdf"),
    "sop.docx": (
        _docx(),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "notes.txt": ("Plain notes, naïve café.\n".encode(), "text/plain"),
    "readme.md": (b"# Title\n\n- item\n", "text/markdown"),
    "page.html": (b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", "text/html"),
    "table.csv": (b"name,role\nada,owner\ngrace,editor\n", "text/csv"),
    # The name lies; the content decides.
    "markdown-really.bin": (
        b"## Heading\n\nSome **bold** text and a [link](http://x).\n",
        "text/markdown",
    ),
}


def _rows(api: Api) -> int:
    with Session(api.engine) as db:
        return int(db.scalar(select(func.count()).select_from(Document)) or 0)


@pytest.fixture(scope="module")
def owner(api: Api) -> Account:
    return api.register("Owner")


@pytest.fixture(scope="module")
def notebook_id(api: Api, owner: Account) -> str:
    return str(api.notebook(owner)["id"])


@pytest.mark.parametrize("name", list(SAMPLES))
def test_upload_detects_type_records_hash_and_round_trips(
    api: Api, owner: Account, notebook_id: str, name: str
) -> None:
    data, media_type = SAMPLES[name]
    r = api.upload(owner, notebook_id, name, data)
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["status"] == "pending"
    assert doc["media_type"] == media_type
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["size_bytes"] == len(data)
    assert doc["filename"] == name
    fetched = api.client.get(f"{API}/documents/{doc['id']}", headers=owner.headers).json()
    # These may move on in the meantime.
    ingestion = {"status", "stage", "progress", "error", "chunk_count", "updated_at"}
    assert {k: v for k, v in fetched.items() if k not in ingestion} == {
        k: v for k, v in doc.items() if k not in ingestion
    }
    content = api.client.get(f"{API}/documents/{doc['id']}/content", headers=owner.headers)
    assert content.status_code == 200
    assert content.content == data
    assert content.headers["content-type"].split(";")[0] == media_type
    assert content.headers["content-disposition"].startswith("attachment;")


def test_upload_enqueues_ingestion_of_the_committed_row(
    api: Api, owner: Account, notebook_id: str
) -> None:
    seen: list[str] = []

    class Recorder:
        def enqueue_ingest(self, document_id: str) -> None:
            with Session(api.engine) as db:  # the row is committed before the job is queued
                assert db.get(Document, document_id) is not None
            seen.append(document_id)

    original = api.app.state.jobs
    api.app.state.jobs = Recorder()
    try:
        r = api.upload(owner, notebook_id, "a.txt", b"hello")
    finally:
        api.app.state.jobs = original
    assert r.status_code == 202
    assert seen == [r.json()["id"]]


def test_file_names_are_sanitised_and_titles_default_to_them(
    api: Api, owner: Account, notebook_id: str
) -> None:
    r = api.upload(owner, notebook_id, "../../etc/passwd <x>.txt", b"text")
    assert r.status_code == 202, r.text
    assert r.json()["filename"] == "passwd _x_.txt"
    assert r.json()["title"] == "passwd _x_"
    titled = api.upload(owner, notebook_id, "b.txt", b"text", title="  Board notes ")
    assert titled.json()["title"] == "Board notes"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("report.pdf", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8),  # an executable
        ("archive.docx", b"PK\x03\x04" + b"\x00" * 64),  # a broken zip
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        ("latin1.txt", "café".encode("latin-1")),  # not UTF-8
        ("empty.txt", b""),
    ],
)
def test_unsupported_content_is_415_and_stores_nothing(
    api: Api, owner: Account, notebook_id: str, name: str, data: bytes
) -> None:
    keys, rows = api.stored_keys(), _rows(api)
    r = api.upload(owner, notebook_id, name, data)
    assert r.status_code == 415, r.text
    assert (api.stored_keys(), _rows(api)) == (keys, rows)


def test_zip_without_a_word_document_is_415(api: Api, owner: Account, notebook_id: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hi")
    assert api.upload(owner, notebook_id, "x.docx", buf.getvalue()).status_code == 415


def _multipart(total: int, boundary: str = "cfboundary") -> Iterator[bytes]:
    """A multipart body with one ``total``-byte file, generated in 1 MiB blocks."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    block = b"a" * MiB
    for _ in range(total // MiB):
        yield block
    yield b"a" * (total % MiB)
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_60_mib_upload_is_413_and_leaves_no_object_and_no_row(
    api: Api, owner: Account, notebook_id: str, declared: bool
) -> None:
    size = 60 * MiB
    headers = {**owner.headers, "Content-Type": "multipart/form-data; boundary=cfboundary"}
    if declared:
        headers["Content-Length"] = str(sum(len(p) for p in _multipart(size)))
    keys, rows = api.stored_keys(), _rows(api)
    r = api.client.post(
        f"{API}/notebooks/{notebook_id}/documents", content=_multipart(size), headers=headers
    )
    assert r.status_code == 413, r.text
    assert (api.stored_keys(), _rows(api)) == (keys, rows)


def test_limit_is_exact_on_the_file_itself(api: Api) -> None:
    with api.variant(max_upload_bytes=1000) as small:
        owner = small.register()
        nb = small.notebook(owner)["id"]
        assert small.upload(owner, nb, "ok.txt", b"a" * 1000).status_code == 202
        keys, rows = small.stored_keys(), _rows(small)
        r = small.upload(owner, nb, "big.txt", b"a" * 1001)
        assert r.status_code == 413
        assert (small.stored_keys(), _rows(small)) == (keys, rows)


def test_upload_while_storage_is_down_is_503_and_leaves_no_row(api: Api) -> None:
    if api.backend == "sqlite":
        blocker = api.settings.upload_path.parent / "not-a-directory"
        blocker.write_text("a file where the upload folder should be")
        down = {"upload_path": blocker / "uploads"}
    else:
        down = {"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}  # nothing listens
    with api.variant(**down) as broken:
        owner = broken.register()
        nb = broken.notebook(owner)["id"]
        rows = _rows(broken)
        r = broken.upload(owner, nb, "a.txt", b"hello")
        assert r.status_code == 503, r.text
        assert r.json() == {"detail": "Storage is unavailable; try again later"}
        assert _rows(broken) == rows


def test_a_failed_insert_removes_the_stored_object(
    api: Api, owner: Account, notebook_id: str
) -> None:
    """A trigger makes the database refuse the row after the object was written."""
    if api.backend == "sqlite":
        create = (
            "CREATE TRIGGER refuse BEFORE INSERT ON documents "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        drop = ["DROP TRIGGER refuse"]
    else:
        create_fn = (
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        create = "CREATE TRIGGER refuse BEFORE INSERT ON documents EXECUTE FUNCTION refuse()"
        drop = ["DROP TRIGGER refuse ON documents", "DROP FUNCTION refuse()"]
    keys, rows = api.stored_keys(), _rows(api)
    with api.engine.begin() as conn:
        if api.backend != "sqlite":
            conn.execute(text(create_fn))
        conn.execute(text(create))
    try:
        r = api.upload(owner, notebook_id, "a.txt", b"will not be kept")
    finally:
        with api.engine.begin() as conn:
            for statement in drop:
                conn.execute(text(statement))
    assert r.status_code == 500
    assert (api.stored_keys(), _rows(api)) == (keys, rows)


def test_delete_removes_row_and_object(api: Api, owner: Account, notebook_id: str) -> None:
    doc = api.upload(owner, notebook_id, "gone.txt", b"bye").json()
    key = f"documents/{doc['id']}"
    assert key in api.stored_keys()
    assert (
        api.client.delete(f"{API}/documents/{doc['id']}", headers=owner.headers).status_code == 204
    )
    assert key not in api.stored_keys()
    assert api.client.get(f"{API}/documents/{doc['id']}", headers=owner.headers).status_code == 404


def test_deleting_a_notebook_removes_its_documents_objects(api: Api, owner: Account) -> None:
    nb = api.notebook(owner)["id"]
    ids = [api.upload(owner, nb, f"{i}.txt", b"x").json()["id"] for i in range(2)]
    assert api.client.delete(f"{API}/notebooks/{nb}", headers=owner.headers).status_code == 204
    assert not {f"documents/{i}" for i in ids} & api.stored_keys()
    for doc_id in ids:
        r = api.client.get(f"{API}/documents/{doc_id}", headers=owner.headers)
        assert r.status_code == 404


def test_document_list_is_paginated_in_upload_order(api: Api, owner: Account) -> None:
    nb = api.notebook(owner)["id"]
    ids = [api.upload(owner, nb, f"{i}.txt", b"x").json()["id"] for i in range(5)]
    url = f"{API}/notebooks/{nb}/documents"
    first = api.client.get(url, params={"limit": 2}, headers=owner.headers).json()
    rest = api.client.get(url, params={"limit": 10, "offset": 2}, headers=owner.headers).json()
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    assert [d["id"] for d in first["items"] + rest["items"]] == [
        d["id"] for d in api.client.get(url, headers=owner.headers).json()["items"]
    ]
    assert sorted(d["id"] for d in first["items"] + rest["items"]) == sorted(ids)


def test_a_slide_or_sheet_number_is_the_citations_page(api: Api, owner: Account) -> None:
    nb = api.notebook(owner)["id"]
    deck = pptx_bytes(
        [["Kickoff"], ["Depot audit", "The Harwich depot audit found nine expired extinguishers."]]
    )
    book = xlsx_bytes({"Fleet": [["van", "depot"]], "Mileage": [["van", "miles"], ["V7", 91234]]})
    ids = [
        api.upload(owner, nb, "deck.pptx", deck).json()["id"],
        api.upload(owner, nb, "fleet.xlsx", book).json()["id"],
    ]
    docs = wait_settled(api, owner, ids)
    assert [docs[i]["status"] for i in ids] == ["ready", "ready"], docs
    media = {docs[i]["media_type"] for i in ids}
    assert media == {
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    for question, title, page in [
        ("How many expired extinguishers did the Harwich depot audit find?", "deck", 2),
        ("How many miles has van V7 driven?", "fleet", 2),
    ]:
        r = api.client.post(
            f"{API}/notebooks/{nb}/ask", json={"question": question}, headers=owner.headers
        )
        cited = r.json()["citations"][0]
        assert (cited["document_title"], cited["page"]) == (title, page), r.json()
