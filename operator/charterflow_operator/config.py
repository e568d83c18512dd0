"""Every setting of the operator, read from the environment in one place (``OperatorConfig``).

The fields' metadata (variable, description) is the documentation: ``charterflow-operator
--help`` prints it and ``make docs`` writes it into docs/configuration.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def _setting(env: str, default: Any, description: str, parse: Callable[[str], Any] = int) -> Any:
    """A field read from ``env`` by ``parse`` (of the stripped, non-empty text)."""
    meta = {"env": env, "description": description, "parse": parse}
    return field(default=default, metadata=meta)


def _flag(value: str) -> bool:
    return value.lower() in {"1", "true", "yes"}


def watch_namespaces(value: str) -> list[str]:
    """``a, b,,c`` -> ``["a", "b", "c"]``; empty means cluster-wide."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _namespaces(value: str) -> tuple[str, ...]:
    return tuple(watch_namespaces(value))


def pod_priority(pod: str) -> int:
    """A stable peering priority from the pod's name (1..2**20); 0 without a name."""
    pod = pod.strip()
    if not pod:
        return 0
    return 1 + int.from_bytes(hashlib.sha256(pod.encode()).digest()[:4], "big") % 2**20


@dataclass(frozen=True)
class OperatorConfig:
    """The operator's settings; ``from_env`` reads them."""

    watch_namespaces: tuple[str, ...] = _setting(
        "WATCH_NAMESPACES",
        (),
        "Comma list of namespaces to watch (globs allowed); empty means cluster-wide.",
        _namespaces,
    )
    peering: str | None = _setting(
        "OPERATOR_PEERING",
        None,
        "Name of the Kopf peering object; set it when running several replicas (the one with "
        "the highest priority works, the others wait). Unset: Kopf's default peering if it "
        "exists, else standalone.",
        str,
    )
    standalone: bool = _setting(
        "OPERATOR_STANDALONE", False, "`true` skips peering (one replica only).", _flag
    )
    priority: int = _setting(
        "OPERATOR_PRIORITY",
        0,
        "This replica's peering priority. Unset: derived from `POD_NAME` so that replicas of "
        "one Deployment never tie (Kopf freezes every peer on a tie).",
    )
    peering_lifetime: int = _setting(
        "OPERATOR_PEERING_LIFETIME",
        60,
        "Seconds after which a standby takes over from a leader that stopped renewing its "
        "claim (crashed); a leader that exits cleanly hands over at once.",
    )
    workers: int = _setting(
        "OPERATOR_WORKERS",
        8,
        "Threads that run reconcile passes (one CharterFlow at a time each).",
    )
    resync_seconds: float = _setting(
        "RESYNC_SECONDS",
        60.0,
        "Backstop reconcile of each CharterFlow idle this long (passes the API server refused "
        "are retried sooner, with backoff).",
        float,
    )
    health_port: int = _setting("HEALTH_PORT", 8080, "Port of the liveness endpoint `/healthz`.")
    metrics_port: int = _setting("METRICS_PORT", 9090, "Port of the Prometheus `/metrics`.")
    log_level: str = _setting("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.", str.upper)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """The settings from ``env`` (default: the process environment); unset means default."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in fields(cls):
            text = env.get(setting.metadata["env"], "").strip()
            if text:
                values[setting.name] = setting.metadata["parse"](text)
        if "priority" not in values:
            values["priority"] = pod_priority(env.get("POD_NAME", ""))
        return cls(**values)


def _shown(default: Any) -> str:
    if default in (None, ()):
        return "unset"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def reference() -> list[tuple[str, str, str]]:
    """(variable, default, description) of every setting, in declaration order."""
    return [
        (f.metadata["env"], _shown(f.default), f.metadata["description"])
        for f in fields(OperatorConfig)
    ]


def help_text() -> str:
    """The settings as ``--help`` prints them."""
    return "\n".join(
        f"- {env} ({default.strip('`')}): {description.replace('`', '')}"
        for env, default, description in reference()
    )
