"""The operations that keep an instance's data safe, one module each: ``backup`` (pg_dump
streamed to S3 with a manifest, then retention), ``restore`` (verify and pg_restore one backup,
then migrate) and ``migrate`` (the expand/contract phases around a rollout). ``store`` is where
backups live in S3, ``postgres`` how the PostgreSQL client tools are reached. The command line
(argparse) is ``charterflow.cli``. See docs/operations.md.
"""

from __future__ import annotations


class LifecycleError(RuntimeError):
    """A failure the operator can act on; the message is printed as is and holds no secret."""
