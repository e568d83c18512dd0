"""Password hashing (argon2id) and access tokens (JWT HS256 with exp, iat, sub, iss, jti, ver).

The ``jti`` names one token: sign-out revokes it (``services.sessions``), and the CSRF token
of a browser session is bound to it (``web.session``). ``ver`` is the user's token version
when it was signed (a password change or sign-out everywhere bumps it). The header's ``kid``
names the signing key, so former keys (``JWT_PREVIOUS_SECRETS``) keep verifying their tokens
through a rotation while only the current key signs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from charterflow.settings import Settings

ALGORITHM = "HS256"
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash("charterflow-timing-equaliser")


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or not ours (the API answers 401)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when ``password`` matches; an absent hash still costs a verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    jti: str
    expires_at: datetime
    version: int = 0


def key_id(secret: str) -> str:
    """A public name for a signing key: 16 hex characters of a hash that does not reveal it."""
    return hashlib.sha256(b"charterflow-kid:" + secret.encode()).hexdigest()[:16]


def verification_keys(settings: Settings) -> dict[str, str]:
    """Every key a token may be signed with, by key id: the current one and the former ones."""
    keys = [settings.jwt_secret, *settings.jwt_previous_secrets]
    return {key_id(k.get_secret_value()): k.get_secret_value() for k in reversed(keys)}


def create_access_token(settings: Settings, subject: str, version: int = 0) -> str:
    now = datetime.now(UTC)
    secret = settings.jwt_secret.get_secret_value()
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(seconds=settings.jwt_ttl_seconds),
        "jti": uuid.uuid4().hex,
        "ver": version,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": key_id(secret)})


def _signing_key(settings: Settings, token: str) -> str:
    """The key named by the token's ``kid``; no ``kid`` (tokens from before rotation): the
    current key. An unknown ``kid`` is a retired or foreign key: refused."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from exc
    if kid is None:
        return settings.jwt_secret.get_secret_value()
    key = verification_keys(settings).get(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidToken("unknown kid")
    return key


def decode_claims(settings: Settings, token: str, *, verify_exp: bool = True) -> TokenClaims:
    """The token's claims; raises ``InvalidToken`` for anything not valid (a token without a
    ``jti``, from before tokens had one, is refused: it could not be revoked)."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(settings, token),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss", "jti"], "verify_exp": verify_exp},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from exc
    subject, jti = claims["sub"], claims["jti"]
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("bad subject")
    if not isinstance(jti, str) or not jti or len(jti) > 64:
        raise InvalidToken("bad jti")
    version = claims.get("ver", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidToken("bad ver")
    return TokenClaims(subject, jti, datetime.fromtimestamp(int(claims["exp"]), UTC), version)


def decode_access_token(settings: Settings, token: str) -> str:
    """The token's subject (a user id); raises ``InvalidToken`` for anything not valid."""
    return decode_claims(settings, token).subject


def token_jti(settings: Settings, token: str | None) -> str | None:
    """The ``jti`` of a token we signed, expired or not (what a CSRF token is bound to)."""
    if not token:
        return None
    try:
        return decode_claims(settings, token, verify_exp=False).jti
    except InvalidToken:
        return None


def new_secret_token(prefix: str = "") -> str:
    """A random 256-bit token for links and API keys (URL-safe)."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a random token: its SHA-256 (hex); the token itself never is."""
    return hashlib.sha256(token.encode()).hexdigest()


EMAIL_PURPOSE = "verify-email"


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()[:40]


def email_verification_token(settings: Settings, user_id: str, email: str, ttl: int) -> str:
    """A signed, expiring token proving that whoever holds it read mail sent to ``email``.

    Stateless (nothing stored): it names the user and, through its MAC, the address, so it
    stops working once the email changes. Used twice it verifies the same thing twice."""
    expires = int(datetime.now(UTC).timestamp()) + ttl
    secret = settings.jwt_secret.get_secret_value()
    mac = _mac(secret, f"{EMAIL_PURPOSE}:{user_id}:{email.lower()}:{expires}")
    return f"{user_id}_{expires}_{mac}"  # URL-safe characters only, as links' tokens are


def email_verification_subject(settings: Settings, token: str) -> tuple[str, int, str] | None:
    """``(user_id, expires, mac)`` of a well-formed, unexpired token; None otherwise. The
    caller checks the MAC against the user's current email (``email_token_matches``)."""
    parts = token.split("_")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    user_id, expires, mac = parts[0], int(parts[1]), parts[2]
    if expires < datetime.now(UTC).timestamp():
        return None
    return user_id, expires, mac


def email_token_matches(
    settings: Settings, user_id: str, email: str, expires: int, mac: str
) -> bool:
    """The MAC was made by us (current or a former key) for this user and this email."""
    message = f"{EMAIL_PURPOSE}:{user_id}:{email.lower()}:{expires}"
    return any(
        hmac.compare_digest(_mac(key, message), mac) for key in verification_keys(settings).values()
    )
