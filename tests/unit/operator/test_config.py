"""The operator's settings (OperatorConfig) are read from the environment as documented, and
the entry point's help lists them."""

import re
from collections.abc import Mapping

import pytest
from charterflow_operator.__main__ import main
from charterflow_operator.config import OperatorConfig, reference, watch_namespaces

from tests.unit.operator.conftest import REPO


def peering_priority(env: Mapping[str, str]) -> int:
    return OperatorConfig.from_env(env).priority


def test_watch_namespaces() -> None:
    assert watch_namespaces("") == []
    assert watch_namespaces(" a, b,,c ") == ["a", "b", "c"]


def test_replicas_of_one_deployment_get_distinct_stable_priorities() -> None:
    pods = [f"charterflow-operator-7d9f8c-{suffix}" for suffix in ("x2kq9", "p8wzt", "m4n7c")]
    priorities = [peering_priority({"POD_NAME": pod}) for pod in pods]
    assert len(set(priorities)) == len(pods)
    assert all(p > 0 for p in priorities)
    assert priorities == [peering_priority({"POD_NAME": pod}) for pod in pods]


def test_explicit_priority_wins_and_no_pod_name_means_default() -> None:
    assert peering_priority({"OPERATOR_PRIORITY": "100", "POD_NAME": "x"}) == 100
    assert peering_priority({}) == 0


def test_help_describes_the_environment_without_starting_kopf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "WATCH_NAMESPACES" in capsys.readouterr().out


def test_every_setting_is_read_from_its_variable() -> None:
    config = OperatorConfig.from_env(
        {
            "WATCH_NAMESPACES": "a,b",
            "OPERATOR_PEERING": "peers",
            "OPERATOR_STANDALONE": "true",
            "OPERATOR_PEERING_LIFETIME": "30",
            "OPERATOR_WORKERS": "3",
            "RESYNC_SECONDS": "2.5",
            "HEALTH_PORT": "1",
            "METRICS_PORT": "2",
            "LOG_LEVEL": "debug",
        }
    )
    assert config == OperatorConfig(
        watch_namespaces=("a", "b"),
        peering="peers",
        standalone=True,
        priority=0,
        peering_lifetime=30,
        workers=3,
        resync_seconds=2.5,
        health_port=1,
        metrics_port=2,
        log_level="DEBUG",
    )
    assert OperatorConfig.from_env({}) == OperatorConfig()
    assert {row[0] for row in reference()} >= {"OPERATOR_WORKERS", "RESYNC_SECONDS"}


def test_the_chart_sets_only_settings_the_operator_reads() -> None:
    deployment = REPO / "charts" / "charterflow-operator" / "templates" / "deployment.yaml"
    names = set(re.findall(r"^ {12}- name: ([A-Z_]+)$", deployment.read_text(), re.M))
    read = {env for env, _, _ in reference()}
    assert names - {"POD_NAME"} <= read, names - read
    assert {"OPERATOR_WORKERS", "RESYNC_SECONDS", "WATCH_NAMESPACES", "LOG_LEVEL"} <= names
