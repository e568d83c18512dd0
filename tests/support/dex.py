"""Dex, a real OpenID Connect provider, on loopback for the single sign-on tests.

Dex v2.41.1, built from the Go module proxy by ``scripts/dex-binary`` (cached; its login
page assets are embedded). It runs with in-memory storage, one static client (CharterFlow)
and one static password user (or its mock connector), signs ID tokens with its own rotating
RSA keys, served at its JWKS endpoint, and checks PKCE (RFC 7636) at its token endpoint.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import httpx

from tests.support.processes import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
# Dex's own example user: the bcrypt hash of "password" (from Dex's examples/config-dev.yaml).
USER_EMAIL = "admin@example.com"
USER_PASSWORD = "password"
_USER_HASH = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"


def dex_binary() -> Path:
    """Build Dex if needed (minutes, once per machine) and return its path."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "dex-binary")], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


class DexServer:
    def __init__(self, work_dir: Path, redirect_uris: list[str], mock: bool = False) -> None:
        """``mock``: instead of the password user, Dex's mock connector, which signs in
        "Kilgore Trout" (kilgore@kilgore.trout, group ``authors``) without a form."""
        self.work_dir = work_dir
        self.redirect_uris = redirect_uris
        self.mock = mock
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/dex"
        self.client_id = "charterflow"
        self.client_secret = secrets.token_urlsafe(24)
        self.process: ManagedProcess | None = None

    def start(self) -> DexServer:
        binary = dex_binary()
        config = {
            "issuer": self.issuer,
            "storage": {"type": "memory"},
            "web": {"http": f"127.0.0.1:{self.port}"},
            "frontend": {"issuer": "Dex"},
            "oauth2": {"skipApprovalScreen": True},
            "expiry": {"idTokens": "10m"},
            "logger": {"level": "info"},
            "staticClients": [
                {
                    "id": self.client_id,
                    "secret": self.client_secret,
                    "name": "CharterFlow",
                    "redirectURIs": self.redirect_uris,
                }
            ],
            "enablePasswordDB": not self.mock,
            "staticPasswords": []
            if self.mock
            else [
                {
                    "email": USER_EMAIL,
                    "hash": _USER_HASH,
                    "username": "admin",
                    "userID": "08a8684b-db88-4b73-90a9-3cd1661f5466",
                }
            ],
        }
        if self.mock:
            config["connectors"] = [{"type": "mockCallback", "id": "mock", "name": "Mock"}]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / "dex.json"  # JSON is YAML: Dex reads it as its config file
        path.write_text(json.dumps(config))
        self.process = ManagedProcess(
            "dex", [str(binary), "serve", str(path)], self.work_dir / "dex.log"
        ).start()
        self.process.wait_ready(self._ready, timeout=60)
        return self

    def _ready(self) -> bool:
        try:
            url = f"{self.issuer}/.well-known/openid-configuration"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace") if self.process else ""

    def sign_in(
        self, client: httpx.Client, authorize_url: str, password: str = USER_PASSWORD
    ) -> str:
        """Walk Dex's login page as a browser would; the redirect back to the client (with
        ``code`` and ``state``), not followed."""
        url = authorize_url
        response = client.get(url)
        while response.is_redirect:
            url = urljoin(url, response.headers["location"])
            if not url.startswith(self.issuer):
                return url
            response = client.get(url)
        form = re.search(r'<form method="post" action="([^"]+)"', response.text)
        assert form is not None, response.text[:500]
        url = urljoin(url, unescape(form.group(1)))
        response = client.post(url, data={"login": USER_EMAIL, "password": password})
        while response.is_redirect:
            url = urljoin(url, response.headers["location"])
            if not url.startswith(self.issuer):
                return url
            response = client.get(url)
        raise AssertionError(
            f"Dex did not redirect back: {response.status_code} {response.text[:300]}"
        )

    def exchange(self, code: str, **form: str) -> httpx.Response:
        """Dex's answer to the client trading ``code`` (plus ``form``, e.g. a
        ``code_verifier``) at its token endpoint, as CharterFlow's back end would."""
        data = {"grant_type": "authorization_code", "code": code}
        return httpx.post(
            f"{self.issuer}/token",
            data={**data, "redirect_uri": self.redirect_uris[0], **form},
            auth=(self.client_id, self.client_secret),
            timeout=30,
        )

    def id_token(self, nonce: str) -> str:
        """A real ID token for the static user, got as CharterFlow would (code flow)."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uris[0],
                "scope": "openid email profile",
                "state": secrets.token_urlsafe(16),
                "nonce": nonce,
            }
        )
        with httpx.Client(follow_redirects=False, timeout=30) as client:
            back = self.sign_in(client, f"{self.issuer}/auth?{query}")
        r = self.exchange(parse_qs(urlparse(back).query)["code"][0])
        r.raise_for_status()
        return str(r.json()["id_token"])
