"""Hostile requests that used to reach a 500 or cost a large body (issue 20): lone
surrogates, NUL in queries, over-limit bodies sent whole, unauthenticated uploads; quotas
that hold for uploads at the same instant."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.conftest import API, Account, Api

SECRET = "hunter2-never-logged"  # the marker the log must not contain


@pytest.fixture
def owner(api: Api) -> Account:
    return api.register("Hostile")


def test_lone_surrogates_are_422_without_echo_and_never_logged(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    bodies = {
        f"{API}/auth/login": '{"email": "\\ud800@example.com", "password": "SECRET"}',
        f"{API}/auth/register": '{"email": "x@example.com", "password": "SECRET\\udfff", "name": "X"}',  # noqa: E501
    }
    for path, template in bodies.items():
        body = template.replace("SECRET", SECRET)
        r = api.client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (path, r.text)
        assert "detail" in r.json()
        assert SECRET not in r.text
    logged = capfd.readouterr()
    assert SECRET not in logged.out + logged.err
    assert "Traceback" not in logged.out + logged.err


def test_nul_in_search_and_ask_is_422(api: Api, owner: Account) -> None:
    notebook = api.notebook(owner)["id"]
    search = api.client.get(
        f"{API}/notebooks/{notebook}/search", params={"q": "a\x00b"}, headers=owner.headers
    )
    assert search.status_code == 422, search.text
    ask = api.client.post(
        f"{API}/notebooks/{notebook}/ask", json={"question": "why\x00?"}, headers=owner.headers
    )
    assert ask.status_code == 422, ask.text
    conversation = api.client.post(
        f"{API}/notebooks/{notebook}/conversations", json={}, headers=owner.headers
    ).json()["id"]
    turn = api.client.post(
        f"{API}/conversations/{conversation}/messages",
        json={"question": "why\x00?"},
        headers=owner.headers,
    )
    assert turn.status_code == 422, turn.text


def test_over_limit_body_sent_whole_gets_a_json_413(api: Api, owner: Account) -> None:
    """urllib sends the entire body before reading the answer: it must still read the 413."""
    with api.variant(max_upload_bytes=1000) as small:
        notebook = small.notebook(owner)["id"]
        body = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n\r\n"
        body += b"a" * (3 * 1024 * 1024) + b"\r\n--b--\r\n"
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{small.url}{API}/notebooks/{notebook}/documents",
            data=body,
            headers={**owner.headers, "Content-Type": "multipart/form-data; boundary=b"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert refused.value.code == 413
    assert refused.value.headers["content-type"] == "application/json"
    assert "MAX_UPLOAD_BYTES" in json.loads(refused.value.read())["detail"]


def test_unauthenticated_upload_is_refused_before_its_body_is_sent(api: Api) -> None:
    """Headers announcing 40 MiB, and not one byte of body: the 401 comes anyway."""
    host, port = api.url.removeprefix("http://").split(":")
    for auth in ("", "Authorization: Bearer not.a.token\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(
                (
                    f"POST {API}/notebooks/{'0' * 32}/documents HTTP/1.1\r\nHost: {host}\r\n"
                    f"{auth}Content-Type: multipart/form-data; boundary=b\r\n"
                    f"Content-Length: {40 * 1024 * 1024}\r\n\r\n"
                ).encode()
            )
            answer = conn.recv(65536).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 401"), answer
        assert '"detail"' in answer


def test_workspace_quotas_refuse_uploads_with_a_clear_409(api: Api) -> None:
    with api.variant(workspace_quota_bytes=1500, workspace_quota_documents=3) as quota:
        user = quota.register("Quota")
        notebook = quota.notebook(user)["id"]
        assert quota.upload(user, notebook, "a.txt", b"a" * 1000).status_code == 202
        too_big = quota.upload(user, notebook, "b.txt", b"b" * 600)
        assert too_big.status_code == 409
        assert "WORKSPACE_QUOTA_BYTES" in too_big.json()["detail"]
        assert quota.upload(user, notebook, "c.txt", b"c" * 200).status_code == 202
        assert quota.upload(user, notebook, "d.txt", b"d" * 200).status_code == 202
        too_many = quota.upload(user, notebook, "e.txt", b"e" * 10)
        assert too_many.status_code == 409
        assert "WORKSPACE_QUOTA_DOCUMENTS" in too_many.json()["detail"]
        other = quota.register("Other")  # another workspace has its own quota
        assert quota.upload(other, quota.notebook(other)["id"], "f.txt", b"f").status_code == 202
        listed = quota.client.get(f"{API}/notebooks/{notebook}/documents", headers=user.headers)
        assert listed.json()["total"] == 3  # nothing was stored for the refused ones


def test_uploads_at_the_same_instant_cannot_pass_the_quota_together(api: Api) -> None:
    """Six real parallel uploads against a quota with room for two: exactly two are stored."""
    with api.variant(workspace_quota_documents=3) as quota:
        user = quota.register("Racer")
        notebook = quota.notebook(user)["id"]
        assert quota.upload(user, notebook, "first.txt", b"first").status_code == 202
        barrier = threading.Barrier(6)

        def upload(n: int) -> int:
            with httpx.Client(base_url=quota.url, timeout=60) as client:
                barrier.wait()
                return client.post(
                    f"{API}/notebooks/{notebook}/documents",
                    files={"file": (f"r{n}.txt", f"racer {n}".encode(), "text/plain")},
                    headers=user.headers,
                ).status_code

        with ThreadPoolExecutor(6) as pool:
            codes = sorted(pool.map(upload, range(6)))
        assert codes == [202, 202, 409, 409, 409, 409], codes
        listed = quota.client.get(f"{API}/notebooks/{notebook}/documents", headers=user.headers)
        assert listed.json()["total"] == 3
