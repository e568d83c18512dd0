"""Issue 26, items 3 and 12: what a request body may cost before the app reads it.

Item 3: every JSON route took bodies up to the upload cap (~51 MiB) and parsed them on the
event loop before any rate limit. Only uploads get the upload cap now; other bodies are cut
at ``MAX_JSON_BYTES``, unread. Item 12: the early upload guard accepted JWTs only, so an API
key could not upload at all."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.api.conftest import API, Account, Api


@pytest.fixture(scope="module")
def owner(api: Api) -> Account:
    return api.register("Bounded")


def _raw(api: Api, head: str, body: bytes = b"") -> str:
    """Send ``head`` (and ``body``) on a fresh connection; the status line and headers."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(head.encode() + body)
        return conn.recv(65536).decode(errors="replace")


def test_json_bodies_past_max_json_bytes_are_413_unread(api: Api, owner: Account) -> None:
    limit = api.settings.max_json_bytes
    assert limit == 1024 * 1024  # the default
    login = {"email": owner.email, "password": "x" * (limit + 10)}
    r = api.client.post(f"{API}/auth/login", json=login)  # sent whole, with Content-Length
    assert r.status_code == 413, r.text
    assert "MAX_JSON_BYTES" in r.json()["detail"]
    # Chunked (no length): counted as it arrives, cut past the limit.

    def chunks() -> Iterator[bytes]:
        yield b'{"title": "Big", "description": "'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"}'

    r = api.client.post(
        f"{API}/notebooks",
        content=chunks(),
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    # Under the limit, a JSON body is read as before.
    assert api.client.post(f"{API}/auth/login", json={**login, "password": "no"}).status_code == 401


def test_pasted_text_keeps_its_own_larger_bound(api: Api, owner: Account) -> None:
    notebook = api.notebook(owner)["id"]
    # A million characters, the most a paste may hold; as JSON (accents escaped) ~1.3 MB.
    text = ("Le règlement élaboré. " * 50_000)[:1_000_000]
    body = json.dumps({"title": "Pasted", "text": text}).encode()
    assert len(body) > api.settings.max_json_bytes
    r = api.client.post(
        f"{API}/notebooks/{notebook}/documents/text",
        content=body,
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 202, r.text


def _key(api: Api, owner: Account, read_only: bool = False) -> tuple[str, str]:
    """A new API key of ``owner``: (its id, the key)."""
    r = api.client.post(
        f"{API}/auth/tokens",
        json={"name": "uploader", "read_only": read_only},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), str(r.json()["token"])


def test_api_keys_can_upload_and_bad_keys_are_refused_before_the_body(
    api: Api, owner: Account
) -> None:
    notebook = api.notebook(owner)["id"]
    _, key = _key(api, owner)
    r = api.client.post(
        f"{API}/notebooks/{notebook}/documents",
        files={"file": ("notes.txt", b"Uploaded with an API key.\n", "text/plain")},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 202, r.text
    _, read_only = _key(api, owner, read_only=True)
    revoked_id, revoked = _key(api, owner)
    r = api.client.delete(f"{API}/auth/tokens/{revoked_id}", headers=owner.headers)
    assert r.status_code == 204
    host = api.url.removeprefix("http://")
    for credential, status in (
        (read_only, "403"),
        (revoked, "401"),
        ("cfp_" + "x" * 43, "401"),
    ):
        answer = _raw(
            api,
            f"POST {API}/notebooks/{notebook}/documents HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {credential}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {40 * 1024 * 1024}\r\n\r\n",
        )
        assert answer.startswith(f"HTTP/1.1 {status}"), (credential[:8], answer)
