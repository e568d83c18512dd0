"""``charterflow-operator``: run the Kopf operator with the options taken from the environment.

- ``WATCH_NAMESPACES``: comma list of namespaces (globs allowed); empty means cluster-wide.
- ``OPERATOR_PEERING``: name of the Kopf peering object; set it when running several replicas
  (the one with the highest priority works, the others wait). Unset: Kopf's default peering if
  it exists, else standalone. ``OPERATOR_STANDALONE=true`` skips peering.
- ``OPERATOR_PRIORITY``: this replica's peering priority. Unset: derived from ``POD_NAME`` so
  that replicas of one Deployment never tie (Kopf freezes every peer on a tie).
- ``OPERATOR_PEERING_LIFETIME`` (60): seconds after which a standby takes over from a leader
  that stopped renewing its claim (crashed); a leader that exits cleanly hands over at once.
- ``HEALTH_PORT`` (8080): liveness at ``/healthz``; ``METRICS_PORT`` (9090): Prometheus.
- ``RESYNC_SECONDS`` (60): backstop reconcile of idle CharterFlows. ``LOG_LEVEL`` (INFO).
- ``OPERATOR_WORKERS`` (8): threads that run reconcile passes (one CharterFlow at a time each).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def watch_namespaces(value: str) -> list[str]:
    """``a, b,,c`` -> ``["a", "b", "c"]``; empty means cluster-wide."""
    return [part.strip() for part in value.split(",") if part.strip()]


def peering_priority(env: Mapping[str, str]) -> int:
    """``OPERATOR_PRIORITY`` if set, else a stable number from the pod name (1..2**20)."""
    if explicit := env.get("OPERATOR_PRIORITY", "").strip():
        return int(explicit)
    pod = env.get("POD_NAME", "").strip()
    if not pod:
        return 0
    return 1 + int.from_bytes(hashlib.sha256(pod.encode()).digest()[:4], "big") % 2**20


def main(argv: Sequence[str] | None = None) -> None:
    """Run the operator until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="charterflow-operator",
        description="Run the CharterFlow operator (Kopf). Configured by environment variables:",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(sys.argv[1:] if argv is None else argv)

    import kopf

    from charterflow_operator import handlers  # noqa: F401 - importing registers the handlers

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    namespaces = watch_namespaces(os.environ.get("WATCH_NAMESPACES", ""))
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True if _flag(os.environ.get("OPERATOR_STANDALONE")) else None,
        peering_name=os.environ.get("OPERATOR_PEERING") or None,
        priority=peering_priority(os.environ),
        liveness_endpoint=f"http://0.0.0.0:{os.environ.get('HEALTH_PORT', '8080')}/healthz",
    )


if __name__ == "__main__":
    main()
