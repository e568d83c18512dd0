"""Single sign-on through Dex, a real OpenID provider: the code flow end to end, and each way
an ID token or a callback can be wrong (tampered, wrong audience, expired, replayed state,
disallowed email domain, a code traded without its PKCE verifier)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from charterflow.services import oidc
from charterflow.settings import Settings
from pydantic import SecretStr

from tests.api.conftest import API, Api
from tests.conftest import start_or_fail
from tests.support.dex import USER_EMAIL, DexServer
from tests.support.processes import free_port
from tests.support.services import scratch_dir

PORTS = [free_port(), free_port()]  # the app's ports, registered at Dex as redirect URIs


@pytest.fixture(scope="module")
def dex() -> Iterator[DexServer]:
    uris = [f"http://127.0.0.1:{p}/api/v1/auth/oidc/callback" for p in PORTS]
    server = start_or_fail("Dex", lambda: DexServer(scratch_dir("dex"), uris).start())
    yield server
    server.stop()


def _sso(api: Api, dex: DexServer, port: int, **overrides: object) -> object:
    return api.variant(
        port=port,
        app_url=f"http://127.0.0.1:{port}",
        oidc_issuer=dex.issuer,
        oidc_client_id=dex.client_id,
        oidc_client_secret=SecretStr(dex.client_secret),
        **overrides,
    )


def _start(client: httpx.Client, app: Api) -> httpx.Response:
    r = client.get(f"{app.url}{API}/auth/oidc/login", params={"next": "/app"})
    assert r.status_code == 302, r.text
    return r


def test_sign_in_through_dex_creates_the_user_and_a_session(api: Api, dex: DexServer) -> None:
    with _sso(api, dex, PORTS[0]) as app, httpx.Client(timeout=30) as browser:
        start = _start(browser, app)
        authorize = urlparse(start.headers["location"])
        query = parse_qs(authorize.query)
        assert start.headers["location"].startswith(f"{dex.issuer}/auth?")
        assert query["code_challenge_method"] == ["S256"]
        assert {"state", "nonce", "code_challenge"} <= set(query)
        back = dex.sign_in(browser, start.headers["location"])
        assert back.startswith(f"{app.url}{API}/auth/oidc/callback?")
        done = browser.get(back)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/app"
        me = browser.get(f"{app.url}{API}/auth/me")  # the session cookie signs the browser in
        assert me.status_code == 200
        assert me.json()["email"] == USER_EMAIL
        # Replaying the same callback (same state, same cookie) is refused.
        replay = browser.get(back)
        assert replay.status_code == 400
        # A second sign-in links to the same account.
        browser.cookies.clear()
        again = browser.get(dex.sign_in(browser, _start(browser, app).headers["location"]))
        assert again.status_code == 303
        assert browser.get(f"{app.url}{API}/auth/me").json()["id"] == me.json()["id"]


def test_a_disallowed_email_domain_is_403(api: Api, dex: DexServer) -> None:
    with (
        _sso(api, dex, PORTS[1], oidc_allowed_domains=["corp.example"]) as app,
        httpx.Client(timeout=30) as browser,
    ):
        back = dex.sign_in(browser, _start(browser, app).headers["location"])
        r = browser.get(back)
        assert r.status_code == 403
        assert "domain" in r.json()["detail"]
        assert browser.get(f"{app.url}{API}/auth/me").status_code == 401


def test_a_callback_with_a_foreign_state_or_no_cookie_is_400(api: Api, dex: DexServer) -> None:
    with _sso(api, dex, PORTS[1]) as app, httpx.Client(timeout=30) as browser:
        back = dex.sign_in(browser, _start(browser, app).headers["location"])
        code = parse_qs(urlparse(back).query)["code"][0]
        forged = browser.get(
            f"{app.url}{API}/auth/oidc/callback", params={"code": code, "state": "attacker"}
        )
        assert forged.status_code == 400
        with httpx.Client(timeout=30) as other_browser:  # the flow cookie is not there
            assert other_browser.get(back).status_code == 400


def _rp(api: Api, dex: DexServer, **overrides: object) -> tuple[Settings, oidc.Provider]:
    """CharterFlow's settings as a relying party of ``dex``, and the provider they read."""
    base = {"oidc_issuer": dex.issuer, "oidc_client_id": dex.client_id}
    provider = oidc.Provider(api.settings.model_copy(update=base))
    return api.settings.model_copy(update={**base, **overrides}), provider


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused(settings: Settings, provider: oidc.Provider, token: str, nonce: str) -> str:
    try:
        oidc.verify_id_token(settings, provider, token, nonce)
    except oidc.OidcError as exc:
        return str(exc)
    return "accepted"


def test_id_tokens_are_verified_against_the_providers_keys(api: Api, dex: DexServer) -> None:
    nonce = secrets.token_urlsafe(16)
    token = dex.id_token(nonce)
    settings, provider = _rp(api, dex)
    assert oidc.verify_id_token(settings, provider, token, nonce).email == USER_EMAIL

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_claims = _b64(json.dumps({**claims, "email": "root@example.com"}).encode())
    unsigned_header = _b64(json.dumps({"alg": "none"}).encode())
    results = {
        "tampered": _refused(settings, provider, f"{header}.{forged_claims}.{signature}", nonce),
        "alg none": _refused(settings, provider, f"{unsigned_header}.{payload}.", nonce),
        "wrong nonce": _refused(settings, provider, token, "another-nonce"),
        "wrong aud": _refused(*_rp(api, dex, oidc_client_id="another-client"), token, nonce),
        "wrong issuer": _refused(*_rp(api, dex, oidc_issuer=dex.issuer + "/x"), token, nonce),
    }
    assert "accepted" not in results.values(), results
    assert "signature" in results["tampered"].lower() or "not valid" in results["tampered"]
    assert "audience" in results["wrong aud"].lower() or "not valid" in results["wrong aud"]
    # Expired: past ``exp`` by more than the allowed clock skew (the clock is moved, not slept).
    skew = settings.oidc_clock_skew_seconds
    assert oidc.verify_id_token(settings, provider, token, nonce, now=claims["exp"] + skew - 1)
    with pytest.raises(oidc.OidcError, match="expired"):
        oidc.verify_id_token(settings, provider, token, nonce, now=claims["exp"] + skew + 1)
    with pytest.raises(oidc.OidcError, match="future"):
        oidc.verify_id_token(settings, provider, token, nonce, now=claims["iat"] - skew - 1)
    assert time.time() < claims["exp"]


def test_dex_trades_a_code_only_for_the_verifier_of_the_apps_pkce_challenge(
    api: Api, dex: DexServer
) -> None:
    """PKCE is checked by the provider too: a stolen code is useless without the verifier
    behind the app's S256 challenge. Dex leaves a code unused when it refuses a verifier, so
    one code tries every case; after the good exchange it is spent."""
    secret = SecretStr(dex.client_secret)
    app_url = f"http://127.0.0.1:{PORTS[0]}"
    settings, provider = _rp(api, dex, app_url=app_url, oidc_client_secret=secret)
    authorize, cookie = oidc.start(settings, provider, "/app")
    assert parse_qs(urlparse(authorize).query)["code_challenge_method"] == ["S256"]
    with httpx.Client(timeout=30) as browser:
        back = parse_qs(urlparse(dex.sign_in(browser, authorize)).query)
    code, flow = back["code"][0], oidc.read_flow(settings, cookie, back["state"][0])

    refusals = {
        "no verifier": dex.exchange(code),
        "wrong verifier": dex.exchange(code, code_verifier=secrets.token_urlsafe(64)),
        "the challenge itself": dex.exchange(
            code, code_verifier=parse_qs(urlparse(authorize).query)["code_challenge"][0]
        ),
    }
    assert {k: (r.status_code, r.json().get("error")) for k, r in refusals.items()} == {
        k: (400, "invalid_grant") for k in refusals
    }
    assert "code_verifier" in refusals["no verifier"].json()["error_description"]
    with pytest.raises(oidc.OidcError, match="refused"):  # the app's exchange, verifier swapped
        oidc.exchange_code(settings, provider, code, replace(flow, verifier="x" * 64))

    token = oidc.exchange_code(settings, provider, code, flow)  # the flow's own verifier
    assert oidc.verify_id_token(settings, provider, token, flow.nonce).email == USER_EMAIL
    spent = dex.exchange(code, code_verifier=flow.verifier)
    assert (spent.status_code, spent.json()["error"]) == (400, "invalid_grant")


def test_sso_is_404_when_not_configured_and_password_login_can_be_turned_off(
    api: Api, dex: DexServer
) -> None:
    assert api.client.get(f"{API}/auth/oidc/login").status_code == 404
    account = api.register()
    with _sso(api, dex, PORTS[1], password_login_enabled=False) as app:
        body = {"email": account.email, "password": account.password}
        assert app.client.post(f"{API}/auth/login", json=body).status_code == 403
        # API keys and existing sessions keep working.
        assert app.client.get(f"{API}/auth/me", headers=account.headers).status_code == 200


@pytest.fixture(scope="module")
def dex_with_groups() -> Iterator[DexServer]:
    uris = [f"http://127.0.0.1:{p}/api/v1/auth/oidc/callback" for p in PORTS]
    server = start_or_fail("Dex", lambda: DexServer(scratch_dir("dex"), uris, mock=True).start())
    yield server
    server.stop()


def test_an_admin_group_claim_makes_an_instance_admin(api: Api, dex_with_groups: DexServer) -> None:
    dex = dex_with_groups
    scopes = "openid email profile groups"
    for groups, admin in ((["authors"], True), (["editors"], False)):
        with (
            _sso(api, dex, PORTS[0], oidc_scopes=scopes, oidc_admin_groups=groups) as app,
            httpx.Client(timeout=30) as browser,
        ):
            back = dex.sign_in(browser, _start(browser, app).headers["location"])
            assert browser.get(back).status_code == 303
            users = browser.get(f"{app.url}{API}/admin/users", params={"q": "kilgore"})
            assert users.status_code == (200 if admin else 403)
