"""``charterflow backup``: one snapshot of the database, dumped by pg_dump (custom format,
compressed) straight from its stdout into a multipart upload, then the manifest (size, sha256,
versions, Alembic revision, the document objects the dump refers to), then retention. Document
bytes are not copied: they already live in the bucket."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charterflow import __version__, contract
from charterflow.ops import LifecycleError
from charterflow.ops.postgres import Database, find_tool, require_major, table_exists, tool_version
from charterflow.ops.store import STAMP_FORMAT, backup_base, open_bucket, prune
from charterflow.settings import Settings
from charterflow.storage import S3Storage, StorageError

MIB = 1024 * 1024


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


def run_backup(
    settings: Settings, *, name: str, prefix: str, retention_days: int, lock_wait: int = 300
) -> dict[str, Any]:
    """Dump the database to S3, write the manifest, prune; returns the manifest."""
    import psycopg

    db = Database.from_settings(settings)
    pg_dump = find_tool("pg_dump", settings.pg_dump)
    dump_major, dump_version = tool_version(pg_dump)
    storage = open_bucket(settings)
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
        if table_exists(conn, "alembic_version"):
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        documents = []
        if table_exists(conn, "documents"):
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


def write_result(path: Path, manifest: dict[str, Any]) -> None:
    """The backup's key, size and checksum where the operator reads them (a container's
    termination message holds at most 4 KiB, so not the document list). The backup itself is
    written already: failing to say so is a warning, not a failed backup."""
    result = {key: manifest[key] for key in contract.RESULT_KEYS}
    try:
        path.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    except OSError as exc:
        print(f"charterflow backup: warning: cannot write {path}: {exc}", file=sys.stderr)
