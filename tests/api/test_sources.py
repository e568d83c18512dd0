"""Pasted text and web pages as sources, ingested like uploads; URL fetching refuses
addresses inside the network unless ``URL_FETCH_ALLOW`` names them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.api.conftest import API, Account, Api
from tests.ingest.conftest import wait_settled

PAGE = b"""<!DOCTYPE html><html><head><title>Kestrel field notes</title>
<script>var secretZebra = 1;</script></head><body>
<p>The Kestrel survey counts nesting pairs every April along the northern ridge.</p>
<div hidden>hidden quokka text</div></body></html>"""
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/page.html": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
    "/moved": (302, {"Location": "/page.html"}, b""),
    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
    "/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"),
    "/big.txt": (200, {"Content-Type": "text/plain"}, b"x" * 4096),
}


class Site:
    """A local web server; ``hits`` lists the paths requested."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                status, headers, body = ROUTES.get(self.path, (404, {}, b"missing"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _add_url(api: Api, owner: Account, nb: str, url: str) -> dict[str, Any]:
    r = api.client.post(
        f"{API}/notebooks/{nb}/documents/url", json={"url": url}, headers=owner.headers
    )
    assert r.status_code == 202, r.text
    return dict(wait_settled(api, owner, [r.json()["id"]])[r.json()["id"]])


def test_pasted_text_is_a_source_that_answers(api: Api) -> None:
    owner = api.register("Tess")
    nb = api.notebook(owner)["id"]
    r = api.client.post(
        f"{API}/notebooks/{nb}/documents/text",
        json={"title": "Meeting notes", "text": "The Osprey review moved to the ninth of July."},
        headers=owner.headers,
    )
    assert r.status_code == 202, r.text
    doc = wait_settled(api, owner, [r.json()["id"]])[r.json()["id"]]
    assert doc["status"] == "ready"
    assert doc["title"] == "Meeting notes"
    assert doc["media_type"] == "text/plain"
    answer = api.client.post(
        f"{API}/notebooks/{nb}/ask",
        json={"question": "When is the Osprey review?"},
        headers=owner.headers,
    ).json()
    assert answer["citations"][0]["document_id"] == doc["id"]
    assert answer["citations"][0]["document_title"] == "Meeting notes"


def test_a_loopback_url_is_refused_by_default(api: Api, site: Site) -> None:
    owner = api.register("Rex")
    nb = api.notebook(owner)["id"]
    before = len(site.hits)
    doc = _add_url(api, owner, nb, site.url("/page.html"))
    assert doc["status"] == "failed"
    assert "127.0.0.1" in doc["error"]
    assert "not fetched" in doc["error"]
    assert len(site.hits) == before  # never connected


def test_an_allowed_page_is_fetched_redirects_included_and_cited_by_url(
    api: Api, site: Site
) -> None:
    with api.variant(url_fetch_allow=["127.0.0.1/32"], max_upload_bytes=2048) as allowed:
        owner = allowed.register("Wendy")
        nb = allowed.notebook(owner)["id"]
        url = site.url("/moved")
        doc = _add_url(allowed, owner, nb, url)
        assert doc["status"] == "ready", doc
        assert doc["source_url"] == url
        assert doc["title"] == url
        hits = allowed.client.get(
            f"{API}/notebooks/{nb}/search",
            params={"q": "Kestrel nesting pairs"},
            headers=owner.headers,
        ).json()["items"]
        assert hits[0]["document_id"] == doc["id"]
        assert "every April" in hits[0]["text"]
        everything = " ".join(h["text"] for h in hits)
        assert "quokka" not in everything
        assert "secretZebra" not in everything

        # A redirect is checked like the first address: the metadata service is refused.
        before = list(site.hits)
        refused = _add_url(allowed, owner, nb, site.url("/to-metadata"))
        assert refused["status"] == "failed"
        assert "169.254.169.254" in refused["error"]
        assert site.hits[len(before) :] == ["/to-metadata"]

        wrong_type = _add_url(allowed, owner, nb, site.url("/image.png"))
        assert wrong_type["error"] == "pages of type image/png cannot be ingested"
        too_big = _add_url(allowed, owner, nb, site.url("/big.txt"))
        assert too_big["error"] == "the page is larger than 2048 bytes"


@pytest.mark.parametrize("url", ["ftp://x.example/file", "javascript:alert(1)", "http://"])
def test_only_http_urls_are_accepted(api: Api, url: str) -> None:
    owner = api.register("Uma")
    nb = api.notebook(owner)["id"]
    r = api.client.post(
        f"{API}/notebooks/{nb}/documents/url", json={"url": url}, headers=owner.headers
    )
    assert r.status_code == 422
