"""The settings object: the seed's environment forms and the production checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
from charterflow.settings import Settings, to_sqlalchemy_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:./data/app.db", "sqlite:///./data/app.db"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("postgresql://u:p@h:5432/cf", "postgresql+psycopg://u:p@h:5432/cf"),
        ("postgres://u:p@h/cf", "postgresql+psycopg://u:p@h/cf"),
    ],
)
def test_database_url_forms_of_the_seed(given: str, expected: str) -> None:
    assert to_sqlalchemy_url(given) == expected


def test_unknown_database_scheme_is_a_problem() -> None:
    problems = dict(Settings(database_url="mysql://x/y").problems())
    assert "DATABASE_URL" in problems


def test_development_defaults_are_the_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "DATABASE_URL", "UPLOAD_PATH", "JWT_SECRET", "CHARTERFLOW_ENV"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(_env_file=None)
    assert (s.port, s.database_url, str(s.upload_path)) == (3001, "sqlite:./data/app.db", "uploads")
    assert s.problems() == []
    assert s.effective_log_format == "console"


def test_production_requires_a_private_jwt_secret() -> None:
    names = [n for n, _ in Settings(charterflow_env="production").problems()]
    assert "JWT_SECRET" in names
    short = Settings(
        charterflow_env="production", jwt_secret="short", database_url="postgres://h/d"
    )
    assert [n for n, _ in short.problems()] == ["JWT_SECRET"]
    ok = Settings(charterflow_env="production", jwt_secret="x" * 40, database_url="postgres://h/d")
    assert ok.problems() == []
    assert ok.effective_log_format == "json"


def test_cors_origins_is_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings(_env_file=None).cors_origins == ["https://a.example", "https://b.example"]


def test_check_command_names_the_variable_and_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"CHARTERFLOW_ENV": "production", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "charterflow", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "JWT_SECRET: " in result.stderr


def test_api_refuses_to_start_in_production_without_a_secret() -> None:
    from charterflow.main import ConfigurationError, create_app

    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        create_app(Settings(charterflow_env="production", _env_file=None))
