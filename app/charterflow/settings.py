"""The one settings object: every environment variable CharterFlow reads is a field here.

Names follow the deployment contract (docs/configuration.md, generated from this file and
checked by a test). Development defaults are the seed's: port 3001, ``./data/app.db``,
``./uploads``; production refuses a missing or default ``JWT_SECRET``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-key"  # noqa: S105 - the seed's development value; never valid in production
MIN_JWT_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Application configuration, read from the environment (and an optional ``.env`` file)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    charterflow_env: Literal["development", "production"] = Field(
        "development", description="`production` turns on strict checks and JSON logs."
    )
    database_url: str = Field(
        "sqlite:./data/app.db",
        description="`sqlite:./path.db` or `postgresql://user:pass@host:5432/db` (psycopg 3).",
    )
    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET),
        description="HS256 signing key for access tokens; at least 32 characters in production.",
    )
    jwt_ttl_seconds: int = Field(3600, ge=60, description="Lifetime of an access token.")
    jwt_issuer: str = Field("charterflow", description="`iss` claim written and required.")
    upload_path: Path = Field(
        Path("./uploads"), description="Folder for uploaded files when `S3_BUCKET` is unset."
    )
    port: int = Field(3001, ge=1, le=65535, description="Port the API listens on.")
    redis_url: str | None = Field(
        None, description="Redis for the job queue and shared rate limits; unset: in-process."
    )
    s3_bucket: str | None = Field(None, description="Store uploads in this S3 bucket when set.")
    s3_region: str = Field("us-east-1", description="Region of `S3_BUCKET`.")
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, Ceph); unset: AWS."
    )
    aws_access_key_id: SecretStr | None = Field(None, description="S3 access key id.")
    aws_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    charterflow_instance: str = Field(
        "charterflow", description="Instance name; backups go under `<BACKUP_PREFIX><name>/`."
    )
    backup_prefix: str = Field("backups/", description="Key prefix of backups in `S3_BUCKET`.")
    backup_retention_days: int = Field(
        7, ge=0, description="Backups older than this are pruned, but the newest; 0: keep all."
    )
    backup_result_file: str | None = Field(
        None,
        description="`charterflow backup` writes its result (JSON: key, size, sha256) here; the "
        "operator sets `/dev/termination-log`, so the CharterFlow's status names the backup.",
    )
    pg_dump: str | None = Field(None, description="`pg_dump` used by backups; unset: from PATH.")
    pg_restore: str | None = Field(
        None, description="`pg_restore` used by restores; unset: from PATH."
    )
    app_url: str = Field(
        "http://localhost:3001", description="Public base URL, used in links and CORS."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Minimum level of log lines."
    )
    log_format: Literal["json", "console"] | None = Field(
        None, description="`json` or `console`; unset: json in production, console otherwise."
    )
    max_upload_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Largest accepted upload, in bytes (413 above)."
    )
    dependency_timeout_seconds: float = Field(
        2.0, gt=0, le=2.0, description="Timeout of each `/health/ready` dependency check."
    )
    rate_limit_per_minute: int = Field(
        600, ge=1, description="Requests per minute per client IP and per user."
    )
    login_rate_limit_per_minute: int = Field(
        10, ge=1, description="Login attempts per minute per client IP and per email."
    )
    embeddings_url: str | None = Field(
        None, description="OpenAI-compatible embeddings endpoint; unset: the built-in model."
    )
    embeddings_model: str | None = Field(None, description="Model name sent to `EMBEDDINGS_URL`.")
    embeddings_api_key: SecretStr | None = Field(None, description="Key for `EMBEDDINGS_URL`.")
    llm_url: str | None = Field(
        None, description="OpenAI-compatible chat completions endpoint; unset: extractive."
    )
    llm_model: str | None = Field(None, description="Model name sent to `LLM_URL`.")
    llm_api_key: SecretStr | None = Field(None, description="Key for `LLM_URL`.")
    worker_threads: int = Field(4, ge=1, le=64, description="Dramatiq threads per worker process.")
    worker_health_port: int = Field(
        9191, ge=1, le=65535, description="Port of the worker's `/health/live` and `/metrics`."
    )
    worker_heartbeat_timeout_seconds: float = Field(
        60, gt=0, description="A worker silent this long is dead; its messages are redelivered."
    )
    embeddings_provider: Literal["hashing", "semantic", "openai"] | None = Field(
        None,
        description="`semantic` (all-MiniLM-L6-v2 on ONNX Runtime, offline), `hashing` (word "
        "overlap only, no model) or `openai`; unset: `openai` when `EMBEDDINGS_URL` is set, "
        "else `semantic`.",
    )
    ingest_max_attempts: int = Field(
        5, ge=1, le=50, description="Attempts at ingesting a document before it is `failed`."
    )
    ingest_lease_seconds: int = Field(
        300, ge=5, description="How long a worker owns a `processing` document before the sweep."
    )
    sweep_interval_seconds: float = Field(
        60, gt=0, description="How often the worker re-queues documents whose lease expired."
    )
    ingest_pending_requeue_seconds: int = Field(
        900,
        ge=60,
        description="A document `pending` this long is queued again (its job may have been "
        "lost with Redis); a duplicate job is harmless.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.charterflow_env == "production"

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.is_production else "console")

    @property
    def sqlalchemy_url(self) -> str:
        """The seed's ``DATABASE_URL`` forms, translated to SQLAlchemy URLs."""
        return to_sqlalchemy_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    def problems(self) -> list[tuple[str, str]]:
        """Configuration errors as ``(ENV_NAME, why)``; empty when the settings are usable."""
        found: list[tuple[str, str]] = []
        secret = self.jwt_secret.get_secret_value()
        if self.is_production:
            if not secret or secret == DEV_JWT_SECRET:
                found.append(("JWT_SECRET", "must be set to a private value in production"))
            elif len(secret) < MIN_JWT_SECRET_LENGTH:
                found.append(("JWT_SECRET", f"must be at least {MIN_JWT_SECRET_LENGTH} characters"))
            if self.is_sqlite:
                found.append(("DATABASE_URL", "production needs PostgreSQL, not SQLite"))
        try:
            self.sqlalchemy_url  # noqa: B018 - validates the URL form
        except ValueError as exc:
            found.append(("DATABASE_URL", str(exc)))
        if self.s3_bucket and bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            found.append(
                ("AWS_SECRET_ACCESS_KEY", "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            )
        if self.embeddings_url and not self.embeddings_model:
            found.append(("EMBEDDINGS_MODEL", "required when EMBEDDINGS_URL is set"))
        if self.embeddings_provider == "openai" and not self.embeddings_url:
            found.append(("EMBEDDINGS_URL", "required when EMBEDDINGS_PROVIDER is openai"))
        if self.llm_url and not self.llm_model:
            found.append(("LLM_MODEL", "required when LLM_URL is set"))
        return found


def to_sqlalchemy_url(url: str) -> str:
    """Accept ``sqlite:./x.db``, ``sqlite:///x.db``, ``postgres(ql)://...``; use psycopg 3."""
    if url.startswith("sqlite:") and not url.startswith("sqlite://"):
        return "sqlite:///" + url.removeprefix("sqlite:")
    if url.startswith("sqlite://"):
        return url
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    raise ValueError("must start with sqlite: or postgresql://")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
