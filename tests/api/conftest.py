"""The API under test, twice: on SQLite + local files, and on PostgreSQL + S3 (moto server).

Each backend gets one migrated database and one store per test module, served by a real
uvicorn server on a loopback port (real HTTP, so uploads really stream). Tests register
their own users, so they do not see each other's data.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from charterflow.db import migrate_database as migrated
from charterflow.main import create_app
from charterflow.serving import uvicorn_options
from charterflow.settings import Settings
from fastapi import FastAPI
from sqlalchemy import Engine

from tests.support.llm import OpenAICompatible, Reply
from tests.support.processes import free_port, wait_until
from tests.support.services import PostgresServer, S3Server

API = "/api/v1"
# Limits high enough that no functional test is throttled (test_http.py tests the limits).
BASE: dict[str, Any] = {
    "rate_limit_per_minute": 1_000_000,
    "login_rate_limit_per_minute": 1_000_000,
    "register_rate_limit_per_minute": 1_000_000,
    "jwt_secret": "test-signing-key-" + "k" * 32,
}


class LiveServer:
    """An app served by uvicorn in a thread of this process, so tests can see its state."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            **uvicorn_options(app.state.settings),  # as `charterflow serve`
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 30, "API server")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Account:
    user: dict[str, Any]
    token: str
    email: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def id(self) -> str:
        return str(self.user["id"])


@dataclass
class Api:
    """One running app with helpers; ``client`` speaks HTTP to it."""

    backend: str
    settings: Settings
    app: FastAPI
    client: httpx.Client
    url: str

    @property
    def storage(self) -> Any:
        return self.app.state.storage

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    def stored_keys(self) -> set[str]:
        return {o.key for o in self.storage.list("documents/")}

    def register(self, name: str = "Ada") -> Account:
        email = f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery staple"
        r = self.client.post(
            f"{API}/auth/register", json={"email": email, "password": password, "name": name}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Account(body["user"], body["access_token"], email, password)

    def personal_workspace(self, account: Account) -> str:
        items = self.client.get(f"{API}/workspaces", headers=account.headers).json()["items"]
        return next(w["id"] for w in items if w["personal"])

    def notebook(self, account: Account, workspace_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"title": "Research", "description": "sources"}
        if workspace_id:
            body["workspace_id"] = workspace_id
        r = self.client.post(f"{API}/notebooks", json=body, headers=account.headers)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def upload(
        self, account: Account, notebook_id: str, name: str, data: bytes, **form: str
    ) -> httpx.Response:
        return self.client.post(
            f"{API}/notebooks/{notebook_id}/documents",
            files={"file": (name, data, "application/octet-stream")},
            data=form,
            headers=account.headers,
        )

    def add_member(self, owner: Account, workspace_id: str, member: Account, role: str) -> None:
        """``member`` joins the workspace: invited by ``owner`` (``POST .../members`` is an
        invitation), then accepting it (no SMTP here: the link is in the answer)."""
        r = self.client.post(
            f"{API}/workspaces/{workspace_id}/members",
            json={"email": member.email, "role": role},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        token = str(r.json()["invite_url"]).split("#token=", 1)[1]
        r = self.client.post(
            f"{API}/invitations/accept", json={"token": token}, headers=member.headers
        )
        assert r.status_code == 200, r.text

    @contextmanager
    def variant(self, port: int | None = None, **overrides: Any) -> Iterator[Api]:
        """Another app on the same database (and store) with some settings changed."""
        settings = self.settings.model_copy(update=overrides)
        with serve(self.backend, settings, port) as other:
            yield other


def verify_email(api: Api, user_id: str) -> None:
    """Mark a user's email verified, as following the emailed link does (that link itself is
    tested in test_account_claims.py): what ``ADMIN_EMAILS`` and linking SSO require."""
    from charterflow.models import User, utcnow
    from sqlalchemy.orm import Session

    with Session(api.engine) as db:
        user = db.get(User, user_id)
        assert user is not None
        user.email_verified_at = utcnow()
        db.commit()


@contextmanager
def serve(backend: str, settings: Settings, port: int | None = None) -> Iterator[Api]:
    app = create_app(settings)
    with LiveServer(app, port) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield Api(backend, settings, app, client, live.url)


def backend_settings(
    backend: str,
    tmp: Path,
    pg_server: PostgresServer | None,
    s3_server: S3Server | None,
) -> Settings:
    if backend == "sqlite":
        return Settings(
            _env_file=None,
            database_url=f"sqlite:{tmp}/app.db",
            upload_path=tmp / "uploads",
            **BASE,
        )
    assert s3_server is not None
    if pg_server is None:
        url = os.environ["TEST_DATABASE_URL"]
    else:
        url = pg_server.create_database(f"api_{uuid.uuid4().hex[:12]}")
    return Settings(
        _env_file=None,
        database_url=url,
        s3_bucket=s3_server.create_bucket(f"cf-api-{uuid.uuid4().hex[:12]}"),
        s3_region=s3_server.region,
        s3_endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        upload_path=tmp / "unused-uploads",
        **BASE,
    )


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.services),
]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def api_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings for a freshly migrated database and an empty store of ``backend``."""
    tmp = tmp_path_factory.mktemp(f"api-{backend}")
    pg = s3 = None
    if backend == "postgres":
        pg = request.getfixturevalue("pg_server")
        s3 = request.getfixturevalue("s3_server")
    return migrated(backend_settings(backend, tmp, pg, s3))


@pytest.fixture(scope="module")
def api(backend: str, api_settings: Settings) -> Iterator[Api]:
    with serve(backend, api_settings) as running:
        yield running


@pytest.fixture
def with_model(
    api: Api, openai_server: Callable[[Reply], OpenAICompatible]
) -> Iterator[Callable[[Reply], tuple[OpenAICompatible, Api]]]:
    """``with_model(reply)`` → (a local model server answering with ``reply``, the API using
    it as ``LLM_URL``); both stopped afterwards."""
    started: list[Any] = []

    def start(reply: Reply) -> tuple[OpenAICompatible, Api]:
        server = openai_server(reply)
        variant = api.variant(llm_url=server.url, llm_model="test-model")
        started.append(variant)
        return server, variant.__enter__()

    yield start
    for variant in started:
        variant.__exit__(None, None, None)
