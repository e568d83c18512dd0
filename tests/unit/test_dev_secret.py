"""Development never signs with a published key, and never listens beyond loopback unasked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from charterflow.cli import build_parser, listen_warning
from charterflow.settings import DEV_JWT_SECRET, DEV_SECRET_FILE, Settings


def dev(tmp: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, database_url=f"sqlite:{tmp}/data/app.db", **overrides)


def test_development_secret_is_random_private_and_kept_per_data_directory(tmp_path: Path) -> None:
    first = dev(tmp_path / "a").with_development_secret()
    secret = first.jwt_secret.get_secret_value()
    assert secret != DEV_JWT_SECRET
    assert len(secret) >= 32
    path = tmp_path / "a" / "data" / DEV_SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    again = dev(tmp_path / "a").with_development_secret()  # a restart: sessions survive
    assert again.jwt_secret.get_secret_value() == secret
    other = dev(tmp_path / "b").with_development_secret()
    assert other.jwt_secret.get_secret_value() != secret
    chosen = dev(tmp_path / "c", jwt_secret="x" * 40).with_development_secret()
    assert chosen.jwt_secret.get_secret_value() == "x" * 40
    assert not (tmp_path / "c" / "data" / DEV_SECRET_FILE).exists()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the forgery's key
def test_a_token_forged_with_the_published_key_is_refused(tmp_path: Path) -> None:
    from charterflow.db import migrate_database
    from charterflow.main import create_app
    from fastapi.testclient import TestClient

    settings = migrate_database(dev(tmp_path))
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/v1/auth/register",
            json={"email": "dev@example.com", "password": "long enough password", "name": "D"},
        )
        assert r.status_code == 201
        user_id = r.json()["user"]["id"]
        now = datetime.now(UTC)
        claims = {"sub": user_id, "iss": "charterflow", "iat": now, "jti": "f" * 32}
        forged = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, DEV_JWT_SECRET)
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
        assert me.status_code == 401
        real = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert client.get("/api/v1/auth/me", headers=real).status_code == 200


def test_development_serves_on_loopback_and_warns_otherwise() -> None:
    assert build_parser().parse_args(["serve"]).host is None  # chosen by the environment
    assert build_parser().parse_args(["dev"]).host == "127.0.0.1"
    development = Settings(_env_file=None)
    assert listen_warning(development, "127.0.0.1") is None
    assert listen_warning(development, "::1") is None
    warning = listen_warning(development, "0.0.0.0")
    assert warning is not None
    assert "development mode on 0.0.0.0" in warning
    production = Settings(_env_file=None, charterflow_env="production")
    assert listen_warning(production, "0.0.0.0") is None
