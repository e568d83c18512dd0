"""Issue 26, item 9: citations given by clients are resolved against the notebook's passages.

Notes and section edits accepted any ``document_id``/``chunk_id``/``text``/``document_title``,
other workspaces' chunk ids included: a fabricated "Board minutes (CONFIDENTIAL), page 3"
showed as a real source in the UI and the export."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import API, Account, Api
from tests.api.test_charters import BRIEF
from tests.ingest.conftest import wait_settled

FORGED = {"document_title": "Board minutes (CONFIDENTIAL)", "page": 3, "text": "We agreed to sell."}


def _ready_notebook(api: Api, who: Account, name: str, data: bytes) -> dict[str, Any]:
    nb = api.notebook(who)
    doc = api.upload(who, nb["id"], name, data).json()
    assert wait_settled(api, who, [doc["id"]])[doc["id"]]["status"] == "ready"
    return nb


def _real_citation(api: Api, who: Account, nb: str) -> dict[str, Any]:
    r = api.client.get(f"{API}/notebooks/{nb}/search", params={"q": "paper"}, headers=who.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["items"][0])


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    owner, stranger = api.register("Cited"), api.register("Elsewhere")
    nb = _ready_notebook(api, owner, "brief.txt", BRIEF)
    theirs = _ready_notebook(api, stranger, "minutes.txt", b"We agreed to sell the building.\n")
    return {
        "owner": owner,
        "nb": nb["id"],
        "mine": _real_citation(api, owner, nb["id"]),
        "theirs": _real_citation(api, stranger, theirs["id"]),
    }


def _as_citation(hit: dict[str, Any], **override: Any) -> dict[str, Any]:
    keys = ("document_id", "document_title", "chunk_id", "text", "start", "end", "page")
    return {**{k: hit[k] for k in keys if k in hit}, **override}


def test_a_note_cannot_cite_another_workspaces_passage(api: Api, world: dict[str, Any]) -> None:
    owner = world["owner"]
    r = api.client.post(
        f"{API}/notebooks/{world['nb']}/notes",
        json={"title": "Leak", "body": "See [1].", "citations": [_as_citation(world["theirs"])]},
        headers=owner.headers,
    )
    assert r.status_code == 400, r.text
    assert "not name a passage of this notebook" in r.json()["detail"]


def test_a_cited_quote_and_title_come_from_the_passage(api: Api, world: dict[str, Any]) -> None:
    owner, real = world["owner"], world["mine"]
    forged = _as_citation(real, **FORGED)
    r = api.client.post(
        f"{API}/notebooks/{world['nb']}/notes",
        json={"title": "Quoted", "body": "See [1].", "citations": [forged]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    stored = r.json()["citations"][0]
    assert stored["document_title"] != FORGED["document_title"]
    assert stored["text"] == real["text"]
    assert stored["page"] == real.get("page")
    # The same through an edit; a span outside the passage is refused.
    note = r.json()["id"]
    outside = _as_citation(real, end=real["end"] + 10_000)
    r = api.client.patch(
        f"{API}/notes/{note}", json={"citations": [outside]}, headers=owner.headers
    )
    assert r.status_code == 400, r.text
    r = api.client.patch(f"{API}/notes/{note}", json={"citations": [forged]}, headers=owner.headers)
    assert r.json()["citations"][0]["text"] == real["text"]


def test_a_charter_section_edit_resolves_its_citations(api: Api, world: dict[str, Any]) -> None:
    owner = world["owner"]
    body = {"template": "product-charter", "title": "Harbor"}
    charter = api.client.post(
        f"{API}/notebooks/{world['nb']}/charters", json=body, headers=owner.headers
    ).json()
    key = charter["sections"][0]["key"]
    url = f"{API}/charters/{charter['id']}/sections/{key}"
    for citations, status in (
        ([_as_citation(world["theirs"])], 400),
        ([_as_citation(world["mine"], **FORGED)], 200),
    ):
        edit = {"body": "Intake is on paper [1].", "citations": citations}
        r = api.client.patch(url, json=edit, headers=owner.headers)
        assert r.status_code == status, r.text
    section = next(s for s in r.json()["sections"] if s["key"] == key)
    assert section["citations"][0]["text"] == world["mine"]["text"]
    assert section["citations"][0]["document_title"] != FORGED["document_title"]
