"""``charterflow``: run the API, the workers, migrations and checks."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from charterflow import __version__, contract
from charterflow.settings import Settings, get_settings


def _settings_or_exit() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "SETTINGS"
            print(f"{name}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check(_args: argparse.Namespace) -> int:
    """Validate the configuration; print each problem as ``NAME: why``; exit 2 if any."""
    settings = _settings_or_exit()
    problems = settings.problems()
    for name, why in problems:
        print(f"{name}: {why}", file=sys.stderr)
    if problems:
        return 2
    print(f"configuration OK ({settings.charterflow_env})")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database schema to the newest revision (idempotent, safe from many pods).

    ``--phase expand`` stops before the first contract revision (run it before a rollout, while
    old pods still serve); ``--phase contract`` (or ``all``) goes to head (after the rollout).
    """
    from sqlalchemy.exc import OperationalError

    from charterflow import contract
    from charterflow.db import make_engine
    from charterflow.logging import configure_logging
    from charterflow.ops import LifecycleError
    from charterflow.ops.migrate import migrate_phase

    settings = _settings_or_exit()
    configure_logging(settings.log_level, settings.effective_log_format)
    engine = make_engine(settings)
    try:
        revision = migrate_phase(engine, getattr(args, "phase", "all"))
        print(f"database at revision {revision}")
    except LifecycleError as exc:
        print(f"charterflow migrate: error: {exc}", file=sys.stderr)
        return 1
    except OperationalError as exc:  # not reached: an outage, not a bad migration
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc).strip() else ""
        if (
            "password" not in reason.lower()
        ):  # the driver's reason (refused, TLS ...), never secrets
            print(f"charterflow migrate: error: {reason}", file=sys.stderr)
        name = type(exc.orig or exc).__name__
        print(f"charterflow migrate: {contract.DEPENDENCY_UNAVAILABLE} database ({name})")
        return contract.EXIT_UNAVAILABLE
    finally:
        engine.dispose()
    return 0


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def listen_warning(settings: Settings, host: str) -> str | None:
    """A warning when a development server (weaker defaults, detailed errors) would be
    reachable from other machines."""
    if settings.is_production or host in LOOPBACK or host.startswith("127."):
        return None
    return (
        f"WARNING: serving in development mode on {host}, reachable from other machines; "
        "use CHARTERFLOW_ENV=production (with JWT_SECRET and PostgreSQL) for that, or "
        "--host 127.0.0.1"
    )


def _serve(settings: Settings, host: str, port: int, workers: int = 1, reload: bool = False) -> int:
    import uvicorn

    if warning := listen_warning(settings, host):
        print(warning, file=sys.stderr, flush=True)

    from charterflow.serving import uvicorn_options

    uvicorn.run(
        "charterflow.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        timeout_graceful_shutdown=20,
        **uvicorn_options(settings),
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the API (production entrypoint of the API pods)."""
    settings = _settings_or_exit()
    problems = settings.problems()
    if problems and settings.is_production:
        for name, why in problems:
            print(f"{name}: {why}", file=sys.stderr)
        print("refusing to start: fix the configuration above", file=sys.stderr)
        return 2
    if settings.metrics_port and args.workers > 1:
        print(
            "METRICS_PORT: one metrics port per process; run one worker per pod (scale pods)",
            file=sys.stderr,
        )
        return 2
    host = args.host or ("0.0.0.0" if settings.is_production else "127.0.0.1")  # noqa: S104
    return _serve(settings, host, args.port or settings.port, workers=args.workers)


def cmd_dev(args: argparse.Namespace) -> int:
    """Migrate the local database, then run the API with background jobs in-process."""
    settings = _settings_or_exit()
    cmd_migrate(args)
    url = f"http://localhost:{settings.port}"
    print(f"\n  CharterFlow is running at {url}  (API: {url}/docs; Ctrl-C stops)\n", flush=True)
    return _serve(settings, args.host, settings.port, reload=args.reload)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the background workers (Dramatiq on ``REDIS_URL``), health server and sweep."""
    from charterflow.ingest import worker

    return worker.run(threads=args.threads)


def cmd_reindex(args: argparse.Namespace) -> int:
    """Parse again documents stored by an older parser; re-embed other models' chunks."""
    from charterflow.ingest.parsers import PARSER_VERSION
    from charterflow.ingest.pipeline import IngestContext, backfill_sentences, reindex
    from charterflow.ingest.reparse import reparse_stale
    from charterflow.logging import configure_logging

    settings = _settings_or_exit()
    configure_logging(settings.log_level, settings.effective_log_format)
    ctx = IngestContext.from_settings(settings)
    try:
        documents = reparse_stale(ctx)
        print(f"parsed {documents} documents again (parser version {PARSER_VERSION})")
        count = reindex(ctx, everything=args.all)
        print(f"re-embedded {count} chunks with {ctx.embedder.name}")
        sentences = backfill_sentences(ctx)
        print(f"stored the sentence vectors of {sentences} chunks")
    finally:
        ctx.close()
    return 0


def cmd_verify_email(args: argparse.Namespace) -> int:
    """Mark an account's email verified (an operator's word, for an instance without SMTP)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from charterflow.db import make_engine
    from charterflow.models import User, utcnow

    settings = _settings_or_exit()
    with Session(make_engine(settings)) as db:
        user = db.scalar(select(User).where(User.email == args.email.lower()))
        if user is None:
            print(f"charterflow verify-email: no account for {args.email}", file=sys.stderr)
            return 1
        user.email_verified_at = user.email_verified_at or utcnow()
        db.commit()
    print(f"{args.email.lower()}: email verified")
    return 0


def _failed(command: str, exc: Exception, settings: Settings) -> int:
    """Print why ``command`` failed (the password masked, when there is one); exit code 1."""
    from charterflow.ops import LifecycleError
    from charterflow.ops.postgres import Database

    message = str(exc).strip() or type(exc).__name__
    with contextlib.suppress(LifecycleError):
        message = Database.from_settings(settings).scrub(message)
    print(f"charterflow {command}: error: {message}", file=sys.stderr)
    return 1


def cmd_backup(args: argparse.Namespace) -> int:
    """Stream a database backup and manifest to S3, then prune old backups."""
    import psycopg

    from charterflow.ops import LifecycleError
    from charterflow.ops.backup import run_backup, write_result
    from charterflow.storage import StorageError

    settings = _settings_or_exit()
    try:
        manifest = run_backup(
            settings,
            name=args.name or settings.charterflow_instance,
            prefix=settings.backup_prefix if args.prefix is None else args.prefix,
            retention_days=(
                settings.backup_retention_days
                if args.retention_days is None
                else args.retention_days
            ),
            lock_wait=args.lock_wait_timeout,
        )
    except (LifecycleError, StorageError, psycopg.Error) as exc:
        return _failed("backup", exc, settings)
    if settings.backup_result_file:
        write_result(Path(settings.backup_result_file), manifest)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup (a key or `latest`) into an empty database, then migrate."""
    import psycopg

    from charterflow.ops import LifecycleError
    from charterflow.ops.restore import run_restore
    from charterflow.storage import StorageError

    settings = _settings_or_exit()
    try:
        run_restore(
            settings,
            source=args.source,
            name=args.name or settings.charterflow_instance,
            prefix=settings.backup_prefix if args.prefix is None else args.prefix,
            force=args.force,
        )
    except (LifecycleError, StorageError, psycopg.Error) as exc:
        return _failed("restore", exc, settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="charterflow", description="CharterFlow: document-grounded team workspace."
    )
    parser.add_argument("--version", action="version", version=f"charterflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0])
        p.set_defaults(func=fn)
        return p

    dev = add("dev", cmd_dev)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--reload", action="store_true", help="restart on code changes")
    serve = add("serve", cmd_serve)
    serve.add_argument(
        "--host",
        default=None,
        help="default: 0.0.0.0 in production (a container), 127.0.0.1 in development",
    )
    serve.add_argument("--port", type=int, default=None, help="default: PORT")
    serve.add_argument("--workers", type=int, default=1)
    worker = add("worker", cmd_worker)
    worker.add_argument("--threads", type=int, default=None, help="default: WORKER_THREADS")
    reindex = add("reindex", cmd_reindex)
    reindex.add_argument(
        "--all", action="store_true", help="re-embed every chunk, not only other models' ones"
    )
    migrate = add("migrate", cmd_migrate)
    migrate.add_argument(
        "--phase",
        choices=[*contract.MIGRATION_PHASES, "all"],
        default="all",
        help="expand: up to the first contract revision (before a rollout); "
        "contract, all: to head (after it)",
    )
    backup = add("backup", cmd_backup)
    backup.add_argument("--name", default=None, help="default: CHARTERFLOW_INSTANCE")
    backup.add_argument("--prefix", default=None, help="default: BACKUP_PREFIX")
    backup.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="prune older backups but the newest (0: keep all); default: BACKUP_RETENTION_DAYS",
    )
    backup.add_argument(
        "--lock-wait-timeout",
        type=int,
        default=300,
        metavar="SECONDS",
        help="fail rather than wait longer for a table lock (e.g. held by a migration)",
    )
    restore = add("restore", cmd_restore)
    restore.add_argument("--from", dest="source", required=True, help="a backup key or `latest`")
    restore.add_argument(
        "--name", default=None, help="instance name; default: CHARTERFLOW_INSTANCE"
    )
    restore.add_argument("--prefix", default=None, help="default: BACKUP_PREFIX")
    restore.add_argument(
        "--force", action="store_true", help="replace the backup's objects in a non-empty database"
    )
    verify = add("verify-email", cmd_verify_email)
    verify.add_argument("email", help="the account's email")
    add("check", cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
