"""Revoking access tokens: sign-out records the token's ``jti`` until it would expire.

Every authenticated request checks its ``jti`` in the query that loads its user; tokens known to
be revoked are also remembered in this process (a revoked token never becomes valid again,
so that cache needs no invalidation).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached, object_session

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
    _forget_everywhere(None)


class Recent(NamedTuple):
    claims: TokenClaims
    user: User
    epoch: int | None  # AUTH_EPOCH_KEY's value when the user was loaded (with Redis)


#: A counter in Redis bumped after every revocation and every change to a user: a replica's
#: cached caller is valid only while the counter still reads what it did when it was loaded.
AUTH_EPOCH_KEY = "charterflow:auth-epoch"


class RecentCallers:
    """Users recently authenticated by a token, reused by read-only requests for ``ttl``
    seconds: a signed-in caller's list or page then costs no database round trip (nor a
    worker thread) to authenticate.

    Each hit returns a fresh detached copy of the row's columns, so no two requests share an
    object. What would refuse the token empties it: in this process at once (a revocation is
    in ``_KNOWN_REVOKED``, checked before every lookup; a change to the user's row, committed
    through any session, calls ``forget_user``); on other replicas through ``announce`` (with
    Redis: bumps ``AUTH_EPOCH_KEY``, which every request reads in its rate-limit call, so an
    entry loaded before the bump is not used again). Without Redis there is no other replica
    to tell (rate limits are per process too); several processes without Redis see each
    other's changes within ``ttl``.
    """

    def __init__(self, announce: Callable[[], None] | None = None, size: int = _CACHE_SIZE) -> None:
        self._entries: OrderedDict[str, tuple[float, Recent, dict[str, object]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._announce = announce
        #: Bumped by every ``forget_user``: an entry loaded before a change is not stored.
        self.generation = 0
        _CALLER_CACHES.add(self)

    def get(self, token: str) -> Recent | None:
        """The claims and user of ``token`` (keyed by the token itself, so a hit also skips
        verifying its signature again), if it is still unexpired and not revoked here; check
        ``current`` with the epoch read for this request before using it."""
        entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return None
        claims = entry[1].claims
        if claims.jti in _KNOWN_REVOKED or claims.expires_at.timestamp() <= time.time():
            return None
        user = User(**entry[2])
        make_transient_to_detached(user)
        return entry[1]._replace(user=user)

    def current(self, recent: Recent, epoch: int | None) -> bool:
        """Whether ``recent`` may be used by a request that read ``epoch`` (None: no Redis
        answer); without ``announce`` (no Redis) only this process's own state counts."""
        return self._announce is None or (epoch is not None and recent.epoch == epoch)

    def put(
        self,
        token: str,
        claims: TokenClaims,
        user: User,
        ttl: float,
        generation: int,
        epoch: int | None = None,
    ) -> None:
        """Remember ``user`` for ``token`` (whose verified ``claims`` name them) if nothing
        changed since ``generation`` and ``epoch`` (both read before the user was loaded)."""
        if self._announce is not None and epoch is None:
            return
        values = {c.key: getattr(user, c.key) for c in _USER_COLUMNS}
        with self._lock:
            if generation != self.generation or claims.jti in _KNOWN_REVOKED:
                return
            self._entries[token] = (time.monotonic() + ttl, Recent(claims, user, epoch), values)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self.generation += 1
            gone = [t for t, e in self._entries.items() if e[1].claims.subject == user_id]
            for token in gone:
                del self._entries[token]

    def announce(self) -> None:
        """Tell the other replicas that cached callers may be stale (after a commit)."""
        if self._announce is not None:
            self._announce()


#: Every app's cache (one per app: each trusts only the tokens its own settings verified).
_CALLER_CACHES: weakref.WeakSet[RecentCallers] = weakref.WeakSet()
_USER_COLUMNS = tuple(User.__mapper__.column_attrs)
_CHANGED = "charterflow_changed_users"


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
def _user_changed(_mapper: object, _connection: object, target: User) -> None:
    """Forget the user when the change is flushed and again when it commits (a request that
    loaded the old row in between must not keep it)."""
    for cache in list(_CALLER_CACHES):
        cache.forget_user(target.id)
    session = object_session(target)
    if session is not None:
        session.info.setdefault(_CHANGED, set()).add(target.id)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    for user_id in session.info.pop(_CHANGED, ()):
        _forget_everywhere(user_id)


def _forget_everywhere(user_id: str | None) -> None:
    """After a commit: forget ``user_id`` (None: a token was revoked) in every cache of this
    process, and tell the other replicas."""
    for cache in list(_CALLER_CACHES):
        if user_id is not None:
            cache.forget_user(user_id)
        cache.announce()
