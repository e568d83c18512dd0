"""Both images, built by ``make images``, run for real as the chart runs them.

Each container runs from the docker-archive that a node imports, as UID 10001 with a read-only
root file system, no capabilities and a writable /tmp only (tests/support/oci.py): what breaks
under those is fixed in the image, never relaxed here.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest

from tests.support import oci
from tests.support.processes import free_port
from tests.support.services import PostgresServer

#: A production configuration that passes `charterflow check` (the database is never contacted).
PRODUCTION = {
    "JWT_SECRET": "x" * 40,
    "DATABASE_URL": "postgresql://charterflow:secret@db.invalid:5432/charterflow",
}
PROBE = """
import os
print("ids", os.getuid(), os.getgid())
print("cap", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])
try:
    open("/opt/written", "w")
except OSError as exc:
    print("root", exc.strerror)
open("/tmp/written", "w").write("ok")
print("tmp", open("/tmp/written").read())
"""


@pytest.fixture(params=["app", "operator"])
def image(request: pytest.FixtureRequest) -> oci.Image:
    return request.getfixturevalue(f"{request.param}_image")


def test_runs_as_10001_without_capabilities_on_a_read_only_root(
    runner: oci.Runner, image: oci.Image
) -> None:
    done = runner.run(image, ["python", "-c", PROBE])
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines == {
        "ids": "10001 10001",
        "cap": "0000000000000000",
        "root": "Read-only file system",
        "tmp": "ok",
    }


def test_app_entrypoint_help(runner: oci.Runner, app_image: oci.Image) -> None:
    assert app_image.entrypoint == ["charterflow"]
    done = runner.run(app_image, ["charterflow", "--help"])
    assert done.returncode == 0, done.stderr
    for command in ("serve", "worker", "migrate", "backup", "restore", "check"):
        assert command in done.stdout


def test_app_check_refuses_the_default_production_config_then_accepts_a_real_one(
    runner: oci.Runner, app_image: oci.Image
) -> None:
    refused = runner.run(app_image, ["charterflow", "check"])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "JWT_SECRET" in refused.stderr
    accepted = runner.run(app_image, ["charterflow", "check"], env=PRODUCTION)
    assert accepted.returncode == 0, accepted.stderr
    assert "configuration OK (production)" in accepted.stdout


@pytest.mark.parametrize("tool", ["pg_dump", "pg_restore"])
def test_postgres_client_on_path_is_18_or_newer(
    runner: oci.Runner, app_image: oci.Image, tool: str
) -> None:
    done = runner.run(app_image, [tool, "--version"])
    assert done.returncode == 0, done.stderr
    found = re.search(rf"^{tool} \(PostgreSQL\) (\d+)\.", done.stdout)
    assert found, done.stdout
    assert int(found.group(1)) >= 18


@pytest.mark.services
def test_pg_dump_and_pg_restore_work_against_the_test_server(
    runner: oci.Runner, app_image: oci.Image, postgres_url: str
) -> None:
    """The client's libraries load and it speaks to a real PostgreSQL 18 (host network)."""
    script = 'pg_dump --format=custom --file=/tmp/db.dump "$URL" && pg_restore --list /tmp/db.dump'
    done = runner.run(app_image, ["sh", "-c", script], env={"URL": postgres_url})
    assert done.returncode == 0, done.stderr
    assert "EXTENSION - vector" in done.stdout


def test_operator_entrypoint_help_and_every_module_imports(
    runner: oci.Runner, operator_image: oci.Image
) -> None:
    assert operator_image.entrypoint == ["charterflow-operator"]
    done = runner.run(operator_image, ["charterflow-operator", "--help"])
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()
    # The operator image carries only the operator extra's dependencies: all of them suffice.
    walk = (
        "import importlib, pkgutil, charterflow_operator as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names))"
    )
    imported = runner.run(operator_image, ["python", "-c", walk])
    assert imported.returncode == 0, imported.stderr
    assert int(imported.stdout.strip()) >= 5


#: Every app module (but the CLI entry and Alembic's env, which run on import), then each
#: compiled extension the app loads, used once: the build strips their symbol tables and deletes
#: headers, stubs, test harnesses and libraries it found unused (Dockerfile.app), and this is
#: what proves the rest still loads and works.
APP_IMPORTS = """
import importlib, pkgutil, charterflow as p
skip = {"charterflow.__main__", "charterflow.migrations.env"}
names = [m.name for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
[importlib.import_module(n) for n in names if n not in skip]
print("modules", len(names) >= 100)
import numpy as np
a = np.arange(64.0).reshape(8, 8)
print("blas", int((a @ a.T).trace()), round(np.linalg.det(np.eye(3) * 2)))
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
print("aes", len(AESGCM(b"k" * 16).encrypt(b"n" * 12, b"x", None)))
import psycopg
print("libpq", psycopg.pq.__impl__, psycopg.pq.version() >= 170000)
import yaml
print("yaml", yaml.__with_libyaml__, yaml.load("a: 1", Loader=yaml.CLoader))
import lxml.html
print("html", lxml.html.fromstring("<p>a<b>b</b></p>").text_content())
import argon2
print("argon2", argon2.PasswordHasher().verify(argon2.PasswordHasher().hash("pw"), "pw"))
from sqlalchemy.util import _collections_cy
from sqlalchemy.engine import _row_cy
print("sqlalchemy", _collections_cy.__file__.endswith(".so"), _row_cy.__file__.endswith(".so"))
import uvloop, httptools, markupsafe._speedups, pydantic_core, tokenizers, onnxruntime
print("runtime", "CPUExecutionProvider" in onnxruntime.get_available_providers())
"""


def test_app_every_module_imports_and_its_compiled_extensions_work(
    runner: oci.Runner, app_image: oci.Image
) -> None:
    done = runner.run(app_image, ["python", "-c", APP_IMPORTS])
    assert done.returncode == 0, done.stderr
    assert dict(line.split(" ", 1) for line in done.stdout.splitlines()) == {
        "modules": "True",
        "blas": "85344 8",
        "aes": "17",
        "libpq": "binary True",
        "yaml": "True {'a': 1}",
        "html": "ab",
        "argon2": "True",
        "sqlalchemy": "True True",
        "runtime": "True",
    }


def test_api_serves_health_on_sqlite_with_uploads_in_tmp_and_stops_on_sigterm(
    runner: oci.Runner, app_image: oci.Image, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "CHARTERFLOW_ENV": "development",
        "DATABASE_URL": "sqlite:////tmp/charterflow.db",
        "PORT": str(port),
    }
    assert "UPLOAD_PATH=/tmp/uploads" in app_image.env
    log = tmp_path / "serve.log"
    args = ["sh", "-c", "charterflow migrate && exec charterflow serve"]
    name, process = runner.start(app_image, args, env, log)
    try:
        body = ready = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as r:
                    body = r.read().decode()
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health/ready", timeout=5
                ) as r:
                    ready = r.status
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, log.read_text()[-3000:]
        assert '"ok"' in body
        assert ready == 200, log.read_text()[-3000:]
        # The default embedder loads from the graph exported at build time (the image has
        # neither onnx nor the weights package) and embeds.
        embeddings: dict[str, object] = {}
        while time.monotonic() < deadline and embeddings.get("status") in (None, "loading"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as r:
                embeddings = json.loads(r.read())["checks"]["embeddings"]
            time.sleep(0.5)
        assert embeddings.get("status") == "ok", (embeddings, log.read_text()[-3000:])
        assert embeddings["provider"] == "semantic"
    finally:
        code = runner.stop(name, process)
    assert code == 0, f"exit {code} on SIGTERM\n{log.read_text()[-3000:]}"


@pytest.mark.services
def test_backup_and_restore_run_in_the_app_image_against_real_services(
    runner: oci.Runner,
    app_image: oci.Image,
    postgres_url: str,
    pg_server: PostgresServer | None,
    s3_env: dict[str, str],
) -> None:
    """`charterflow backup|restore` find pg_dump/pg_restore on the image's PATH and work."""
    if pg_server is None:
        pytest.skip("restoring needs a second database on the test server")
    env = {**PRODUCTION, **s3_env, "DATABASE_URL": postgres_url}
    backup = runner.run(
        app_image, ["sh", "-c", "charterflow migrate && charterflow backup --name img"], env=env
    )
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "backup written: s3://" in backup.stdout

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_env["S3_ENDPOINT_URL"],
        region_name=s3_env["S3_REGION"],
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
    )
    listed = s3.list_objects_v2(Bucket=s3_env["S3_BUCKET"])
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith(".dump") for k in keys), keys

    target = pg_server.create_database(f"r_{uuid.uuid4().hex[:12]}")
    restore = runner.run(
        app_image,
        ["charterflow", "restore", "--name", "img", "--from", "latest"],
        env={**env, "DATABASE_URL": target},
    )
    assert restore.returncode == 0, restore.stdout + restore.stderr
    with psycopg.connect(target) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    with psycopg.connect(postgres_url) as conn:
        (expected,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == expected
