"""How the PostgreSQL client tools reach the database: a URL without the password (which goes
in ``PGPASSWORD``, never on a command line), and tools at least as new as what they read."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from charterflow.ops import LifecycleError
from charterflow.settings import Settings

if TYPE_CHECKING:
    import psycopg

_PG_VERSION = re.compile(r"\(PostgreSQL\)\s+(?P<version>(?P<major>\d+)(?:\.\d+)*)")


@dataclass(frozen=True)
class Database:
    """How libpq tools reach ``DATABASE_URL``: a URL without the password, and the password.

    The password goes to pg_dump/pg_restore in ``PGPASSWORD``, never on a command line.
    """

    conninfo: str
    password: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        from sqlalchemy.engine import URL, make_url

        try:
            url = make_url(settings.sqlalchemy_url)
        except ValueError as exc:
            raise LifecycleError(f"DATABASE_URL: {exc}") from None
        if url.get_backend_name() != "postgresql":
            raise LifecycleError("DATABASE_URL: backups and restores need PostgreSQL")
        bare = URL.create("postgresql", url.username, None, url.host, url.port, url.database)
        bare = bare.update_query_dict(dict(url.query))
        password = str(url.password) if url.password is not None else None
        return cls(bare.render_as_string(hide_password=False), password)

    def env(self, app: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
        env.update(PGAPPNAME=app, PGCONNECT_TIMEOUT=env.get("PGCONNECT_TIMEOUT", "10"))
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return psycopg.connect(self.conninfo, password=self.password, connect_timeout=10)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LifecycleError(f"cannot connect to the database: {self.scrub(first)}") from None

    def scrub(self, text: str) -> str:
        """``text`` with the password masked (tools' messages should not hold it; be sure)."""
        return text.replace(self.password, "***") if self.password else text


def find_tool(name: str, configured: str | None) -> str:
    """The path of ``pg_dump``/``pg_restore``: the configured one, else the one on ``PATH``."""
    path = shutil.which(configured or name)
    if not path:
        where = f"{configured!r} (set by {name.upper()})" if configured else f"{name} on PATH"
        raise LifecycleError(
            f"{where} not found: install the PostgreSQL client tools or set {name.upper()}"
        )
    return path


def tool_version(path: str) -> tuple[int, str]:
    """``(major, full version)`` of a PostgreSQL client tool, from its ``--version``."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LifecycleError(f"cannot run {path}: {exc.strerror}") from None
    match = _PG_VERSION.search(out.stdout)
    if not match:
        raise LifecycleError(f"cannot tell the version of {path}: {out.stdout.strip()!r}")
    return int(match["major"]), match["version"]


def require_major(tool: str, have: int, need: int, of_what: str) -> None:
    """Refuse a client tool older than the server (pg_dump) or the archive (pg_restore)."""
    if have < need:
        raise LifecycleError(
            f"{tool} is version {have} but {of_what} is version {need}: use the client tools "
            f"of PostgreSQL {need} or newer (set {tool.upper()} to its path)"
        )


def table_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",)).fetchone()
    return bool(row and row[0])
