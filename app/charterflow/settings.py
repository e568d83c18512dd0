"""The one settings object: every environment variable CharterFlow reads is a field here.

Names follow the deployment contract (docs/configuration.md, generated from this file and
checked by a test). Development defaults are the seed's: port 3001, ``./data/app.db``,
``./uploads``; production refuses a missing or default ``JWT_SECRET``.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-secret-key"  # noqa: S105 - the seed's development value; never valid in production
MIN_JWT_SECRET_LENGTH = 32
DEV_SECRET_FILE = ".jwt-secret"  # noqa: S105 - a file name, not a secret


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
        description="HS256 signing key for access tokens (and CSRF tokens); at least 32 "
        "characters in production. Unset in development: a random key kept in the data "
        "directory (`.jwt-secret` beside the SQLite file, else in `UPLOAD_PATH`).",
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
    max_json_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body other than an upload (JSON, forms), in bytes: 413 "
        "above, before any of it is parsed.",
    )
    url_fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated hosts or CIDRs that URL sources may fetch although they "
        "are private, loopback or link-local (refused by default: server-side request "
        "forgery). For tests and intranets only.",
    )
    url_fetch_timeout_seconds: float = Field(
        20.0, gt=0, le=300, description="Longest fetch of a URL source, redirects included."
    )
    dependency_timeout_seconds: float = Field(
        2.0, gt=0, le=2.0, description="Timeout of each `/health/ready` dependency check."
    )
    rate_limit_per_minute: int = Field(
        600, ge=1, description="Requests per minute per client IP and per user."
    )
    login_rate_limit_per_minute: int = Field(
        10,
        ge=1,
        description="Login attempts per minute for one email from one client IP (429 above; "
        "five times this per IP over all emails). Past it for one email from all clients "
        "together, answers are slowed by `LOGIN_SLOWDOWN_SECONDS`, never refused, so no one "
        "can lock another person out.",
    )
    workspace_quota_bytes: int = Field(
        10 * 1024**3,
        ge=0,
        description="Stored bytes per workspace: uploads, notes, charters and their versions; "
        "an upload or a note or charter save past it is 409. 0: none.",
    )
    workspace_quota_documents: int = Field(
        10_000, ge=0, description="Documents per workspace; an upload past it is 409. 0: none."
    )
    login_slowdown_seconds: float = Field(
        1.0, ge=0, le=10, description="Delay of each login for an email under attack."
    )
    register_rate_limit_per_minute: int = Field(
        5,
        ge=1,
        description="Registrations per minute per client IP (429 above); bounds how fast "
        "anyone can probe which emails have accounts.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated proxy addresses or CIDR ranges (the Ingress controller's "
        "pods) whose `X-Forwarded-For`/`-Proto` are believed; unset: none, the peer address "
        "is the client.",
    )
    embeddings_url: str | None = Field(
        None, description="OpenAI-compatible embeddings endpoint; unset: the built-in model."
    )
    embeddings_model: str | None = Field(None, description="Model name sent to `EMBEDDINGS_URL`.")
    embeddings_api_key: SecretStr | None = Field(None, description="Key for `EMBEDDINGS_URL`.")
    embeddings_timeout_seconds: float = Field(
        60,
        gt=0,
        description="How long one batch may take at `EMBEDDINGS_URL` before it is "
        "retried (the ingest's retry loop).",
    )
    llm_url: str | None = Field(
        None, description="OpenAI-compatible chat completions endpoint; unset: extractive."
    )
    llm_model: str | None = Field(None, description="Model name sent to `LLM_URL`.")
    llm_api_key: SecretStr | None = Field(None, description="Key for `LLM_URL`.")
    llm_timeout_seconds: float = Field(
        60,
        gt=0,
        description="The most a whole reply from `LLM_URL` may take (a streamed one: the most "
        "between two pieces); past it, the answer is the quoted extracts, with a warning.",
    )
    llm_connect_timeout_seconds: float = Field(
        10, gt=0, description="How long connecting to `LLM_URL` may take."
    )
    llm_max_tokens: int = Field(
        512,
        ge=1,
        le=32768,
        description="The longest reply asked of the model, in tokens (`max_tokens`); a reply "
        "cut there keeps only its cited sentences.",
    )
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
    ingest_max_chars: int = Field(
        5_000_000, ge=1, description="A document with more characters of text is `failed`."
    )
    ingest_max_pages: int = Field(
        2_000,
        ge=1,
        description="A PDF with more pages, a presentation with more slides or a workbook with "
        "more sheets is `failed` (counted before extracting).",
    )
    ingest_max_chunks: int = Field(
        10_000, ge=1, description="A document making more passages than this is `failed`."
    )
    ingest_max_elements: int = Field(
        200_000,
        ge=1,
        description="A DOCX, PPTX, XLSX or EPUB with more paragraphs and cells, or an HTML "
        "page with more tags, is `failed` (bounds the parser's memory).",
    )
    ingest_max_unpacked_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest decompressed size of one part of a DOCX, PPTX, XLSX or EPUB; "
        "checked while unpacking.",
    )
    ingest_max_unpack_ratio: int = Field(
        100,
        ge=2,
        description="Largest decompressed/compressed ratio of an office or EPUB part past 1 MiB "
        "(zip bombs).",
    )
    ingest_time_budget_seconds: float = Field(
        120,
        gt=0,
        description="Parsing, chunking and embedding one document stop after this long; it is "
        "`failed`.",
    )
    ingest_user_concurrency: int = Field(
        2,
        ge=0,
        description="Documents of one uploader processed at once, across all workers; the "
        "rest wait, so one user's large uploads cannot hold every worker. 0: no limit.",
    )
    ingest_large_document_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="In development (in-process queue), uploads larger than this are ingested "
        "on their own thread, so small documents never wait behind them.",
    )
    ingest_sentence_vectors: bool = Field(
        True,
        description="Store the vectors of each passage's sentences, so an extractive "
        "answer embeds only the question: a follow-up job per document, after it is ready, "
        "yielding to ingestion (about 1.2x the passage's own embedding CPU, ~7.5 KB more per "
        "passage). Off, or until then: answers embed those sentences when asked.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve the API's `/metrics` on this port only (`PORT` then answers 404 "
        "there), so an Ingress routing `PORT` never publishes it; unset: on `PORT`.",
    )
    metrics_public: bool | None = Field(
        None,
        description="Without `METRICS_PORT`, serve `/metrics` on `PORT` (which an Ingress "
        "may publish); unset: in development only, production answers 404 there.",
    )
    api_docs: bool | None = Field(
        None,
        description="Serve `/docs`, `/redoc` and `/openapi.json`; unset: in development only "
        "(production answers 404: the API's map is not published by default).",
    )
    max_streams_per_user: int = Field(
        4,
        ge=1,
        description="Concurrent answer streams (conversation SSE) one user may hold open per "
        "API process; 429 past it.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A connection must send a whole request head within this many seconds "
        "(else it is closed): slow-header clients cannot hold connections open.",
    )
    storage_orphan_min_age_seconds: int = Field(
        6 * 3600,
        ge=600,
        description="Stored uploads that no document names are deleted by the worker once "
        "this old (left by a crash between storing and committing; far longer than an upload).",
    )
    storage_sweep_interval_seconds: float = Field(
        3600, gt=0, description="How often the worker looks for such orphaned uploads."
    )
    redis_ca_file: str | None = Field(
        None,
        description="CA bundle that verifies a `rediss://` `REDIS_URL` (certificate and host "
        "name); the operator mounts it from `spec.redis.tls.caSecretRef`.",
    )
    database_read_url: str | None = Field(
        None,
        description="Optional read replica (`postgresql://…`, e.g. a CloudNativePG `-ro` "
        "Service): searches, asks and lists read from it; writes, access checks and reads that "
        "must see the caller's own writes use `DATABASE_URL`. Unset: everything uses "
        "`DATABASE_URL`.",
    )

    jwt_previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated former `JWT_SECRET` values still accepted (never used to "
        "sign) while their tokens live out: rotation puts the old key here and a new one in "
        "`JWT_SECRET`, so no one is signed out. Tokens name their key (`kid`). Remove a key "
        "once `JWT_TTL_SECONDS` has passed (docs/operations.md).",
    )
    admin_emails: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated emails of instance admins (list, deactivate and "
        "reactivate users). OIDC group claims can grant it too (`OIDC_ADMIN_GROUPS`).",
    )
    api_key_rate_limit_per_minute: int = Field(
        600, ge=1, description="Requests per minute per API key (429 above)."
    )
    api_key_max_per_user: int = Field(
        50, ge=1, description="Active API keys one user may hold (409 above)."
    )

    smtp_host: str | None = Field(
        None,
        description="SMTP server for password-reset and invitation emails; unset: no email "
        "(reset is unavailable, and invitation links are shown to the inviting owner).",
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of `SMTP_HOST`.")
    smtp_starttls: bool = Field(
        True, description="Upgrade the SMTP connection with STARTTLS (certificate verified)."
    )
    smtp_username: str | None = Field(None, description="SMTP user; unset: no authentication.")
    smtp_password: SecretStr | None = Field(None, description="Password of `SMTP_USERNAME`.")
    smtp_from: str = Field(
        "CharterFlow <noreply@localhost>", description="`From:` of the emails sent."
    )
    smtp_timeout_seconds: float = Field(
        10, gt=0, le=120, description="Timeout of each SMTP connection and command."
    )
    password_reset_ttl_seconds: int = Field(
        3600, ge=60, description="How long an emailed password-reset link works (once)."
    )
    email_verification_ttl_seconds: int = Field(
        3 * 24 * 3600,
        ge=60,
        description="How long an emailed link that verifies an account's email works. "
        "Single sign-on links only to verified accounts; `ADMIN_EMAILS` counts only verified "
        "emails.",
    )
    password_reset_rate_limit_per_minute: int = Field(
        3,
        ge=1,
        description="Reset requests per minute for one email, and five times this per client "
        "IP (429 above, for known and unknown emails alike).",
    )
    invitation_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="How long a workspace invitation can be accepted."
    )

    oidc_issuer: str | None = Field(
        None,
        description="OpenID Connect issuer URL (its `/.well-known/openid-configuration` is "
        "read); set with the client id and secret to offer single sign-on.",
    )
    oidc_client_id: str | None = Field(None, description="Client id registered at the issuer.")
    oidc_client_secret: SecretStr | None = Field(
        None, description="Client secret (from a Secret: `spec.auth.oidc.clientSecretRef`)."
    )
    oidc_scopes: str = Field("openid email profile", description="Scopes requested.")
    oidc_allowed_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated email domains allowed to sign in through OIDC; unset: any.",
    )
    oidc_name_claim: str = Field("name", description="ID-token claim used as the display name.")
    oidc_groups_claim: str = Field("groups", description="ID-token claim listing groups.")
    oidc_admin_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated groups whose members are instance admins (set at each "
        "sign-in).",
    )
    oidc_clock_skew_seconds: int = Field(
        60, ge=0, le=300, description="Clock difference tolerated on ID-token times."
    )
    oidc_display_name: str = Field(
        "single sign-on", description='Shown on the sign-in button: "Sign in with ...".'
    )
    password_login_enabled: bool = Field(
        True,
        description="Email and password sign-in and registration; `false` with OIDC leaves "
        "single sign-on as the only way in (API keys keep working).",
    )
    auth_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=10,
        description="How long a process reuses a signed-in caller's user row for read-only "
        "`/api/v1` requests (GET, HEAD) instead of loading it again; 0 turns this off. "
        "Sign-out, password changes and deactivation take effect at once: in the process "
        "that made them, and, through a counter in Redis read by every request's rate-limit "
        "call, in every other replica (without Redis, other processes within this delay). "
        "Writes always load the user.",
    )

    @field_validator(
        "cors_origins",
        "url_fetch_allow",
        "jwt_previous_secrets",
        "admin_emails",
        "oidc_allowed_domains",
        "oidc_admin_groups",
        mode="before",
    )
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _verify_redis_tls(self) -> Settings:
        """With ``REDIS_CA_FILE``, a ``rediss://`` URL verifies the server against it: every
        client (API, worker, Dramatiq) is built from the URL, so the URL carries it."""
        url = self.redis_url
        if (
            self.redis_ca_file
            and url
            and url.startswith("rediss://")
            and "ssl_ca_certs=" not in url
        ):
            query = urlencode(
                {
                    "ssl_cert_reqs": "required",
                    "ssl_check_hostname": "true",
                    "ssl_ca_certs": self.redis_ca_file,
                }
            )
            self.redis_url = f"{url}{'&' if '?' in url else '?'}{query}"
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def metrics_on_port(self) -> bool:
        """``/metrics`` is served on ``PORT`` (see ``metrics_public``)."""
        if self.metrics_port:
            return False
        return self.metrics_public if self.metrics_public is not None else not self.is_production

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else not self.is_production

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
    def sqlalchemy_read_url(self) -> str | None:
        """``DATABASE_READ_URL`` as a SQLAlchemy URL (None when unset)."""
        return to_sqlalchemy_url(self.database_read_url) if self.database_read_url else None

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def data_dir(self) -> Path:
        """Where this instance keeps its local state: the SQLite file's folder, else uploads."""
        url = self.sqlalchemy_url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.removeprefix("sqlite:///")).parent
        return self.upload_path

    def with_development_secret(self) -> Settings:
        """In development with no ``JWT_SECRET``, a random one kept in the data directory
        (``.jwt-secret``, mode 0600), so a token cannot be forged from the published default
        and sessions survive a restart. Production keeps refusing the default instead."""
        if self.is_production or self.jwt_secret.get_secret_value() != DEV_JWT_SECRET:
            return self
        path = self.data_dir / DEV_SECRET_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            value = path.read_text().strip()
        else:
            value = secrets.token_urlsafe(48)
            with os.fdopen(fd, "w") as out:
                out.write(value + "\n")
        if len(value) < MIN_JWT_SECRET_LENGTH:  # empty or cut short: start over
            value = secrets.token_urlsafe(48)
            path.write_text(value + "\n")
            path.chmod(0o600)
        return self.model_copy(update={"jwt_secret": SecretStr(value)})

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
        try:
            read = self.sqlalchemy_read_url
        except ValueError as exc:
            found.append(("DATABASE_READ_URL", str(exc)))
        else:
            if read and (read.startswith("sqlite") or self.is_sqlite):
                found.append(("DATABASE_READ_URL", "a read replica needs PostgreSQL"))
        if self.s3_bucket and bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            found.append(
                ("AWS_SECRET_ACCESS_KEY", "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            )
        if self.embeddings_url and not self.embeddings_model:
            found.append(("EMBEDDINGS_MODEL", "required when EMBEDDINGS_URL is set"))
        if self.embeddings_provider == "openai" and not self.embeddings_url:
            found.append(("EMBEDDINGS_URL", "required when EMBEDDINGS_PROVIDER is openai"))
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            found.append(("OIDC_CLIENT_ID", "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed"))
        if not self.password_login_enabled and not self.oidc_enabled:
            found.append(("PASSWORD_LOGIN_ENABLED", "false needs OIDC configured"))
        if self.llm_url and not self.llm_model:
            found.append(("LLM_MODEL", "required when LLM_URL is set"))
        if self.redis_ca_file and not (self.redis_url or "").startswith("rediss://"):
            found.append(("REDIS_URL", "must be rediss:// (TLS) when REDIS_CA_FILE is set"))
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
