"""The operator and the application agree: every environment variable the operator sets on a
pod or Job is one the application reads (a field of its Settings, or the numeric libraries'
thread counts), and every command it runs is a `charterflow` subcommand."""

from __future__ import annotations

from typing import Any

from charterflow import contract
from charterflow.cli import build_parser
from charterflow.settings import Settings
from charterflow_operator import children
from charterflow_operator.children import jobs
from charterflow_operator.instance import CharterFlow

from tests.unit.operator.conftest import SECRETS, respec


def containers(cf: CharterFlow) -> list[dict[str, Any]]:
    """Every container the operator builds: Deployments, the backup CronJob, lifecycle Jobs."""
    desired = children.build(cf, SECRETS)
    templates = []
    for manifest in desired.workloads:
        spec = manifest["spec"]
        if manifest["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            templates.append(spec["template"])
    restoring = respec(cf, restore={"from": "latest"})
    for job in (jobs.migration_job(cf, "expand", 1), jobs.restore_job(restoring, 1)):
        templates.append(job["spec"]["template"])
    templates.append(jobs.backup_now_job(cf, desired.digest, "t")["spec"]["template"])
    return [c for t in templates for c in t["spec"]["containers"]]


def test_every_env_name_the_operator_sets_is_read_by_the_app(cf: CharterFlow) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert set(contract.SETTINGS_ENV) <= fields, set(contract.SETTINGS_ENV) - fields
    read = set(contract.SETTINGS_ENV) | set(contract.BLAS_THREAD_ENV)
    config = next(m for m in children.build(cf, SECRETS).base if m["kind"] == "ConfigMap")
    set_by_operator = set(config["data"])
    for container in containers(cf):
        set_by_operator |= {entry["name"] for entry in container.get("env", [])}
    assert set_by_operator <= read, set_by_operator - read


def test_every_command_is_a_charterflow_subcommand(cf: CharterFlow) -> None:
    parser = build_parser()
    for container in containers(cf):
        program, *args = container["command"]
        assert program == "charterflow"
        parser.parse_args(args)  # exits (fails the test) on an unknown command or flag
