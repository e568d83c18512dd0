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


def _edit(api: Api, c: dict[str, Any], text: str, section: int = 0) -> Any:
    key = c["charter"]["sections"][section]["key"]
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


def _stored(api: Api, charter_id: str) -> dict[int, list[dict[str, Any]]]:
    with Session(api.engine) as db:
        rows = db.scalars(select(CharterVersion).where(CharterVersion.charter_id == charter_id))
        return {v.number: v.sections for v in rows}


def _bodies(stored: dict[int, list[dict[str, Any]]], key: str) -> int:
    """How many versions hold the body of section ``key`` (not a reference to it)."""
    return sum(1 for entries in stored.values() for e in entries if e["key"] == key and "body" in e)


def test_edits_beside_a_large_section_store_it_once(api: Api, charter: dict[str, Any]) -> None:
    """The attack of item 4: one large section, then many tiny edits of another. Each
    version stored the large one again; now the versions after it refer to the one that
    holds it, and reading or restoring any version still gives whole sections."""
    c, headers = charter["charter"], charter["owner"].headers
    big, small = (c["sections"][i]["key"] for i in (0, 1))
    large = "word " * 9_999  # ~50 kB, the largest body allowed
    r = _edit(api, charter, large)
    assert r.status_code == 200, r.text
    first = r.json()["version"]
    for n in range(10):
        assert _edit(api, charter, f"Tiny edit {n}.", section=1).status_code == 200
    stored = _stored(api, c["id"])
    newer = {n: e for n, e in stored.items() if n >= first}
    assert len(newer) == 11
    assert _bodies(newer, big) == 1  # held by the version that set it, referred to after
    assert _bodies(newer, small) == 10  # each edit's own text
    url = f"{API}/charters/{c['id']}/versions"
    last = api.client.get(f"{url}/{first + 10}", headers=headers).json()
    assert [s["key"] for s in last["sections"]] == [s["key"] for s in c["sections"]]
    assert last["sections"][0]["body"] == large.strip()
    assert last["sections"][1]["body"] == "Tiny edit 9."
    assert all(s["title"] and "citations" in s for s in last["sections"])
    # Restoring a version before the large edit brings back its whole sections, and
    # restoring back refers to the stored large body instead of storing it again.
    before = api.client.get(f"{url}/{first - 1}", headers=headers).json()
    r = api.client.post(f"{url}/{first - 1}/restore", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["sections"] == before["sections"]
    r = api.client.post(f"{url}/{first + 10}/restore", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["sections"][0]["body"] == large.strip()
    stored = _stored(api, c["id"])
    assert _bodies({n: e for n, e in stored.items() if n >= first}, big) == 1


def test_pruning_keeps_the_bodies_later_versions_refer_to(
    api: Api, charter: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version holding a shared body can be pruned; its body moves to the oldest kept
    version that referred to it, and every kept version still reads whole."""
    monkeypatch.setattr(charters, "MAX_VERSIONS", 3)
    c, headers = charter["charter"], charter["owner"].headers
    assert _edit(api, charter, "The body that stays.").status_code == 200
    for n in range(5):
        assert _edit(api, charter, f"Other edit {n}.", section=1).status_code == 200
    stored = _stored(api, c["id"])
    assert len(stored) == 3
    assert _bodies(stored, c["sections"][0]["key"]) == 1
    for number in stored:
        got = api.client.get(f"{API}/charters/{c['id']}/versions/{number}", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["sections"][0]["body"] == "The body that stays."
