"""OpenID Connect relying party: authorization code flow with PKCE, state and nonce.

The provider's metadata and signing keys (JWKS) are fetched from the issuer and cached. An ID
token is accepted only with a valid signature from those keys (asymmetric algorithms only),
our client id in ``aud``, the configured issuer, the nonce we sent, and ``exp``/``iat`` within
``OIDC_CLOCK_SKEW_SECONDS`` of our clock.

The login's state, nonce and PKCE verifier live in a short-lived signed HttpOnly cookie; its
id is recorded as used when the callback consumes it, so a state cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from charterflow.settings import Settings

FLOW_TTL_SECONDS = 600
FLOW_COOKIE = "cf_oidc"
_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
_METADATA_TTL = 3600.0


class OidcError(Exception):
    """The sign-in failed; the message is safe to show (it never carries tokens)."""

    status_code = 400


class OidcForbidden(OidcError):
    """A valid identity that may not sign in here (email domain, deactivated account)."""

    status_code = 403


@dataclass(frozen=True)
class Flow:
    """One sign-in in progress (what the flow cookie carries)."""

    id: str
    state: str
    nonce: str
    verifier: str
    next_path: str
    expires_at: datetime


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    name: str
    groups: list[str]


class Provider:
    """The issuer's metadata and keys, fetched once and refreshed hourly (or on an unknown
    key id, at most once a minute: the provider rotated its keys)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._metadata: dict[str, Any] | None = None
        self._fetched = 0.0
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_fetched = 0.0

    def _get(self, url: str) -> dict[str, Any]:
        try:
            r = httpx.get(url, timeout=10, follow_redirects=False)
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("The identity provider could not be reached") from exc
        if not isinstance(body, dict):
            raise OidcError("The identity provider answered something unexpected")
        return body

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched > _METADATA_TTL:
                issuer = str(self.settings.oidc_issuer).rstrip("/")
                found = self._get(f"{issuer}/.well-known/openid-configuration")
                if found.get("issuer") != self.settings.oidc_issuer:
                    raise OidcError("The identity provider's issuer does not match OIDC_ISSUER")
                self._metadata, self._fetched = found, time.monotonic()
            return self._metadata

    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        for attempt in range(2):
            with self._lock:
                stale = time.monotonic() - self._jwks_fetched > (60 if attempt else _METADATA_TTL)
                if self._jwks is None or stale:
                    self._jwks = jwt.PyJWKSet.from_dict(self._get(self.metadata()["jwks_uri"]))
                    self._jwks_fetched = time.monotonic()
                for key in self._jwks.keys:
                    if kid is None or key.key_id == kid:
                        return key
        raise OidcError("The ID token is signed with an unknown key")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _flow_key(settings: Settings) -> str:
    return "charterflow-oidc-flow:" + settings.jwt_secret.get_secret_value()


def redirect_uri(settings: Settings) -> str:
    return f"{settings.app_url.rstrip('/')}/api/v1/auth/oidc/callback"


def start(settings: Settings, provider: Provider, next_path: str) -> tuple[str, str]:
    """The provider's authorization URL to send the browser to, and the flow cookie's value."""
    flow = Flow(
        id=uuid.uuid4().hex,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(64),
        next_path=next_path,
        expires_at=datetime.now(UTC) + timedelta(seconds=FLOW_TTL_SECONDS),
    )
    cookie = jwt.encode(
        {
            "jti": flow.id,
            "state": flow.state,
            "nonce": flow.nonce,
            "verifier": flow.verifier,
            "next": flow.next_path,
            "exp": flow.expires_at,
        },
        _flow_key(settings),
        algorithm="HS256",
    )
    challenge = _b64(hashlib.sha256(flow.verifier.encode()).digest())
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": redirect_uri(settings),
            "scope": settings.oidc_scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{provider.metadata()['authorization_endpoint']}?{query}", cookie


def read_flow(settings: Settings, cookie: str | None, state: str) -> Flow:
    """The flow of this callback: the cookie must be ours, unexpired, and hold ``state``."""
    if not cookie:
        raise OidcError("The sign-in expired or was started in another browser; start again")
    try:
        claims = jwt.decode(
            cookie,
            _flow_key(settings),
            algorithms=["HS256"],
            options={"require": ["jti", "exp", "state", "nonce", "verifier", "next"]},
        )
    except jwt.PyJWTError as exc:
        raise OidcError("The sign-in expired or was tampered with; start again") from exc
    if not hmac.compare_digest(str(claims["state"]), state):
        raise OidcError("The sign-in's state does not match; start again")
    return Flow(
        id=str(claims["jti"]),
        state=str(claims["state"]),
        nonce=str(claims["nonce"]),
        verifier=str(claims["verifier"]),
        next_path=str(claims["next"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


def exchange_code(settings: Settings, provider: Provider, code: str, flow: Flow) -> str:
    """Trade the authorization code (with the PKCE verifier) for the ID token."""
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    try:
        r = httpx.post(
            provider.metadata()["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri(settings),
                "code_verifier": flow.verifier,
            },
            auth=(str(settings.oidc_client_id), secret),
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise OidcError("The identity provider could not be reached") from exc
    if r.status_code != 200:
        raise OidcError("The identity provider refused the sign-in code")
    id_token = (
        r.json().get("id_token")
        if r.headers.get("content-type", "").startswith("application/json")
        else None
    )
    if not isinstance(id_token, str):
        raise OidcError("The identity provider returned no ID token")
    return id_token


def verify_id_token(
    settings: Settings, provider: Provider, id_token: str, nonce: str, now: float | None = None
) -> Identity:
    """The identity in a verified ID token (see the module docstring for what is checked)."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise OidcError("The ID token is malformed") from exc
    if header.get("alg") not in _ASYMMETRIC:
        raise OidcError("The ID token's algorithm is not accepted")
    key = provider.signing_key(header.get("kid"))
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=[header["alg"]],
            audience=settings.oidc_client_id,
            issuer=settings.oidc_issuer,
            options={
                "require": ["iss", "sub", "aud", "exp", "iat"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise OidcError(f"The ID token is not valid ({type(exc).__name__})") from exc
    now = time.time() if now is None else now
    skew = settings.oidc_clock_skew_seconds
    if float(claims["exp"]) + skew < now:
        raise OidcError("The ID token has expired")
    if float(claims["iat"]) - skew > now:
        raise OidcError("The ID token was issued in the future")
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcError("The ID token's nonce does not match this sign-in")
    audience = claims["aud"]
    if (
        isinstance(audience, list)
        and len(audience) > 1
        and claims.get("azp") != settings.oidc_client_id
    ):
        raise OidcError("The ID token was issued to another client")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise OidcError("The identity provider gave no email address")
    if claims.get("email_verified") is not True:
        raise OidcError("The identity provider has not verified this email address")
    email = email.lower()
    allowed = {d.lower() for d in settings.oidc_allowed_domains}
    if allowed and email.rpartition("@")[2] not in allowed:
        raise OidcForbidden("Sign-in from this email domain is not allowed")
    name = claims.get(settings.oidc_name_claim)
    groups = claims.get(settings.oidc_groups_claim) or []
    return Identity(
        subject=str(claims["sub"]),
        email=email,
        name=name.strip()[:200]
        if isinstance(name, str) and name.strip()
        else email.partition("@")[0],
        groups=[g for g in groups if isinstance(g, str)] if isinstance(groups, list) else [],
    )
