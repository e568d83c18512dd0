"""Issue 26, item 4: charters, their versions and notes count in ``WORKSPACE_QUOTA_BYTES``
beside uploads. Only uploads counted: a workspace could grow its history and notes without
bound past its quota. A save that would take the workspace past it is 409, nothing stored."""

from __future__ import annotations

from typing import Any

from charterflow.models import CharterVersion, Note
from charterflow.services.quota import used_bytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Api
from tests.api.test_charters import BRIEF
from tests.ingest.conftest import wait_settled

ROOM = 100_000  # bytes of quota left once the charter is drafted
LARGE = "word " * 9_000  # 45 kB: one section's body


def _count(api: Api, model: Any, **where: str) -> int:
    with Session(api.engine) as db:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(db.scalar(query) or 0)


def test_charters_their_versions_and_notes_count_in_the_quota(api: Api) -> None:
    owner = api.register("Quota")
    nb = api.notebook(owner)
    doc = api.upload(owner, nb["id"], "brief.txt", BRIEF).json()
    assert wait_settled(api, owner, [doc["id"]])[doc["id"]]["status"] == "ready"
    body = {"template": "product-charter", "title": "Harbor"}
    r = api.client.post(f"{API}/notebooks/{nb['id']}/charters", json=body, headers=owner.headers)
    assert r.status_code == 201, r.text
    charter = r.json()
    with Session(api.engine) as db:
        used = used_bytes(db, nb["workspace_id"])
    assert used > len(BRIEF) + 2 * len(charter["title"])  # the charter and its version count
    with api.variant(workspace_quota_bytes=used + ROOM) as quota:
        url = f"{API}/charters/{charter['id']}"
        big, small = (charter["sections"][i]["key"] for i in (0, 1))

        def edit(key: str, text: str) -> Any:
            change = {"body": text, "citations": "drop"}
            return quota.client.patch(f"{url}/sections/{key}", json=change, headers=owner.headers)

        assert edit(big, LARGE).status_code == 200  # ~90 kB: the charter and one version
        # A tiny edit beside it stores the large section once more only as a reference.
        assert edit(small, "A tiny edit.").status_code == 200
        versions = _count(quota, CharterVersion, charter_id=charter["id"])
        refused = edit(big, LARGE + "again")  # another 45 kB version: past the quota
        assert refused.status_code == 409, refused.text
        assert "WORKSPACE_QUOTA_BYTES" in refused.json()["detail"]
        assert _count(quota, CharterVersion, charter_id=charter["id"]) == versions
        now = quota.client.get(url, headers=owner.headers).json()
        assert now["sections"][0]["body"] == LARGE.strip()  # unchanged

        notes = f"{API}/notebooks/{nb['id']}/notes"
        note = {"title": "Long", "body": "n" * 20_000}
        refused = quota.client.post(notes, json=note, headers=owner.headers)
        assert refused.status_code == 409, refused.text
        assert _count(quota, Note, notebook_id=nb["id"]) == 0
        # Deleting the charter (with its versions) frees its bytes for notes.
        assert quota.client.delete(url, headers=owner.headers).status_code == 204
        made = quota.client.post(notes, json=note, headers=owner.headers)
        assert made.status_code == 201, made.text
        grown = quota.client.patch(
            f"{API}/notes/{made.json()['id']}", json={"body": "n" * 150_000}, headers=owner.headers
        )
        assert grown.status_code == 409, grown.text
        kept = quota.client.get(f"{API}/notes/{made.json()['id']}", headers=owner.headers)
        assert kept.json()["body"] == note["body"]
        # Uploads count what notes take: past the uploads' own bytes, a file is refused.
        with Session(quota.engine) as db:
            now_used = used_bytes(db, nb["workspace_id"])
        assert now_used >= len(BRIEF) + 20_000
        left = used + ROOM - now_used
        too_big = quota.upload(owner, nb["id"], "more.txt", b"m" * (left + 1))
        assert too_big.status_code == 409, too_big.text
        assert "WORKSPACE_QUOTA_BYTES" in too_big.json()["detail"]
