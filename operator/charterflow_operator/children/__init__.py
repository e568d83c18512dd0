"""Pure builders: a CharterFlow in, its child manifests out, one module per concern.

Nothing here talks to the API server, so the whole desired state is unit-tested without a
cluster, and building twice yields equal manifests (which is what makes server-side apply a
no-op in steady state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from charterflow_operator import api
from charterflow_operator.children.autoscaling import hpa, pdb
from charterflow_operator.children.config import checksum, config_data, config_map, service_account
from charterflow_operator.children.jobs import backup_cronjob
from charterflow_operator.children.networking import api_service, ingress, network_policies
from charterflow_operator.children.workloads import api_deployment, worker_deployment
from charterflow_operator.instance import CharterFlow, Manifest

Absent = tuple[str, str, str]  # (apiVersion, kind, name) of an optional child to delete


@dataclass
class Children:
    """Desired children in apply order; ``absent`` lists optional ones to delete if present.

    ``digest`` is the configuration checksum the pods carry (on-demand backups reuse it).
    """

    base: list[Manifest]
    workloads: list[Manifest]
    absent: list[Absent]
    digest: str = ""


def build(cf: CharterFlow, secrets: Mapping[str, Mapping[str, str]]) -> Children:
    """All desired children. ``secrets``: data of the referenced Secrets, by name.

    ``base`` comes before the rollout gate (restore and migration Jobs, see rollout_gate.py),
    ``workloads`` after it, so that new pods never start before the schema they need.
    """
    digest = checksum(config_data(cf), secrets)
    account = service_account(cf)
    base = [
        *([account] if account else []),
        config_map(cf),
        api_service(cf),
        pdb(cf, "api"),
        pdb(cf, "worker"),
    ]
    policies = network_policies(cf, secrets)
    base += policies or []
    optional: list[tuple[api.ChildKind, str, Manifest | None]] = [
        (api.HPA, cf.api_name, hpa(cf, "api")),
        (api.HPA, cf.worker_name, hpa(cf, "worker")),
        (api.INGRESS, cf.name, ingress(cf)),
        (api.CRONJOB, cf.backup_name, backup_cronjob(cf, digest)),
    ]
    workloads = [api_deployment(cf, digest), worker_deployment(cf, digest)]
    workloads += [m for *_, m in optional if m is not None]
    absent = [(kind.api_version, kind.kind, name) for kind, name, m in optional if m is None]
    sa = api.SERVICE_ACCOUNT
    # ServiceAccounts the pods no longer use: ours when an existing one is named, and the one
    # named after the CharterFlow that versions before 0.2 made (pruned only if ours; never
    # the namespace's ``default``, which the API server recreates anyway).
    stale = {cf.own_service_account_name, cf.name} - {cf.service_account_name, "default"}
    absent += [(sa.api_version, sa.kind, name) for name in sorted(stale)]
    if policies is None:
        kind = api.NETWORK_POLICY
        absent += [
            (kind.api_version, kind.kind, n) for n in (cf.api_name, cf.worker_name, cf.jobs_name)
        ]
    return Children(base, workloads, absent, digest)
