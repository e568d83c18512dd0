"""Revoking access tokens: sign-out records the token's ``jti`` until it would expire.

Every authenticated request checks its ``jti`` in the query that loads its user; tokens known to
be revoked are also remembered in this process (a revoked token never becomes valid again,
so that cache needs no invalidation).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from charterflow.models import RevokedToken, User, utcnow
from charterflow.security import TokenClaims

_KNOWN_REVOKED: OrderedDict[str, None] = OrderedDict()
_LOCK = threading.Lock()
_CACHE_SIZE = 10_000


def _remember(jti: str) -> None:
    with _LOCK:
        _KNOWN_REVOKED[jti] = None
        _KNOWN_REVOKED.move_to_end(jti)
        while len(_KNOWN_REVOKED) > _CACHE_SIZE:
            _KNOWN_REVOKED.popitem(last=False)


def is_revoked(db: Session, jti: str) -> bool:
    if jti in _KNOWN_REVOKED:
        return True
    if db.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is None:
        return False
    _remember(jti)
    return True


def active_user(db: Session, user_id: str, jti: str) -> User | None:
    """The active user ``user_id`` if token ``jti`` is not revoked, else None.

    One round trip for what every authenticated request asks (the user, and the revocation
    as a scalar subquery beside it), instead of one query each.
    """
    if jti in _KNOWN_REVOKED:
        return None
    revoked = select(RevokedToken.jti).where(RevokedToken.jti == jti).exists()
    row = db.execute(select(User, revoked).where(User.id == user_id)).first()
    if row is None:
        return None
    user, is_revoked_ = row
    if is_revoked_:
        _remember(jti)
        return None
    return user if user.is_active else None


def revoke(db: Session, claims: TokenClaims) -> None:
    """Revoke the token (idempotent) and forget revocations whose tokens have expired."""
    _remember(claims.jti)
    db.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    db.add(RevokedToken(jti=claims.jti, expires_at=claims.expires_at))
    try:
        db.commit()
    except IntegrityError:  # revoked twice at once
        db.rollback()
