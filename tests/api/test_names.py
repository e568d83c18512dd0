"""Issue 26, item 10: control characters in names and titles. A user or workspace name with
CRLF reached invitation emails verbatim (fake "Bcc:" and "Subject:" lines, a phishing link);
a title with a newline injected a fake heading into the Markdown export."""

from __future__ import annotations

import pytest

from tests.api.conftest import API, Api

HOSTILE = [
    "Eve\r\nBcc: everyone@example.com",
    "Eve\nSubject: Urgent",
    "Tab\tbed",
    "Escape \x1b[31m",
    "Line\u2028separator",
    "Reversed \u202egnp.exe",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_names_and_titles_refuse_control_characters(api: Api, name: str) -> None:
    r = api.client.post(
        f"{API}/auth/register",
        json={"email": "ctl@example.com", "password": "long enough 1", "name": name},
    )
    assert r.status_code == 422, r.text
    assert "control characters" in r.text
    owner = api.register("Clean")
    ws = api.personal_workspace(owner)
    nb = api.notebook(owner)["id"]
    for method, path, body in (
        ("POST", "/workspaces", {"name": name}),
        ("PATCH", f"/workspaces/{ws}", {"name": name}),
        ("POST", "/notebooks", {"title": name}),
        ("PATCH", f"/notebooks/{nb}", {"title": name}),
        ("POST", f"/notebooks/{nb}/conversations", {"title": name}),
        ("POST", f"/notebooks/{nb}/notes", {"title": name, "body": "text"}),
        ("POST", "/auth/tokens", {"name": name}),
    ):
        r = api.client.request(method, f"{API}{path}", json=body, headers=owner.headers)
        assert r.status_code == 422, (method, path, r.status_code, r.text)
    # Ordinary names with accents, emoji and joiners are fine.
    r = api.client.post(
        f"{API}/workspaces", json={"name": "Équipe 👩‍💻 ZWNJ\u200c"}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
