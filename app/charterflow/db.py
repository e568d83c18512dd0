"""Engine, sessions and migrations: one place that knows how CharterFlow talks to its database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from charterflow.settings import Settings

# Named constraints make migrations portable (SQLite batch mode needs names to alter them).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MIGRATION_LOCK_ID = 0x43484654  # "CHFT": the advisory lock that serialises `charterflow migrate`
#: A pooled connection idle for longer than this is pinged before use (see ``_ping_when_idle``).
IDLE_PING_SECONDS = 10.0


class Base(DeclarativeBase):
    """Declarative base of every CharterFlow model."""

    metadata = MetaData(naming_convention=NAMING)


def make_engine(settings: Settings, *, url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``DATABASE_URL`` (or ``url``); SQLite gets foreign keys and a busy
    timeout."""
    url = url or settings.sqlalchemy_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    timeout = max(1, int(settings.dependency_timeout_seconds))
    engine = create_engine(
        url,
        # The same 20 connections at most as before, all kept: with 10 kept and 10 overflow,
        # each overflow connection was closed at check-in and opened again (a PostgreSQL
        # backend fork) under 16 concurrent requests.
        pool_size=kwargs.pop("pool_size", 20),
        max_overflow=kwargs.pop("max_overflow", 0),
        pool_timeout=kwargs.pop("pool_timeout", 10),
        connect_args={"connect_timeout": timeout},
        **kwargs,
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping a pooled connection before use only if it sat idle for ``idle_seconds``.

    ``pool_pre_ping`` costs a round trip on every checkout, a sixth of an authenticated
    request's. A connection in steady use has just proven itself; one that waited (across a
    database restart or an idle timeout, say) is pinged and, if dead, replaced before the
    request sees it. A connection that dies while busy fails that request, and SQLAlchemy
    then invalidates the pool's older connections too.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("pooled connection is dead") from exc


def make_read_engine(settings: Settings) -> Engine | None:
    """An engine for ``DATABASE_READ_URL`` (a streaming replica), None when it is unset."""
    url = settings.sqlalchemy_read_url
    return make_engine(settings, url=url) if url else None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (for workers and the CLI)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("charterflow") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def _advisory_lock(conn: Connection, key: int, poll_seconds: float = 0.5) -> None:
    """Take a session-level advisory lock, polling with no transaction open while waiting.

    A pod blocked in ``pg_advisory_lock`` would keep a snapshot open, and the pod holding the
    lock may be running ``CREATE INDEX CONCURRENTLY``, which waits for every older snapshot:
    a deadlock. The lock outlives each commit, and Alembic then owns the transactions (its
    ``autocommit_block`` needs that).
    """
    while True:
        got = conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": key})
        conn.commit()
        if got:
            return
        time.sleep(poll_seconds)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision``; idempotent, and serialised across pods on PostgreSQL."""
    cfg = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            _advisory_lock(conn, MIGRATION_LOCK_ID)
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                conn.commit()
    else:
        command.upgrade(cfg, revision)


def migrate_database(settings: Settings) -> Settings:
    """Migrate the database of ``settings`` with an engine of its own, closed afterwards (for
    callers that hold no engine: tests and benchmarks); returns ``settings``."""
    engine = make_engine(settings)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return settings


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()
