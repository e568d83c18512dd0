"""Backups, restores and phased migrations: the operations that keep an instance's data safe.

A backup is two S3 objects under ``<BACKUP_PREFIX><instance>/``: ``<UTC stamp>.dump``, the
``pg_dump`` custom-format (compressed) archive streamed from pg_dump's stdout straight into a
multipart upload, and ``<UTC stamp>.json``, its manifest (size, sha256, versions, Alembic
revision, the document objects the dump refers to). The manifest is written last, so a backup
without one is incomplete and is never restored. Document bytes are not copied: they already
live in the bucket. Age, for retention, is the stamp in the key (not ``LastModified``, which a
bucket copy or replication rewrites). See docs/operations.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from charterflow import __version__
from charterflow.settings import Settings
from charterflow.storage import ObjectNotFound, S3Storage, StorageError, check_key

if TYPE_CHECKING:
    import psycopg
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import Engine

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_BACKUP_FILE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)\.(?P<ext>dump|json)$")
_PG_VERSION = re.compile(r"\(PostgreSQL\)\s+(?P<version>(?P<major>\d+)(?:\.\d+)*)")
_PHASE_LINE = re.compile(r"^Phase:\s*(?P<phase>\S+)\s*$", re.MULTILINE)
PHASES = ("expand", "contract")
MIB = 1024 * 1024
DUMP_TYPE = "application/octet-stream"


class LifecycleError(RuntimeError):
    """A failure the operator can act on; the message is printed as is and holds no secret."""


# --- connections and client tools ------------------------------------------------------------


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


def _s3(settings: Settings) -> S3Storage:
    if not settings.s3_bucket:
        raise LifecycleError("S3_BUCKET is not set: backups are written to S3")
    storage = S3Storage(settings)
    storage.check()
    return storage


def backup_base(prefix: str, name: str) -> str:
    """``<prefix><name>/``, the folder of one instance's backups."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = f"{prefix}{name}/"
    try:
        check_key(base + "x")
    except ValueError:
        raise LifecycleError(f"invalid backup prefix or name: {base!r}") from None
    return base


# --- listing and retention -------------------------------------------------------------------


@dataclass
class StoredBackup:
    """One stamp's objects; complete when both the dump and its manifest exist."""

    stamp: datetime
    keys: dict[str, str] = field(default_factory=dict)  # extension -> key

    @property
    def complete(self) -> bool:
        return {"dump", "json"} <= self.keys.keys()


def list_backups(storage: S3Storage, base: str) -> list[StoredBackup]:
    """The backups directly under ``base``, oldest first; other objects are not ours."""
    found: dict[str, StoredBackup] = {}
    for obj in storage.list(base):
        match = _BACKUP_FILE.match(obj.key[len(base) :])
        if not match:
            continue
        stamp = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
        found.setdefault(match["stamp"], StoredBackup(stamp)).keys[match["ext"]] = obj.key
    return [found[s] for s in sorted(found)]


def prune(storage: S3Storage, base: str, retention_days: int, now: datetime) -> list[str]:
    """Delete backups stamped more than ``retention_days`` before ``now``; keep the newest
    complete one whatever its age. ``0`` keeps everything. Returns the deleted keys."""
    if retention_days <= 0:
        return []
    backups = list_backups(storage, base)
    complete = [b for b in backups if b.complete]
    newest = complete[-1] if complete else None
    cutoff = now - timedelta(days=retention_days)
    deleted = []
    for b in backups:
        if b.stamp < cutoff and b is not newest:
            for ext in ("json", "dump"):  # manifest first: a half-deleted backup is incomplete
                if ext in b.keys:
                    storage.delete(b.keys[ext])
                    deleted.append(b.keys[ext])
    return deleted


# --- backup ----------------------------------------------------------------------------------


class _DumpFailed(Exception):
    """pg_dump exited non-zero; raised from ``read`` so that the upload never completes."""


class _HashingPipe(io.RawIOBase):
    """pg_dump's stdout as a file for ``upload_fileobj``: counts and hashes what passes.

    At end of stream it waits for pg_dump and raises if it failed, before the last part (or
    the single put of a small dump) is handed to S3: a failed dump never becomes an object.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        assert self.proc.stdout is not None
        want = -1 if size is None else size
        data = self.proc.stdout.read(want)
        self.sha256.update(data)
        self.size += len(data)
        at_end = want < 0 or len(data) < want  # a buffered read returns short only at EOF
        if at_end and self.proc.wait() != 0:
            raise _DumpFailed
        return data


def _describe(exc: BaseException) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
    if isinstance(exc, BotoCoreError | StorageError):
        return str(exc)
    return type(exc).__name__


def _stream_dump(
    storage: S3Storage, db: Database, pg_dump: str, snapshot: str, key: str, lock_wait: int
) -> tuple[int, str]:
    """Run pg_dump on ``snapshot`` into ``key``; returns ``(size, sha256)``."""
    from boto3.s3.transfer import TransferConfig

    cmd = [
        pg_dump,
        "--format=custom",
        "--no-password",
        f"--snapshot={snapshot}",
        f"--lock-wait-timeout={lock_wait}s",
        "--dbname",
        db.conninfo,
    ]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=errors, env=db.env("charterflow-backup")
        )
        pipe = _HashingPipe(proc)
        try:
            storage.client.upload_fileobj(
                pipe,
                storage.bucket,
                key,
                ExtraArgs={
                    "ContentType": "application/octet-stream",
                    "ServerSideEncryption": "AES256",
                },
                Config=TransferConfig(
                    multipart_threshold=8 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4
                ),
            )
            failed: str | None = None
        except _DumpFailed:
            failed = "pg_dump"
        except Exception as exc:
            failed = f"upload to s3://{storage.bucket}/{key} failed: {_describe(exc)}"
        finally:
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
        if failed is None and code != 0:
            failed = "pg_dump"
        if failed is None:
            return pipe.size, pipe.sha256.hexdigest()
        _delete_quietly(storage, key)
        if failed == "pg_dump":
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip()
            raise LifecycleError(f"pg_dump failed (exit {code}): {db.scrub(detail)}")
        raise LifecycleError(failed)


def _delete_quietly(storage: S3Storage, key: str) -> None:
    # The failure being reported matters more; an orphan dump (no manifest) is never restored.
    with contextlib.suppress(StorageError):
        storage.delete(key)


def _table_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",)).fetchone()
    return bool(row and row[0])


def run_backup(
    settings: Settings, *, name: str, prefix: str, retention_days: int, lock_wait: int = 300
) -> dict[str, Any]:
    """Dump the database to S3, write the manifest, prune; returns the manifest."""
    import psycopg

    db = Database.from_settings(settings)
    pg_dump = find_tool("pg_dump", settings.pg_dump)
    dump_major, dump_version = tool_version(pg_dump)
    storage = _s3(settings)
    base = backup_base(prefix, name)
    created = datetime.now(UTC)
    stem = base + created.strftime(STAMP_FORMAT)
    if storage.exists(stem + ".dump") or storage.exists(stem + ".json"):
        raise LifecycleError(f"a backup named {stem} exists already; try again in a second")

    with db.connect() as conn:
        # One snapshot for the manifest and the dump: the documents listed are the ones dumped.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        server_major = conn.info.server_version // 10000
        require_major("pg_dump", dump_major, server_major, "the database server")
        revision = None
        if _table_exists(conn, "alembic_version"):
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        documents = []
        if _table_exists(conn, "documents"):
            rows = conn.execute(
                "SELECT storage_key, sha256, size_bytes FROM documents ORDER BY storage_key"
            )
            documents = [{"key": k, "sha256": s, "size": n} for k, s, n in rows]
        size, sha256 = _stream_dump(storage, db, pg_dump, snapshot, stem + ".dump", lock_wait)
        server_version = conn.info.parameter_status("server_version")

    manifest: dict[str, Any] = {
        "format": 1,
        "instance": name,
        "created": created.isoformat(),
        "completed": datetime.now(UTC).isoformat(),
        "key": stem + ".dump",
        "size": size,
        "sha256": sha256,
        "app_version": __version__,
        "alembic_revision": revision,
        "pg_dump_version": dump_version,
        "server_version": server_version,
        "documents": documents,
        "documents_bytes": sum(d["size"] for d in documents),
    }
    body = io.BytesIO(json.dumps(manifest, indent=2).encode())
    try:
        storage.put(stem + ".json", body, content_type="application/json")
    except StorageError:
        _delete_quietly(storage, stem + ".dump")
        raise
    print(f"backup written: s3://{storage.bucket}/{stem}.dump ({size} bytes, sha256 {sha256})")
    deleted = prune(storage, base, retention_days, created)
    if deleted:
        print(f"pruned {len(deleted)} objects older than {retention_days} days")
    return manifest


# --- restore ---------------------------------------------------------------------------------


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
    storage = _s3(settings)
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


# --- phased migrations -----------------------------------------------------------------------


def revision_phase(script: Script) -> str:
    """A revision's phase, from the ``Phase:`` line of its docstring (default ``expand``)."""
    match = _PHASE_LINE.search(script.module.__doc__ or "")
    phase = match["phase"] if match else "expand"
    if phase not in PHASES:
        raise LifecycleError(
            f"migration {script.revision}: Phase must be expand or contract, not {phase!r}"
        )
    return phase


def phase_target(scripts: ScriptDirectory, current: str | None, phase: str) -> str | None:
    """The revision ``migrate --phase`` upgrades to from ``current``.

    ``expand`` stops before the first pending contract revision (old pods still run and must
    keep working); ``contract`` and ``all`` go to head. An expand revision pending after a
    contract one cannot be applied safely before the rollout, and is refused.
    """
    if phase != "expand":
        return scripts.get_current_head()
    if len(scripts.get_heads()) > 1:
        raise LifecycleError("the migration history has several heads: merge them first")
    history = list(reversed(list(scripts.walk_revisions())))
    ids = [s.revision for s in history]
    pending = history[ids.index(current) + 1 :] if current else history
    target = current
    for i, script in enumerate(pending):
        if revision_phase(script) == "contract":
            later = [s.revision for s in pending[i + 1 :] if revision_phase(s) == "expand"]
            if later:
                raise LifecycleError(
                    f"expand revision(s) {', '.join(later)} come after contract revision "
                    f"{script.revision}: move contract revisions to the end of a release"
                )
            break
        target = script.revision
    return target


def migrate_phase(engine: Engine, phase: str) -> str | None:
    """Run the migrations of ``phase`` (``expand`` | ``contract`` | ``all``); returns the
    revision the database is at. A database newer than this code is left alone (a rollback
    after an expand-only upgrade), with a warning."""
    from alembic.script import ScriptDirectory

    from charterflow.db import alembic_config, current_revision, migrate

    scripts = ScriptDirectory.from_config(alembic_config(engine))
    current = current_revision(engine)
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        print(
            f"warning: the database is at revision {current}, newer than this version knows "
            f"(head {scripts.get_current_head()}); leaving it as it is",
            file=sys.stderr,
        )
        return current
    target = phase_target(scripts, current, phase)
    if target is not None and target != current:
        migrate(engine, target)
    return current_revision(engine)


# --- CLI entry points (charterflow.cli calls these) ------------------------------------------


def _report(command: str, exc: Exception, settings: Settings) -> int:
    message = str(exc).strip() or type(exc).__name__
    with contextlib.suppress(LifecycleError):  # mask the password, when there is one
        message = Database.from_settings(settings).scrub(message)
    print(f"charterflow {command}: error: {message}", file=sys.stderr)
    return 1


def backup(args: argparse.Namespace, settings: Settings) -> int:
    """``charterflow backup``: exit 0 with the backup written and old ones pruned, else 1."""
    import psycopg

    try:
        manifest = run_backup(
            settings,
            name=args.name or settings.charterflow_instance,
            prefix=settings.backup_prefix if args.prefix is None else args.prefix,
            retention_days=(
                settings.backup_retention_days
                if args.retention_days is None
                else args.retention_days
            ),
            lock_wait=args.lock_wait_timeout,
        )
    except (LifecycleError, StorageError, psycopg.Error) as exc:
        return _report("backup", exc, settings)
    if settings.backup_result_file:
        _write_result(Path(settings.backup_result_file), manifest)
    return 0


def _write_result(path: Path, manifest: dict[str, Any]) -> None:
    """The backup's key, size and checksum where the operator reads them (a container's
    termination message holds at most 4 KiB, so not the document list). The backup itself is
    written already: failing to say so is a warning, not a failed backup."""
    result = {key: manifest[key] for key in ("key", "size", "sha256")}
    try:
        path.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    except OSError as exc:
        print(f"charterflow backup: warning: cannot write {path}: {exc}", file=sys.stderr)


def restore(args: argparse.Namespace, settings: Settings) -> int:
    """``charterflow restore``: exit 0 with the backup restored and migrated, else 1."""
    import psycopg

    try:
        run_restore(
            settings,
            source=args.source,
            name=args.name or settings.charterflow_instance,
            prefix=settings.backup_prefix if args.prefix is None else args.prefix,
            force=args.force,
        )
    except (LifecycleError, StorageError, psycopg.Error) as exc:
        return _report("restore", exc, settings)
    return 0
