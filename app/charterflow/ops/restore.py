"""``charterflow restore``: verify one backup (its manifest, the dump's size and sha256, the
client tools' version), restore it with pg_restore in one transaction, then migrate to head.
Into an empty database, unless forced; the document objects it names are checked, not copied."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from typing import IO, TYPE_CHECKING, Any

from charterflow.ops import LifecycleError
from charterflow.ops.postgres import Database, find_tool, require_major, tool_version
from charterflow.ops.store import backup_base, list_backups, open_bucket
from charterflow.settings import Settings
from charterflow.storage import ObjectNotFound, S3Storage, check_key

if TYPE_CHECKING:
    import psycopg


def _resolve(storage: S3Storage, base: str, source: str) -> str:
    """The stem (key without extension) of ``latest``, a full key, or a bare stamp."""
    if source == "latest":
        complete = [b for b in list_backups(storage, base) if b.complete]
        if not complete:
            raise LifecycleError(f"no complete backup under s3://{storage.bucket}/{base}")
        return complete[-1].keys["dump"].removesuffix(".dump")
    stem = source.removesuffix(".dump").removesuffix(".json")
    return stem if "/" in stem else base + stem


def occupied_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Tables and views in ``public`` that make the database non-empty (an empty
    ``alembic_version`` does not)."""
    names = [
        row[0]
        for row in conn.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.objid = c.oid AND d.deptype = 'e')
               ORDER BY c.relname"""
        )
    ]
    if names == ["alembic_version"]:
        row = conn.execute("SELECT count(*) FROM alembic_version").fetchone()
        if row and row[0] == 0:
            return []
    return names


def _download(storage: S3Storage, key: str, out: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    try:
        for block in storage.iter_bytes(key):
            digest.update(block)
            size += len(block)
            out.write(block)
    except ObjectNotFound:
        raise LifecycleError(f"backup dump missing: s3://{storage.bucket}/{key}") from None
    out.flush()
    return size, digest.hexdigest()


def missing_documents(storage: S3Storage, manifest: dict[str, Any]) -> list[str]:
    """Document objects the backup refers to that are not in the bucket now."""
    wanted = {d["key"] for d in manifest.get("documents", [])}
    folders = {k.rsplit("/", 1)[0] + "/" if "/" in k else "" for k in wanted}
    present = {o.key for folder in folders for o in storage.list(folder)}
    return sorted(wanted - present)


def run_restore(
    settings: Settings, *, source: str, name: str, prefix: str, force: bool = False
) -> dict[str, Any]:
    """Verify and restore one backup into the database, then migrate; returns its manifest."""
    from charterflow.db import current_revision, make_engine, migrate

    db = Database.from_settings(settings)
    pg_restore = find_tool("pg_restore", settings.pg_restore)
    storage = open_bucket(settings)
    stem = _resolve(storage, backup_base(prefix, name), source)
    try:
        manifest: dict[str, Any] = json.loads(
            b"".join(storage.iter_bytes(check_key(stem + ".json")))
        )
    except ValueError:
        raise LifecycleError(f"no backup at s3://{storage.bucket}/{stem}: bad key") from None
    except ObjectNotFound:
        raise LifecycleError(
            f"no backup at s3://{storage.bucket}/{stem}.json (a dump without its manifest is "
            "incomplete)"
        ) from None
    have, _ = tool_version(pg_restore)
    made_by = int(str(manifest.get("pg_dump_version", "0")).split(".")[0])
    require_major("pg_restore", have, made_by, "the pg_dump that wrote the backup")

    with db.connect() as conn:
        occupied = occupied_tables(conn)
        revision = None
        if "alembic_version" in occupied:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    if occupied and not force:
        shown = ", ".join(occupied[:5]) + (", ..." if len(occupied) > 5 else "")
        raise LifecycleError(
            f"the database is not empty (tables: {shown}); restore into an empty database, "
            "or pass --force to replace the objects the backup contains"
        )
    if occupied and revision != manifest.get("alembic_revision"):
        # --clean replaces only what the dump holds: tables of other revisions would remain
        # and break the migration that follows.
        raise LifecycleError(
            f"--force needs the database at the backup's revision "
            f"{manifest.get('alembic_revision')}, but it is at {revision}; restore into an "
            "empty database instead"
        )

    with tempfile.NamedTemporaryFile(prefix="charterflow-restore-", suffix=".dump") as tmp:
        size, sha256 = _download(storage, stem + ".dump", tmp)
        if sha256 != manifest.get("sha256") or size != manifest.get("size"):
            raise LifecycleError(
                f"checksum mismatch for s3://{storage.bucket}/{stem}.dump: the manifest says "
                f"{manifest.get('size')} bytes sha256 {manifest.get('sha256')}, the object has "
                f"{size} bytes sha256 {sha256}; the backup is damaged, nothing was restored"
            )
        cmd = [pg_restore, "--no-owner", "--no-privileges", "--single-transaction"]
        cmd += ["--exit-on-error", "--no-password", "--dbname", db.conninfo]
        if force:
            cmd += ["--clean", "--if-exists"]
        done = subprocess.run(
            [*cmd, tmp.name], capture_output=True, text=True, env=db.env("charterflow-restore")
        )
    if done.returncode != 0:
        raise LifecycleError(
            f"pg_restore failed (exit {done.returncode}); it ran in one transaction, so the "
            f"database is unchanged: {db.scrub(done.stderr.strip())}"
        )

    engine = make_engine(settings)
    try:
        migrate(engine)
        revision = current_revision(engine)
    except Exception as exc:
        raise LifecycleError(
            f"the backup was restored, but migrating it failed: {db.scrub(str(exc))}"
        ) from exc
    finally:
        engine.dispose()
    print(
        f"restored s3://{storage.bucket}/{stem}.dump (revision {manifest.get('alembic_revision')}"
        f", {len(manifest.get('documents', []))} documents); database now at revision {revision}"
    )
    missing = missing_documents(storage, manifest)
    if missing:
        print(
            f"warning: {len(missing)} document objects named by the backup are not in "
            f"s3://{storage.bucket} (first: {missing[0]}); those documents will not download",
            file=sys.stderr,
        )
    return manifest
