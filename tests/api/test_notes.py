"""Notes: answers saved with their citations, edited, exported as Markdown, deleted."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import API, Api
from tests.api.test_conversations import BOREALIS
from tests.ingest.conftest import wait_settled


def test_an_answer_saved_as_a_note_keeps_its_citations_and_exports(api: Api) -> None:
    owner = api.register("Nora")
    nb = api.notebook(owner)
    doc = api.upload(owner, nb["id"], "borealis.txt", BOREALIS).json()
    assert wait_settled(api, owner, [doc["id"]])[doc["id"]]["status"] == "ready"
    conv = api.client.post(
        f"{API}/notebooks/{nb['id']}/conversations", json={}, headers=owner.headers
    ).json()
    turn = api.client.post(
        f"{API}/conversations/{conv['id']}/messages",
        json={"question": "How long may the Borealis grant application be?"},
        headers=owner.headers,
    ).json()
    r = api.client.post(
        f"{API}/notebooks/{nb['id']}/notes",
        json={"from_message_id": turn["id"]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["title"] == turn["question"]
    assert note["body"] == turn["answer"]
    assert note["citations"] == turn["citations"]
    assert note["from_message_id"] == turn["id"]

    export = api.client.get(f"{API}/notes/{note['id']}/export", headers=owner.headers)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/markdown")
    assert "attachment" in export.headers["content-disposition"]
    md = export.text
    assert md.startswith(f"# {turn['question']}\n\n{turn['answer']}\n")
    assert '\n## References\n\n1. borealis — "' in md
    references = md.split("## References")[1].strip().splitlines()
    assert [line.split(". ", 1)[0] for line in references] == [
        str(n) for n in range(1, len(turn["citations"]) + 1)
    ]

    edited = api.client.patch(
        f"{API}/notes/{note['id']}",
        json={"body": "Five pages at most.", "citations": []},
        headers=owner.headers,
    ).json()
    assert edited["body"] == "Five pages at most."
    assert edited["citations"] == []
    md = api.client.get(f"{API}/notes/{note['id']}/export", headers=owner.headers).text
    assert "References" not in md

    # The conversation can go; the note stays.
    api.client.delete(f"{API}/conversations/{conv['id']}", headers=owner.headers)
    assert api.client.get(f"{API}/notes/{note['id']}", headers=owner.headers).status_code == 200


def test_free_notes_are_listed_paginated_deleted_and_audited(api: Api) -> None:
    owner = api.register("Ned")
    nb = api.notebook(owner)
    made: list[dict[str, Any]] = []
    for n in range(3):
        r = api.client.post(
            f"{API}/notebooks/{nb['id']}/notes",
            json={"title": f"Idea {n}", "body": f"Body {n}"},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    page = api.client.get(
        f"{API}/notebooks/{nb['id']}/notes", params={"limit": 2}, headers=owner.headers
    ).json()
    assert page["total"] == 3
    assert [n["id"] for n in page["items"]] == [made[0]["id"], made[1]["id"]]
    assert (
        api.client.delete(f"{API}/notes/{made[0]['id']}", headers=owner.headers).status_code == 204
    )
    assert api.client.get(f"{API}/notes/{made[0]['id']}", headers=owner.headers).status_code == 404
    audit = api.client.get(
        f"{API}/workspaces/{nb['workspace_id']}/audit", params={"limit": 100}, headers=owner.headers
    ).json()
    notes = [e["action"] for e in audit["items"] if e["target_type"] == "note"]
    assert notes == ["note.create"] * 3 + ["note.delete"]


def test_a_note_needs_a_body_or_a_turn_of_this_notebook(api: Api) -> None:
    owner = api.register("Nils")
    nb, other = api.notebook(owner), api.notebook(owner)
    r = api.client.post(f"{API}/notebooks/{nb['id']}/notes", json={}, headers=owner.headers)
    assert r.status_code == 422
    conv = api.client.post(
        f"{API}/notebooks/{other['id']}/conversations", json={}, headers=owner.headers
    ).json()
    turn = api.client.post(
        f"{API}/conversations/{conv['id']}/messages",
        json={"question": "Anything?"},
        headers=owner.headers,
    ).json()
    r = api.client.post(
        f"{API}/notebooks/{nb['id']}/notes",
        json={"from_message_id": turn["id"]},
        headers=owner.headers,
    )
    assert r.status_code == 404
