"""Password hashing (argon2id) and access tokens (JWT HS256 with exp, iat, sub, iss, jti).

The ``jti`` names one token: sign-out revokes it (``services.sessions``), and the CSRF token
of a browser session is bound to it (``web.session``).
"""

from __future__ import annotations

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


def create_access_token(settings: Settings, subject: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(seconds=settings.jwt_ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def decode_claims(settings: Settings, token: str, *, verify_exp: bool = True) -> TokenClaims:
    """The token's claims; raises ``InvalidToken`` for anything not valid (a token without a
    ``jti``, from before tokens had one, is refused: it could not be revoked)."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
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
    return TokenClaims(subject, jti, datetime.fromtimestamp(int(claims["exp"]), UTC))


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
