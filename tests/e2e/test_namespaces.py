"""A namespace made while Kopf lists the namespaces is served all the same (namespaces.py).

Kopf lists the namespaces twice at startup and drops what the second listing finds, so a
namespace made between the two got no watch at all: its CharterFlow waited for minutes with no
status (seen in this tier when a test's namespace was made right after its operator started).
Here the gap is made wide on purpose (hold_namespace_list/sitecustomize.py, loaded by this
operator only), so the namespace falls into it every time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.e2e.kit import (
    OPERATOR_PREFIX,
    KubeHandle,
    OperatorProcess,
    apply,
    apply_secrets,
    cf,
    sample,
)
from tests.support.processes import wait_until

HOLD = Path(__file__).parent / "hold_namespace_list"
# A deadline, not a speed goal: the resync serves a missed namespace within
# namespaces.RESYNC_SECONDS (5 s); without it the namespace is never served.
SERVED_WITHIN = 60


def test_a_namespace_made_between_kopfs_two_listings_is_served(
    kube: KubeHandle, crds: None, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {
        "WATCH_NAMESPACES": f"{OPERATOR_PREFIX}*",
        "OPERATOR_STANDALONE": "true",
        "CHARTERFLOW_HOLD_NAMESPACE_LIST": str(hold),
        "PYTHONPATH": str(HOLD),
    }
    with OperatorProcess(kube.kubeconfig, env, tmp_path) as operator:
        wait_until(
            lambda: (hold / "holding").exists(),
            timeout=60,
            what="Kopf's second listing of namespaces (held)",
        )
        ns = make_namespace(OPERATOR_PREFIX)
        (hold / "release").touch()
        apply_secrets(kube, ns)
        apply(kube, ns, sample())
        seen: dict = {}

        def reconciled() -> bool:
            seen.update(cf(kube, ns))
            return bool(seen.get("status"))

        try:
            wait_until(reconciled, timeout=SERVED_WITHIN, what=f"a status on {ns}/charterflow")
        except TimeoutError:
            raise AssertionError(
                f"no pass of {ns}/charterflow within {SERVED_WITHIN}s: the operator does not "
                f"serve a namespace made while Kopf listed the namespaces; status: "
                f"{json.dumps(seen.get('status'))}; operator log tail:\n"
                f"{operator.log_text()[-3000:]}"
            ) from None
        assert "namespaces Kopf had not noticed" in operator.log_text(), (
            "the namespace was served without the resync: Kopf no longer drops what its second "
            "listing finds, or the hold did not put the namespace between the two listings"
        )
