"""What the operator relies on from the application, written once: the environment variables it
sets, the commands its pods and Jobs run, the ports and paths they listen on, and the keys of the
backup result it reads back.

The operator imports this module (it is part of the same distribution and imports nothing), and
a unit test checks each environment name against the fields of ``charterflow.settings.Settings``,
so the two sides cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Final

# --- environment variables the operator sets ---------------------------------------------------
# Non-secret (the instance's ConfigMap).
APP_URL: Final = "APP_URL"
CHARTERFLOW_ENV: Final = "CHARTERFLOW_ENV"
CHARTERFLOW_INSTANCE: Final = "CHARTERFLOW_INSTANCE"
CORS_ORIGINS: Final = "CORS_ORIGINS"
LOG_FORMAT: Final = "LOG_FORMAT"
LOG_LEVEL: Final = "LOG_LEVEL"
MAX_UPLOAD_BYTES: Final = "MAX_UPLOAD_BYTES"
PORT: Final = "PORT"
S3_BUCKET: Final = "S3_BUCKET"
S3_REGION: Final = "S3_REGION"
S3_ENDPOINT_URL: Final = "S3_ENDPOINT_URL"
UPLOAD_PATH: Final = "UPLOAD_PATH"
WORKER_HEALTH_PORT: Final = "WORKER_HEALTH_PORT"
METRICS_PORT: Final = "METRICS_PORT"
# CA bundle verifying a rediss:// REDIS_URL (a mounted Secret key).
REDIS_CA_FILE: Final = "REDIS_CA_FILE"
# From Secrets (secretKeyRef, never in the ConfigMap).
DATABASE_URL: Final = "DATABASE_URL"
REDIS_URL: Final = "REDIS_URL"
JWT_SECRET: Final = "JWT_SECRET"  # noqa: S105 - a variable name
AWS_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
# Identity (spec.auth, spec.email): plain values in the ConfigMap, secrets from Secrets.
ADMIN_EMAILS: Final = "ADMIN_EMAILS"
OIDC_ISSUER: Final = "OIDC_ISSUER"
OIDC_CLIENT_ID: Final = "OIDC_CLIENT_ID"
OIDC_SCOPES: Final = "OIDC_SCOPES"
OIDC_ALLOWED_DOMAINS: Final = "OIDC_ALLOWED_DOMAINS"
OIDC_NAME_CLAIM: Final = "OIDC_NAME_CLAIM"
OIDC_GROUPS_CLAIM: Final = "OIDC_GROUPS_CLAIM"
OIDC_ADMIN_GROUPS: Final = "OIDC_ADMIN_GROUPS"
OIDC_DISPLAY_NAME: Final = "OIDC_DISPLAY_NAME"
PASSWORD_LOGIN_ENABLED: Final = "PASSWORD_LOGIN_ENABLED"  # noqa: S105 - a variable name
SMTP_HOST: Final = "SMTP_HOST"
SMTP_PORT: Final = "SMTP_PORT"
SMTP_STARTTLS: Final = "SMTP_STARTTLS"
SMTP_FROM: Final = "SMTP_FROM"
OIDC_CLIENT_SECRET: Final = "OIDC_CLIENT_SECRET"  # noqa: S105 - a variable name
JWT_PREVIOUS_SECRETS: Final = "JWT_PREVIOUS_SECRETS"
SMTP_USERNAME: Final = "SMTP_USERNAME"
SMTP_PASSWORD: Final = "SMTP_PASSWORD"  # noqa: S105 - a variable name
DATABASE_READ_URL: Final = "DATABASE_READ_URL"  # optional: spec.database.readUrlSecretRef
# The model server (spec.llm): plain values in the ConfigMap, keys from Secrets.
LLM_URL: Final = "LLM_URL"
LLM_MODEL: Final = "LLM_MODEL"
LLM_TIMEOUT_SECONDS: Final = "LLM_TIMEOUT_SECONDS"
LLM_CONNECT_TIMEOUT_SECONDS: Final = "LLM_CONNECT_TIMEOUT_SECONDS"
LLM_MAX_TOKENS: Final = "LLM_MAX_TOKENS"
LLM_API_KEY: Final = "LLM_API_KEY"
EMBEDDINGS_URL: Final = "EMBEDDINGS_URL"
EMBEDDINGS_MODEL: Final = "EMBEDDINGS_MODEL"
EMBEDDINGS_TIMEOUT_SECONDS: Final = "EMBEDDINGS_TIMEOUT_SECONDS"
EMBEDDINGS_API_KEY: Final = "EMBEDDINGS_API_KEY"
# On the worker's container.
WORKER_THREADS: Final = "WORKER_THREADS"
# On the backup Job's container.
BACKUP_PREFIX: Final = "BACKUP_PREFIX"
BACKUP_RETENTION_DAYS: Final = "BACKUP_RETENTION_DAYS"
BACKUP_RESULT_FILE: Final = "BACKUP_RESULT_FILE"

# Every name above: the application's Settings reads each (a unit test holds each to a field).
SETTINGS_ENV: Final = (
    APP_URL,
    CHARTERFLOW_ENV,
    CHARTERFLOW_INSTANCE,
    CORS_ORIGINS,
    LOG_FORMAT,
    LOG_LEVEL,
    MAX_UPLOAD_BYTES,
    PORT,
    S3_BUCKET,
    S3_REGION,
    S3_ENDPOINT_URL,
    UPLOAD_PATH,
    WORKER_HEALTH_PORT,
    METRICS_PORT,
    REDIS_CA_FILE,
    DATABASE_URL,
    REDIS_URL,
    JWT_SECRET,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    WORKER_THREADS,
    BACKUP_PREFIX,
    BACKUP_RETENTION_DAYS,
    BACKUP_RESULT_FILE,
    ADMIN_EMAILS,
    OIDC_ISSUER,
    OIDC_CLIENT_ID,
    OIDC_SCOPES,
    OIDC_ALLOWED_DOMAINS,
    OIDC_NAME_CLAIM,
    OIDC_GROUPS_CLAIM,
    OIDC_ADMIN_GROUPS,
    OIDC_DISPLAY_NAME,
    PASSWORD_LOGIN_ENABLED,
    SMTP_HOST,
    SMTP_PORT,
    SMTP_STARTTLS,
    SMTP_FROM,
    OIDC_CLIENT_SECRET,
    JWT_PREVIOUS_SECRETS,
    SMTP_USERNAME,
    SMTP_PASSWORD,
    DATABASE_READ_URL,
    LLM_URL,
    LLM_MODEL,
    LLM_TIMEOUT_SECONDS,
    LLM_CONNECT_TIMEOUT_SECONDS,
    LLM_MAX_TOKENS,
    LLM_API_KEY,
    EMBEDDINGS_URL,
    EMBEDDINGS_MODEL,
    EMBEDDINGS_TIMEOUT_SECONDS,
    EMBEDDINGS_API_KEY,
)
# Read by the numeric libraries (one BLAS/OpenMP pool per worker thread budget).
BLAS_THREAD_ENV: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# --- commands (the image's entrypoint is the `charterflow` console script) ----------------------
SERVE: Final = ("charterflow", "serve")
WORKER: Final = ("charterflow", "worker")
BACKUP: Final = ("charterflow", "backup")
RESTORE: Final = ("charterflow", "restore")
MIGRATE: Final = ("charterflow", "migrate")
MIGRATION_PHASES: Final = ("expand", "contract")

# --- ports and paths -----------------------------------------------------------------------------
API_PORT: Final = 8080  # what the operator sets PORT to
DEFAULT_WORKER_HEALTH_PORT: Final = 9191
API_METRICS_PORT: Final = 9090  # the API's /metrics, a port the Service and Ingress never route
LIVE_PATH: Final = "/health/live"  # API and worker: the process is up
READY_PATH: Final = "/health/ready"  # API: its dependencies answer
APP_UID: Final = 10001  # the image's user

# --- the backup result (written to BACKUP_RESULT_FILE as one JSON object) ------------------------
RESULT_KEY: Final = "key"  # the object key of the backup's dump (what status.lastBackup.key shows)
RESULT_KEYS: Final = (RESULT_KEY, "size", "sha256")

# --- a lifecycle command that could not reach a dependency ---------------------------------------
# `charterflow migrate` prints "<DEPENDENCY_UNAVAILABLE> database (<error class>)" as its last line
# and exits EXIT_UNAVAILABLE when the database does not answer: the operator reads that line (the
# Job pod's termination message) and retries the Job once the outage may be over.
DEPENDENCY_UNAVAILABLE: Final = "dependency unavailable:"
EXIT_UNAVAILABLE: Final = 75  # sysexits EX_TEMPFAIL
