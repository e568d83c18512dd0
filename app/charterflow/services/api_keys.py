"""Personal API keys: ``cfp_`` + 256 random bits, shown once, stored as SHA-256.

A key acts as its user (workspace roles still decide access); a read-only key may only read.
The ``cfp_`` prefix tells a key from a JWT without trying to decode it, and lets secret
scanners recognise leaked keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charterflow.models import ApiToken, User, utcnow
from charterflow.security import new_secret_token, token_hash

PREFIX = "cfp_"
SHOWN_PREFIX = 12  # characters of the key kept to tell keys apart in lists
LAST_USED_PRECISION = timedelta(minutes=1)  # bounds writes from a busy key
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_api_key(credential: str) -> bool:
    return credential.startswith(PREFIX)


def active_count(db: Session, user: User) -> int:
    now = utcnow()
    return (
        db.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(
                ApiToken.user_id == user.id,
                ApiToken.revoked_at.is_(None),
                (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
            )
        )
        or 0
    )


def create(
    db: Session, user: User, name: str, expires_at: datetime | None, read_only: bool
) -> tuple[ApiToken, str]:
    """A new key row (added to ``db``) and the key itself, which is never stored."""
    token = new_secret_token(PREFIX)
    row = ApiToken(
        user_id=user.id,
        name=name,
        prefix=token[:SHOWN_PREFIX],
        token_hash=token_hash(token),
        read_only=read_only,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return row, token


def authenticate(db: Session, credential: str) -> tuple[ApiToken, User] | None:
    """The live key and its active user, or None (unknown, revoked, expired, user inactive).
    Records when the key was last used, to the minute."""
    if len(credential) > 100:
        return None
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(credential)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        row.last_used_at = now
        db.commit()
    return row, user
