"""Issue 26, item 4: charter history is bounded. Every save stored the whole charter as a new
version with no cap: after one ~2 MB section, 25 forty-byte edits grew the database by
52.6 MB. Now a charter is at most ``MAX_CHARTER_BYTES`` as stored, only the newest
``MAX_VERSIONS`` versions are kept, and a section's citations are passages of the notebook
(item 9: their quotes cannot be inflated by the client)."""

from __future__ import annotations

from typing import Any

import pytest
from charterflow.models import CharterVersion
from charterflow.services import charters
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Api
from tests.api.test_charters import BRIEF
from tests.ingest.conftest import wait_settled


@pytest.fixture(scope="module")
def charter(api: Api) -> dict[str, Any]:
    owner = api.register("Bounded")
    nb = api.notebook(owner)
    doc = api.upload(owner, nb["id"], "brief.txt", BRIEF).json()
    assert wait_settled(api, owner, [doc["id"]])[doc["id"]]["status"] == "ready"
    body = {"template": "product-charter", "title": "Harbor"}
    r = api.client.post(f"{API}/notebooks/{nb['id']}/charters", json=body, headers=owner.headers)
    assert r.status_code == 201, r.text
    return {"owner": owner, "charter": r.json()}


def _edit(api: Api, c: dict[str, Any], text: str) -> Any:
    key = c["charter"]["sections"][0]["key"]
    return api.client.patch(
        f"{API}/charters/{c['charter']['id']}/sections/{key}",
        json={"body": text, "citations": "drop"},
        headers=c["owner"].headers,
    )


def test_only_the_newest_versions_are_kept(
    api: Api, charter: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charters, "MAX_VERSIONS", 3)  # the app runs in this process
    for n in range(6):
        assert _edit(api, charter, f"Edit number {n}.").status_code == 200
    with Session(api.engine) as db:
        numbers = db.scalars(
            select(CharterVersion.number)
            .where(CharterVersion.charter_id == charter["charter"]["id"])
            .order_by(CharterVersion.number)
        ).all()
    assert len(numbers) == 3
    assert numbers == list(range(numbers[-1] - 2, numbers[-1] + 1))
    listed = api.client.get(
        f"{API}/charters/{charter['charter']['id']}/versions", headers=charter["owner"].headers
    ).json()
    assert listed["total"] == 3


def test_a_charter_past_its_size_bound_is_refused(
    api: Api, charter: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charters, "MAX_CHARTER_BYTES", 20_000)
    with Session(api.engine) as db:
        before = db.scalar(select(func.count()).select_from(CharterVersion))
    r = _edit(api, charter, "word " * 8_000)  # 40 kB
    assert r.status_code == 409, r.text
    assert "bytes" in r.json()["detail"]
    with Session(api.engine) as db:  # nothing stored
        assert db.scalar(select(func.count()).select_from(CharterVersion)) == before
    assert _edit(api, charter, "Short again.").status_code == 200
