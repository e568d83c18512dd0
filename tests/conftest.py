"""Shared fixtures: the real services (started once per run) and settings built on them.

A test that needs a service it cannot get FAILS under ``CI=true`` (naming the service) and is
skipped with the reason elsewhere, so that a laptop without Redis can still run the rest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.llamacpp import LlamaServer
from tests.support.llm import OpenAICompatible, Reply
from tests.support.services import PostgresServer, RedisServer, S3Server, scratch_dir

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() == "true"
# The default embedder is all-MiniLM-L6-v2 (a model load per process and ~40 ms a chunk); tests
# that do not measure retrieval quality use the model-free hashing embedder, which reaches the
# servers and workers they start through the environment. Tests of the model set it explicitly.
os.environ.setdefault("EMBEDDINGS_PROVIDER", "hashing")


def start_or_fail(name: str, start: Callable[[], T]) -> T:
    """Start a service; without it, fail in CI and skip (with the reason) elsewhere."""
    try:
        return start()
    except Exception as exc:
        message = f"{name} is unavailable: {exc}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer | None]:
    """PostgreSQL with pgvector; ``None`` when ``TEST_DATABASE_URL`` points at an outside one."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    server = start_or_fail("PostgreSQL", lambda: PostgresServer(scratch_dir("pg")).start())
    yield server
    server.stop()


@pytest.fixture
def postgres_url(pg_server: PostgresServer | None) -> str:
    """A fresh, empty database (with the vector extension) for one test."""
    if pg_server is None:
        return os.environ["TEST_DATABASE_URL"]
    return pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    if os.environ.get("TEST_REDIS_URL"):
        yield None
        return
    server = start_or_fail("Redis", lambda: RedisServer(scratch_dir("redis")).start())
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer | None) -> str:
    """Redis, emptied before the test."""
    import redis

    url = redis_server.url if redis_server else os.environ["TEST_REDIS_URL"]
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_or_fail("S3", lambda: S3Server(scratch_dir("s3")).start())
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server) -> dict[str, str]:
    """Environment for a fresh bucket on the test S3 server."""
    bucket = s3_server.create_bucket(f"cf-{uuid.uuid4().hex[:12]}")
    return {
        "S3_BUCKET": bucket,
        "S3_REGION": s3_server.region,
        "S3_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
    }


@pytest.fixture
def tmp_uploads(tmp_path: Path) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    return path


@pytest.fixture
def openai_server() -> Iterator[Callable[[Reply], OpenAICompatible]]:
    """Start local OpenAI-compatible servers answering with ``reply``; stopped afterwards."""
    servers: list[OpenAICompatible] = []

    def start(reply: Reply) -> OpenAICompatible:
        server = OpenAICompatible(reply).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """A real OpenAI-compatible server running a real model (llama-cpp-python's server with
    SmolLM2-135M-Instruct, ``scripts/llm-server``), shared by the run's model-mode tests."""
    server = start_or_fail(
        "the llama.cpp model server", lambda: LlamaServer(scratch_dir("llama")).start()
    )
    yield server
    server.stop()
