"""Backups to S3 and restores from them, end to end: the real CLI, PostgreSQL and S3 server.

The instance is filled through the real API (accounts, workspaces, notebooks, uploaded
documents, audit events) plus passages in ``chunks`` when that table exists; the comparison
covers every table in ``public``, so tables added later are covered without changing this file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from charterflow.settings import Settings

from tests.api.conftest import API, BASE, Account, serve
from tests.lifecycle.conftest import PASSWORD, Instance, manifest_of
from tests.support.processes import free_port
from tests.support.services import RedisServer

pytestmark = pytest.mark.services

FILES = {
    "notes.md": b"# Launch plan\n\nShip the charter by Friday.\n" * 50,
    "faq.txt": "Questions & answers, \u00e9t\u00e9 \u2014 unicode survives.\n".encode() * 200,
    "data.csv": b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(5000)),
}


@dataclass
class Populated:
    """A filled instance and its one backup."""

    inst: Instance
    settings: Settings
    account: Account
    documents: dict[str, str]  # id -> sha256 of the uploaded bytes
    before: dict[str, tuple[int, str]]
    manifest_key: str
    result: str  # what the backup wrote to BACKUP_RESULT_FILE (its termination message)


def _app_settings(inst: Instance, redis_url: str) -> Settings:
    # REDIS_URL: uploads are queued on a real Redis that no worker reads, so document rows
    # stay as they are while the tables are compared.
    env = inst.env()
    return Settings(
        _env_file=None,
        database_url=env["DATABASE_URL"],
        s3_bucket=env["S3_BUCKET"],
        s3_region=env["S3_REGION"],
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        redis_url=redis_url,
        upload_path=inst.workdir / "unused",
        **BASE,
    )


def _add_chunks(settings: Settings, documents: list[dict[str, Any]]) -> None:
    """Passages with embeddings, when the schema has them (pgvector types must survive)."""
    import charterflow.models as models
    import numpy as np
    from charterflow.db import make_engine, make_session_factory, session_scope

    chunk = getattr(models, "Chunk", None)
    if chunk is None:
        return
    dim = int(getattr(models.chunk, "EMBEDDING_DIM", 384))  # type: ignore[attr-defined]
    engine = make_engine(settings)
    rng = np.random.default_rng(7)
    try:
        with session_scope(make_session_factory(engine)) as session:
            for doc in documents:
                for ordinal in range(3):
                    text = f"passage {ordinal} of {doc['title']}"
                    session.add(
                        chunk(
                            document_id=doc["id"],
                            notebook_id=doc["notebook_id"],
                            workspace_id=doc["workspace_id"],
                            ordinal=ordinal,
                            text=text,
                            start=ordinal * 100,
                            end=ordinal * 100 + len(text),
                            page=None,
                            embedding=rng.standard_normal(dim).astype("float32"),
                            embedding_model="test-model",
                        )
                    )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def populated(
    make_instance: Callable[..., Instance], redis_server: RedisServer | None
) -> Populated:
    inst = make_instance()
    redis_url = redis_server.url if redis_server else os.environ["TEST_REDIS_URL"]
    settings = _app_settings(inst, redis_url)
    documents: dict[str, str] = {}
    with serve("postgres", settings) as api:
        owner, editor = api.register("Ada"), api.register("Grace")
        notebook = api.notebook(owner)
        api.add_member(owner, notebook["workspace_id"], editor, "editor")
        second = api.notebook(editor, notebook["workspace_id"])
        rows = []
        for i, (name, data) in enumerate(FILES.items()):
            target = notebook if i % 2 == 0 else second
            r = api.upload(owner, target["id"], name, data)
            assert r.status_code == 202, r.text
            rows.append(r.json())
            documents[r.json()["id"]] = hashlib.sha256(data).hexdigest()
    _add_chunks(settings, rows)

    before = inst.tables()
    assert before["documents"][0] == len(FILES)
    assert before.get("chunks", (1,))[0] > 0  # when the table exists, it has rows
    result = inst.workdir / "termination-log"
    done = inst.cli("backup", BACKUP_RESULT_FILE=str(result))
    assert done.returncode == 0, done.stderr
    manifests = [k for k in inst.objects("backups/acme/") if k.endswith(".json")]
    assert len(manifests) == 1
    assert inst.tables() == before  # a backup changes nothing
    return Populated(inst, settings, owner, documents, before, manifests[0], result.read_text())


def test_backup_writes_a_verifiable_encrypted_dump_and_a_manifest(populated: Populated) -> None:
    inst = populated.inst
    s3 = inst.s3.client()
    manifest = manifest_of(inst, populated.manifest_key)
    dump_key = populated.manifest_key.removesuffix(".json") + ".dump"
    assert manifest["key"] == dump_key
    body = s3.get_object(Bucket=inst.bucket, Key=dump_key)["Body"].read()
    assert body.startswith(b"PGDMP")  # pg_dump's custom format
    assert (len(body), hashlib.sha256(body).hexdigest()) == (manifest["size"], manifest["sha256"])
    for key in (dump_key, populated.manifest_key):
        assert s3.head_object(Bucket=inst.bucket, Key=key)["ServerSideEncryption"] == "AES256"

    with psycopg.connect(inst.admin_url) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        docs = conn.execute("SELECT storage_key, sha256 FROM documents ORDER BY 1").fetchall()
    assert manifest["alembic_revision"] == revision[0]  # type: ignore[index]
    assert [(d["key"], d["sha256"]) for d in manifest["documents"]] == docs
    assert sorted(d["sha256"] for d in manifest["documents"]) == sorted(
        populated.documents.values()
    )
    assert manifest["documents_bytes"] == sum(len(b) for b in FILES.values())
    assert manifest["pg_dump_version"].split(".")[0] == manifest["server_version"].split(".")[0]
    assert manifest["app_version"]
    assert manifest["created"].startswith(
        populated.manifest_key.rsplit("/", 1)[1][:4]  # the year of the stamp in the key
    )
    # What the operator puts in status.lastBackup: one short line naming this very dump.
    assert json.loads(populated.result) == {
        "key": dump_key,
        "size": manifest["size"],
        "sha256": manifest["sha256"],
    }
    assert populated.result.count("\n") == 1


def test_restore_into_a_dropped_database_brings_back_every_row_and_document(
    populated: Populated,
) -> None:
    inst = populated.inst
    inst.recreate_database()
    assert inst.tables() == {}

    done = inst.cli("restore", "--from", "latest")
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout

    assert inst.tables() == populated.before
    with serve("postgres", populated.settings) as api:
        r = api.client.post(
            f"{API}/auth/login",
            json={"email": populated.account.email, "password": populated.account.password},
        )
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for doc_id, sha256 in populated.documents.items():
            r = api.client.get(f"{API}/documents/{doc_id}/content", headers=headers)
            assert r.status_code == 200, r.text
            assert hashlib.sha256(r.content).hexdigest() == sha256


def test_restore_refuses_a_non_empty_database_unless_forced(populated: Populated) -> None:
    inst = populated.inst
    with psycopg.connect(inst.admin_url) as conn:  # a change made after the backup
        conn.execute("DELETE FROM notebooks WHERE title = 'Research'")
    changed = inst.tables()
    assert changed != populated.before

    refused = inst.cli("restore", "--from", populated.manifest_key)
    assert refused.returncode == 1
    assert "not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert inst.tables() == changed

    with psycopg.connect(inst.admin_url) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()  # type: ignore[misc]
        conn.execute("UPDATE alembic_version SET version_num = 'elsewhere'")
    other = inst.cli("restore", "--from", populated.manifest_key, "--force")
    assert other.returncode == 1
    assert "--force needs the database at the backup's revision" in other.stderr
    with psycopg.connect(inst.admin_url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = %s", (revision,))
    assert inst.tables() == changed

    forced = inst.cli("restore", "--from", populated.manifest_key, "--force")
    assert forced.returncode == 0, forced.stderr
    assert inst.tables() == populated.before


def test_a_large_dump_streams_in_parts_and_restores(
    make_instance: Callable[..., Instance],
) -> None:
    """A dump larger than one upload part goes up as a multipart upload from the pipe."""
    inst = make_instance()
    with psycopg.connect(inst.admin_url) as conn:
        conn.execute("CREATE TABLE filler (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute(  # hex of random numbers: compresses to about half, ~24 MB dumped
            "INSERT INTO filler SELECT g, (SELECT string_agg(md5(random()::text || g || i), '')"
            " FROM generate_series(1, 500) AS i) FROM generate_series(1, 3000) AS g"
        )
    before = inst.tables()
    assert inst.cli("backup").returncode == 0
    (dump_key,) = [k for k in inst.objects() if k.endswith(".dump")]
    head = inst.s3.client().head_object(Bucket=inst.bucket, Key=dump_key)
    assert head["ContentLength"] > 16 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-2")  # an S3 multipart ETag: two parts
    inst.recreate_database()
    done = inst.cli("restore", "--from", "latest")
    assert done.returncode == 0, done.stderr
    assert inst.tables() == before


def test_a_corrupted_dump_fails_the_checksum_and_restores_nothing(
    make_instance: Callable[..., Instance],
) -> None:
    inst = make_instance()
    assert inst.cli("backup").returncode == 0
    (dump_key,) = [k for k in inst.objects() if k.endswith(".dump")]
    s3 = inst.s3.client()
    body = bytearray(s3.get_object(Bucket=inst.bucket, Key=dump_key)["Body"].read())
    body[len(body) // 2] ^= 0xFF  # one flipped byte, same size
    s3.put_object(Bucket=inst.bucket, Key=dump_key, Body=bytes(body))
    inst.recreate_database()

    done = inst.cli("restore", "--from", "latest")
    assert done.returncode == 1
    assert "checksum mismatch" in done.stderr
    assert inst.tables() == {}


def test_backup_of_an_unreachable_database_fails_readably_and_writes_nothing(
    make_instance: Callable[..., Instance],
) -> None:
    inst = make_instance(migrated=False)
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/gone"
    result = inst.workdir / "termination-log"
    done = inst.cli("backup", DATABASE_URL=url, BACKUP_RESULT_FILE=str(result))
    assert done.returncode == 1
    assert "cannot connect to the database" in done.stderr
    assert "Traceback" not in done.stderr
    assert inst.objects() == {}
    assert not result.exists()  # a failed backup names no key


def test_a_pg_dump_failure_fails_the_backup_and_writes_nothing(
    make_instance: Callable[..., Instance],
) -> None:
    """pg_dump cannot lock a table that a migration holds: it fails, and no object is left."""
    inst = make_instance()
    with psycopg.connect(inst.admin_url) as conn:
        conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        done = inst.cli("backup", "--lock-wait-timeout", "1")
    assert done.returncode == 1
    assert "pg_dump failed" in done.stderr
    assert "LOCK TABLE" in done.stderr  # pg_dump's own words reach the log
    assert inst.objects() == {}


def test_backup_without_s3_configuration_fails(make_instance: Callable[..., Instance]) -> None:
    inst = make_instance(migrated=False)
    done = inst.cli("backup", S3_BUCKET="")
    assert done.returncode == 1
    assert "S3_BUCKET is not set" in done.stderr


def test_backup_with_a_missing_pg_dump_names_the_setting(
    make_instance: Callable[..., Instance],
) -> None:
    inst = make_instance(migrated=False)
    done = inst.cli("backup", PG_DUMP=str(inst.workdir / "no-such-pg_dump"))
    assert done.returncode == 1
    assert "PG_DUMP" in done.stderr
    assert inst.objects() == {}


def test_restore_of_a_missing_backup_fails(make_instance: Callable[..., Instance]) -> None:
    inst = make_instance(migrated=False)
    latest = inst.cli("restore", "--from", "latest")
    assert latest.returncode == 1
    assert "no complete backup under" in latest.stderr
    named = inst.cli("restore", "--from", "backups/acme/20200101T000000Z.dump")
    assert named.returncode == 1
    assert "no backup at" in named.stderr
    assert inst.tables() == {}
