"""Workspaces are walls: outsiders get 404 for everything, viewers get 403 for writes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import API, Account, Api
from tests.ingest.conftest import wait_settled


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    """Alice's workspace with a notebook and a document; Bob a stranger; Vera a viewer."""
    alice, bob, vera = api.register("Alice"), api.register("Bob"), api.register("Vera")
    ws = api.client.post(f"{API}/workspaces", json={"name": "Team"}, headers=alice.headers)
    ws_id = ws.json()["id"]
    api.add_member(alice, ws_id, vera, "viewer")
    nb = api.notebook(alice, ws_id)
    doc = api.upload(alice, nb["id"], "secret.txt", b"the plan").json()
    wait_settled(api, alice, [doc["id"]])  # its text is readable once it is ready
    conv = api.client.post(
        f"{API}/notebooks/{nb['id']}/conversations", json={"title": "Plans"}, headers=alice.headers
    ).json()
    note = api.client.post(
        f"{API}/notebooks/{nb['id']}/notes", json={"title": "N", "body": "B"}, headers=alice.headers
    ).json()
    charter = api.client.post(
        f"{API}/notebooks/{nb['id']}/charters",
        json={"template": "sop", "title": "Plan"},
        headers=alice.headers,
    ).json()
    return {
        "charter": charter["id"],
        "note": note["id"],
        "alice": alice,
        "bob": bob,
        "vera": vera,
        "ws": ws_id,
        "nb": nb["id"],
        "doc": doc["id"],
        "conv": conv["id"],
    }


Call = tuple[str, str, dict[str, Any]]


def _requests(w: dict[str, Any], who: Account) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every operation on Alice's things, as ``(needed role, method, path, request kwargs)``."""
    ws, nb, doc, conv, note = w["ws"], w["nb"], w["doc"], w["conv"], w["note"]
    charter = w["charter"]
    reads: list[Call] = [
        ("GET", f"/workspaces/{ws}", {}),
        ("GET", f"/workspaces/{ws}/members", {}),
        ("GET", f"/notebooks?workspace_id={ws}", {}),
        ("GET", f"/notebooks/{nb}", {}),
        ("GET", f"/notebooks/{nb}/documents", {}),
        ("GET", f"/documents/{doc}", {}),
        ("GET", f"/documents/{doc}/content", {}),
        ("GET", f"/documents/{doc}/text", {}),
        ("GET", f"/notebooks/{nb}/conversations", {}),
        ("GET", f"/conversations/{conv}", {}),
        ("GET", f"/conversations/{conv}/messages", {}),
        ("GET", f"/notebooks/{nb}/notes", {}),
        ("GET", f"/notes/{note}", {}),
        ("GET", f"/notes/{note}/export", {}),
        ("GET", f"/notebooks/{nb}/charters", {}),
        ("GET", f"/charters/{charter}", {}),
        ("GET", f"/charters/{charter}/versions", {}),
        ("GET", f"/charters/{charter}/versions/1", {}),
        ("GET", f"/charters/{charter}/export", {}),
    ]
    writes: list[Call] = [
        ("PATCH", f"/notebooks/{nb}", {"json": {"title": "mine now"}}),
        ("POST", "/notebooks", {"json": {"title": "x", "workspace_id": ws}}),
        ("POST", f"/notebooks/{nb}/documents", {"files": {"file": ("a.txt", b"x")}}),
        ("POST", f"/notebooks/{nb}/documents/text", {"json": {"title": "t", "text": "x"}}),
        ("POST", f"/notebooks/{nb}/documents/url", {"json": {"url": "https://x.example/"}}),
        ("DELETE", f"/documents/{doc}", {}),
        ("POST", f"/conversations/{conv}/messages", {"json": {"question": "plan?"}}),
        ("PATCH", f"/conversations/{conv}", {"json": {"title": "mine now"}}),
        ("DELETE", f"/conversations/{conv}", {}),
        ("POST", f"/notebooks/{nb}/notes", {"json": {"title": "t", "body": "b"}}),
        ("PATCH", f"/notes/{note}", {"json": {"body": "mine now"}}),
        ("DELETE", f"/notes/{note}", {}),
        ("POST", f"/notebooks/{nb}/charters", {"json": {"template": "sop", "title": "t"}}),
        ("PATCH", f"/charters/{charter}", {"json": {"title": "mine now"}}),
        (
            "PATCH",
            f"/charters/{charter}/sections/steps",
            {"json": {"body": "mine now", "citations": "drop"}},
        ),
        ("POST", f"/charters/{charter}/sections/steps/regenerate", {}),
        ("POST", f"/charters/{charter}/versions/1/restore", {}),
        ("DELETE", f"/charters/{charter}", {}),
        ("DELETE", f"/notebooks/{nb}", {}),
    ]
    owner_only: list[Call] = [
        ("PATCH", f"/workspaces/{ws}", {"json": {"name": "taken"}}),
        ("POST", f"/workspaces/{ws}/members", {"json": {"email": who.email, "role": "owner"}}),
        ("PATCH", f"/workspaces/{ws}/members/{w['alice'].id}", {"json": {"role": "viewer"}}),
        ("DELETE", f"/workspaces/{ws}/members/{w['alice'].id}", {}),
        ("GET", f"/workspaces/{ws}/audit", {}),
        ("DELETE", f"/workspaces/{ws}", {}),
    ]
    return (
        [("read", *r) for r in reads]
        + [("write", *r) for r in writes]
        + [("owner", *r) for r in owner_only]
    )


def test_a_stranger_gets_404_for_everything(api: Api, world: dict[str, Any]) -> None:
    bob = world["bob"]
    for _kind, method, path, kwargs in _requests(world, bob):
        r = api.client.request(method, f"{API}{path}", headers=bob.headers, **kwargs)
        assert r.status_code == 404, (method, path, r.status_code)
    assert api.client.get(f"{API}/notebooks", headers=bob.headers).json()["total"] == 0
    ws = api.client.get(f"{API}/workspaces", headers=bob.headers).json()["items"]
    assert world["ws"] not in {w["id"] for w in ws}


def test_a_viewer_reads_but_cannot_write(api: Api, world: dict[str, Any]) -> None:
    vera = world["vera"]
    for kind, method, path, kwargs in _requests(world, vera):
        r = api.client.request(method, f"{API}{path}", headers=vera.headers, **kwargs)
        expected = 200 if kind == "read" else 403
        assert r.status_code == expected, (method, path, r.status_code, r.text)


def test_nothing_changed_for_the_owner(api: Api, world: dict[str, Any]) -> None:
    alice = world["alice"]
    nb = api.client.get(f"{API}/notebooks/{world['nb']}", headers=alice.headers).json()
    assert nb["title"] == "Research"
    content = api.client.get(f"{API}/documents/{world['doc']}/content", headers=alice.headers)
    assert content.content == b"the plan"
    members = api.client.get(f"{API}/workspaces/{world['ws']}/members", headers=alice.headers)
    assert {(m["email"], m["role"]) for m in members.json()["items"]} == {
        (alice.email, "owner"),
        (world["vera"].email, "viewer"),
    }


def test_an_editor_writes_but_does_not_manage(api: Api, world: dict[str, Any]) -> None:
    alice, ws = world["alice"], world["ws"]
    ed = api.register("Eddie")
    api.add_member(alice, ws, ed, "editor")
    nb = api.notebook(ed, ws)
    assert api.upload(ed, nb["id"], "n.md", b"# notes").status_code == 202
    r = api.client.patch(f"{API}/notebooks/{nb['id']}", json={"title": "T"}, headers=ed.headers)
    assert r.json()["title"] == "T"
    assert api.client.get(f"{API}/workspaces/{ws}/audit", headers=ed.headers).status_code == 403
    r = api.client.post(
        f"{API}/workspaces/{ws}/members",
        json={"email": world["bob"].email, "role": "viewer"},
        headers=ed.headers,
    )
    assert r.status_code == 403
