"""Alembic environment: run with the engine (or connection) that ``charterflow.db`` hands in."""

from __future__ import annotations

from alembic import context

import charterflow.models  # noqa: F401  - registers every table on Base.metadata
from charterflow.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with config.attributes["engine"].connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
