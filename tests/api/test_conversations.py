"""Conversations: threads in a notebook whose follow-ups are answered in context."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import API, Api
from tests.ingest.conftest import wait_settled

BOREALIS = (
    b"Borealis grant application. The Borealis grant application is due on the fifteenth of "
    b"May. The Borealis grant application must not exceed five pages, excluding references.\n"
)
ATLAS = (
    b"Atlas annual report. The Atlas annual report is due on the first of June. The page limit "
    b"of the Atlas annual report is forty pages; page limit exceptions need the editor's "
    b"approval.\n"
)


@pytest.fixture(scope="module")
def sources(api: Api) -> dict[str, Any]:
    """A notebook with two documents that both have a deadline and a page limit."""
    owner = api.register("Connie")
    nb = api.notebook(owner)
    ids = {}
    for name, data in {"borealis.txt": BOREALIS, "atlas.txt": ATLAS}.items():
        r = api.upload(owner, nb["id"], name, data)
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    docs = wait_settled(api, owner, list(ids.values()))
    assert all(d["status"] == "ready" for d in docs.values()), docs
    return {"owner": owner, "nb": nb["id"], "ws": nb["workspace_id"], "ids": ids}


def _start(api: Api, account: Any, nb: str, **body: Any) -> dict[str, Any]:
    r = api.client.post(f"{API}/notebooks/{nb}/conversations", json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _ask(api: Api, account: Any, conversation_id: str, question: str) -> dict[str, Any]:
    r = api.client.post(
        f"{API}/conversations/{conversation_id}/messages",
        json={"question": question},
        headers=account.headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_follow_up_is_answered_about_the_earlier_topic(api: Api, sources: dict[str, Any]) -> None:
    owner, nb, ids = sources["owner"], sources["nb"], sources["ids"]
    follow_up = "and what about its page limit?"
    # Alone, the follow-up has no topic: the one-shot ask answers about the wrong report.
    alone = api.client.post(
        f"{API}/notebooks/{nb}/ask", json={"question": follow_up}, headers=owner.headers
    ).json()
    assert alone["citations"][0]["document_id"] == ids["atlas.txt"]

    conversation = _start(api, owner, nb)
    first = _ask(api, owner, conversation["id"], "When is the Borealis grant application due?")
    assert first["retrieval_query"] == first["question"]
    assert "fifteenth of May" in first["answer"]
    second = _ask(api, owner, conversation["id"], follow_up)
    assert second["question"] == follow_up
    assert "Borealis" in second["retrieval_query"]
    assert "five pages" in second["answer"]
    assert {c["document_id"] for c in second["citations"]} == {ids["borealis.txt"]}
    assert second["status"] == "complete"
    assert second["mode"] == "extractive"
    assert second["timings"]["total_ms"] > 0

    turns = api.client.get(
        f"{API}/conversations/{conversation['id']}/messages", headers=owner.headers
    ).json()
    assert turns["total"] == 2
    assert [t["id"] for t in turns["items"]] == [first["id"], second["id"]]
    assert turns["items"][1]["citations"] == second["citations"]
    again = api.client.get(f"{API}/conversations/{conversation['id']}", headers=owner.headers)
    assert again.json()["title"] == "When is the Borealis grant application due?"


def test_list_rename_delete_are_paginated_and_audited(api: Api, sources: dict[str, Any]) -> None:
    owner = api.register("Otto")
    nb = api.notebook(owner)
    made = [_start(api, owner, nb["id"], title=f"Thread {n}") for n in range(3)]
    page = api.client.get(
        f"{API}/notebooks/{nb['id']}/conversations",
        params={"limit": 2, "offset": 1},
        headers=owner.headers,
    ).json()
    assert page["total"] == 3
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [c["id"] for c in page["items"]] == [made[1]["id"], made[2]["id"]]

    target = made[0]["id"]
    r = api.client.patch(
        f"{API}/conversations/{target}", json={"title": "  Renamed  "}, headers=owner.headers
    )
    assert r.status_code == 200
    assert r.json()["title"] == "Renamed"
    _ask(api, owner, target, "Is anything here?")  # an empty notebook: nothing found
    deleted = api.client.delete(f"{API}/conversations/{target}", headers=owner.headers)
    assert deleted.status_code == 204
    assert api.client.get(f"{API}/conversations/{target}", headers=owner.headers).status_code == 404
    assert (
        api.client.get(f"{API}/conversations/{target}/messages", headers=owner.headers).status_code
        == 404
    )
    audit = api.client.get(
        f"{API}/workspaces/{nb['workspace_id']}/audit", params={"limit": 100}, headers=owner.headers
    ).json()
    actions = [
        (e["action"], e["target_id"]) for e in audit["items"] if e["target_type"] == "conversation"
    ]
    assert actions == [
        ("conversation.create", made[0]["id"]),
        ("conversation.create", made[1]["id"]),
        ("conversation.create", made[2]["id"]),
        ("conversation.update", target),
        ("conversation.ask", target),
        ("conversation.delete", target),
    ]


def test_deleting_the_notebook_deletes_its_conversations(api: Api) -> None:
    owner = api.register("Nell")
    nb = api.notebook(owner)
    conversation = _start(api, owner, nb["id"])
    _ask(api, owner, conversation["id"], "Anything?")
    assert (
        api.client.delete(f"{API}/notebooks/{nb['id']}", headers=owner.headers).status_code == 204
    )
    r = api.client.get(f"{API}/conversations/{conversation['id']}", headers=owner.headers)
    assert r.status_code == 404


def test_a_viewer_asks_in_own_conversations_only(api: Api, sources: dict[str, Any]) -> None:
    owner, nb = sources["owner"], sources["nb"]
    ws = api.client.post(f"{API}/workspaces", json={"name": "Shared"}, headers=owner.headers)
    shared_nb = api.notebook(owner, ws.json()["id"])
    viewer = api.register("Vic")
    api.add_member(owner, ws.json()["id"], viewer, "viewer")
    mine = _start(api, viewer, shared_nb["id"])
    assert _ask(api, viewer, mine["id"], "Anything about budgets?")["status"] == "complete"
    r = api.client.patch(
        f"{API}/conversations/{mine['id']}", json={"title": "Mine"}, headers=viewer.headers
    )
    assert r.status_code == 200
    theirs = _start(api, owner, shared_nb["id"])
    for method, path, kwargs in [
        ("POST", f"/conversations/{theirs['id']}/messages", {"json": {"question": "x?"}}),
        ("PATCH", f"/conversations/{theirs['id']}", {"json": {"title": "taken"}}),
        ("DELETE", f"/conversations/{theirs['id']}", {}),
    ]:
        r = api.client.request(method, f"{API}{path}", headers=viewer.headers, **kwargs)
        assert r.status_code == 403, (method, path, r.text)
    listed = api.client.get(
        f"{API}/notebooks/{shared_nb['id']}/conversations", headers=viewer.headers
    ).json()
    assert {c["id"] for c in listed["items"]} == {mine["id"], theirs["id"]}
    # The viewer's notebook access does not reach the owner's other (personal) notebook.
    r = api.client.post(f"{API}/notebooks/{nb}/conversations", json={}, headers=viewer.headers)
    assert r.status_code == 404
